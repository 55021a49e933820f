"""Continue's dev-data files, read as Continue writes them: appended to, cut mid-line,
truncated, replaced, corrupted; each line is taken once, across restarts too."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.continue_devdata import DevDataFiles, collect, dev_data_dir
from gateway.cli import main
from gateway.store import Store
from tests.support.recordings import chat, record


def line(event: str, at: float | None = None, **data: object) -> str:
    """One event as Continue writes it (its `timestamp` is when it happened)."""
    stamp = datetime.fromtimestamp(time.time() if at is None else at, UTC).isoformat()
    return json.dumps({"eventName": event, "schema": "0.2.0", "timestamp": stamp, **data}) + "\n"


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "continue" / "dev_data" / "0.2.0"
    folder.mkdir(parents=True)
    return folder


def names(files: DevDataFiles) -> list[str]:
    return [r.name for r in files.read_new()]


def test_the_folder_is_continues_own_unless_continue_global_dir_moves_it() -> None:
    assert dev_data_dir({}) == Path("~/.continue/dev_data/0.2.0").expanduser()
    assert dev_data_dir({"CONTINUE_GLOBAL_DIR": "/x/y"}) == Path("/x/y/dev_data/0.2.0")


def test_new_lines_are_read_once_and_a_partial_line_waits_for_its_end(
    folder: Path, tmp_path: Path
) -> None:
    autocomplete = folder / "autocomplete.jsonl"
    append(autocomplete, line("autocomplete", accepted=True, completion="a"))
    files = DevDataFiles.open(folder, tmp_path)
    assert names(files) == ["autocomplete"]
    assert names(files) == []
    whole = line("autocomplete", accepted=False, completion="b")
    append(autocomplete, whole[:20])  # Continue is half-way through writing it
    assert names(files) == []
    append(autocomplete, whole[20:])
    (record,) = files.read_new()
    assert record.data["completion"] == "b" and record.data["accepted"] is False


def test_a_restart_goes_on_where_the_last_run_stopped(folder: Path, tmp_path: Path) -> None:
    path = folder / "toolUsage.jsonl"
    append(path, line("toolUsage", toolCallId="c1", accepted=True))
    first = DevDataFiles.open(folder, tmp_path)
    assert names(first) == ["toolUsage"]
    first.save()
    append(path, line("toolUsage", toolCallId="c2", accepted=True))
    again = DevDataFiles.open(folder, tmp_path)
    assert [r.data["toolCallId"] for r in again.read_new()] == ["c2"]


def test_a_truncated_or_replaced_file_is_read_from_its_start(folder: Path, tmp_path: Path) -> None:
    path = folder / "chatFeedback.jsonl"
    append(path, line("chatFeedback", feedback=True, completion="x" * 50))
    files = DevDataFiles.open(folder, tmp_path)
    assert len(list(files.read_new())) == 1
    path.write_text(line("chatFeedback", feedback=False, completion="y"))  # truncated, shorter
    assert [r.data["completion"] for r in files.read_new()] == ["y"]
    rotated = folder / "chatFeedback.jsonl.1"
    path.rename(rotated)  # rotated away; a new file takes the name
    append(path, line("chatFeedback", feedback=True, completion="z"))
    assert os.stat(path).st_ino != os.stat(rotated).st_ino
    assert [r.data["completion"] for r in files.read_new()] == ["z"]


def test_a_corrupt_line_is_counted_and_skipped(folder: Path, tmp_path: Path) -> None:
    path = folder / "editOutcome.jsonl"
    append(path, '{"eventName": "editOutcome", "accepted": tr\n' + "[1, 2]\n")
    append(path, line("editOutcome", accepted=True, completion="ok"))
    records = list(DevDataFiles.open(folder, tmp_path).read_new())
    assert [r.line["status"] for r in records if r.line] == ["corrupt", "corrupt", "read"]
    assert records[-1].name == "editOutcome"


async def test_collect_judges_recorded_answers_and_never_takes_a_line_twice(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    now = time.time()
    await record(home, [chat("ia_1", "def add(a, b):", "return a + b", now - 5)], [])
    append(folder / "autocomplete.jsonl",
           line("autocomplete", accepted=True, completion="return a + b", at=now)
           + line("autocomplete", accepted=True, completion="never served", at=now)
           + "not json\n")  # fmt: skip
    append(folder / "chatInteraction.jsonl", line("chatInteraction", prompt="hi"))
    store = Store(home / "store.db")
    report = collect(store, DevDataFiles.open(folder, home))
    assert report.statuses == {"joined": 1, "unmatched": 1, "ignored": 1, "corrupt": 1}
    assert report.before == 0
    outcomes = store.query("SELECT interaction_id, kind, value, source FROM outcomes")
    assert [tuple(row) for row in outcomes] == [("ia_1", "accepted", 1.0, "continue.autocomplete")]
    # a second pass finds nothing new; the same lines in a fresh state file are known by id
    assert str(collect(store, DevDataFiles.open(folder, home))).startswith("nothing new in")
    (home / "collectors" / "continue.json").unlink()
    again = collect(store, DevDataFiles.open(folder, home))
    assert again.before == 4 and not again.statuses
    assert len(store.query("SELECT 1 FROM outcomes")) == 1
    store.close()
    # the CLI says the same, and `log stats` counts what was collected
    append(folder / "autocomplete.jsonl", "{broken\n")
    assert main(["collect", "--home", str(home), "continue", "--folder", str(folder)]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"read 1 new lines from {folder}") and said.strip().endswith(
        "skipped 0 taken before and 1 corrupt"
    )
    assert main(["log", "--home", str(home), "stats"]) == 0
    stats = capsys.readouterr().out
    assert "lines collected from continue: 2 corrupt, 1 ignored, 1 joined, 1 unmatched" in stats
