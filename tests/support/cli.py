"""The `loragate` command as a user runs it: in its own process, against one home."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def loragate(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`loragate COMMAND --home HOME ARGS...`; `env` is added to this process's environment."""
    command, *rest = args
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", command, "--home", str(home), *rest],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip


def loragate_step(home: Path, *args: str) -> str:
    """A benchmark's step: `loragate ARGS...` (up to an hour), its time printed; its stdout, or
    the benchmark stops with the command's error."""
    started = time.monotonic()
    done = loragate(home, *args, timeout=3600)
    if done.returncode:
        raise SystemExit(f"loragate {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    print(f"  loragate {' '.join(args[:2])}: {time.monotonic() - started:.0f} s", flush=True)
    return done.stdout


def with_interval(metric: dict) -> str:
    """A benchmark's line for a rate or a mean from `loragate eval --json`, with its 95 %
    interval: `0.827 [0.70, 0.91]`."""
    low, high = metric.get("interval", [0, 0])
    return f"{metric.get('rate', metric.get('value', 0)):.3f} [{low:.2f}, {high:.2f}]"


@contextmanager
def bench_folder(kept: Path | None) -> Iterator[Path]:
    """A benchmark's working folder: `kept` (made empty, left afterwards to read what the run
    wrote), else a temporary folder removed at the end."""
    if kept is not None:
        kept.mkdir(parents=True)
        yield kept
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)
