"""Where a serving gateway answers, left in its home so that the CLI commands run on the same
home find it whatever port it was started with: `<home>/gateway.json` holds its URL and
process id, written once it listens and removed when it stops. A file left by a gateway that
died (its process is gone) is ignored."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

FILE = "gateway.json"


def publish(home: Path, url: str) -> None:
    path = home / FILE
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n", encoding="utf-8")
    os.replace(staging, path)


def withdraw(home: Path) -> None:
    """Remove the address if this process left it."""
    if _read(home).get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (home / FILE).unlink()


def running(home: Path) -> str | None:
    """The URL of the gateway serving this home, if one is running."""
    found = _read(home)
    pid, url = found.get("pid"), found.get("url")
    if not isinstance(pid, int) or not isinstance(url, str):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return url


def _read(home: Path) -> dict:
    try:
        found = json.loads((home / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
