"""The `loragate` command as a user runs it: in its own process, against one home."""

from __future__ import annotations

import os
import subprocess
import sys
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
