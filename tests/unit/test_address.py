"""A serving gateway leaves its address in its home; the CLI on that home finds it there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gateway.cli import address


def test_the_address_is_found_while_its_gateway_runs_and_removed_when_it_stops(
    tmp_path: Path,
) -> None:
    assert address.running(tmp_path) is None
    address.publish(tmp_path, "http://127.0.0.1:51234")
    assert address.running(tmp_path) == "http://127.0.0.1:51234"
    address.withdraw(tmp_path)
    assert address.running(tmp_path) is None and not (tmp_path / address.FILE).exists()


def test_an_address_left_by_a_dead_gateway_or_unreadable_is_ignored(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / address.FILE).write_text(json.dumps({"url": "http://x:1", "pid": int(gone.stdout)}))
    assert address.running(tmp_path) is None
    (tmp_path / address.FILE).write_text("{not json")
    assert address.running(tmp_path) is None


def test_another_gateways_address_is_not_removed(tmp_path: Path) -> None:
    (tmp_path / address.FILE).write_text(json.dumps({"url": "http://x:1", "pid": os.getppid()}))
    address.withdraw(tmp_path)
    assert address.running(tmp_path) == "http://x:1"
