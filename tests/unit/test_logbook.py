"""`loragate log`: stats, export in three formats, tail and forget, over a real store."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.generation import AssembledCall
from gateway.recording.journal import Journal
from gateway.recording.logbook import parse_since
from gateway.recording.recorder import Recorder
from gateway.recording.records import FeedbackRecord, prepare
from tests.support.databases import Database
from tests.support.waiting import wait_until
from tests.unit.test_recorder import record


@pytest.fixture
async def home(tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose store (SQLite, or PostgreSQL through LORAGATE_STORE_URL) holds two
    interactions, two outcomes and one correction."""
    if db.url:
        monkeypatch.setenv("LORAGATE_STORE_URL", db.url)
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    recorder.submit(record("ia_1", text="Paris"))
    call = AssembledCall("call_1", "read_file", '{"path": "a.py"}')
    recorder.submit(record("ia_2", calls=[call], text=""))
    await recorder.flush()
    recorder.submit(FeedbackRecord("ia_1", time.time(), accepted=False, correction="Lyon"))
    await recorder.close()
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_stats_json_counts_everything(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "log", "--home", str(home), "stats", "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["interactions"], data["outcomes"], data["corrections"]) == (2, 2, 1)
    chat = data["workloads"]["chat"]
    assert chat["interactions"] == 2 and chat["corrections"] == 1
    assert chat["outcomes"]["tool_call_valid"] == {"n": 1, "rate": 1.0}
    code, out, _ = run(capsys, "log", "--home", str(home), "stats")
    assert out.startswith("2 interactions, 2 outcomes, 1 corrections")


def test_export_openai_uses_the_correction_as_the_answer(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "log", "--home", str(home), "export", "--format", "openai")
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["messages"][-1] == {"role": "assistant", "content": "Lyon"}
    assert second["messages"][-1]["tool_calls"][0]["function"]["name"] == "read_file"
    assert second["tools"][0]["function"]["name"] == "read_file"


def test_export_jsonl_and_sharegpt(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "log", "--home", str(home), "export", "--since", "1h")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == ["ia_1", "ia_2"] and rows[0]["corrections"] == ["Lyon"]
    _, out, _ = run(capsys, "log", "--home", str(home), "export", "--format", "sharegpt")
    turns = json.loads(out.splitlines()[1])["conversations"]
    assert [t["from"] for t in turns] == ["human", "gpt"] and "<tool_call>" in turns[1]["value"]


def test_forget_deletes_with_outcomes_and_corrections(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "log", "--home", str(home), "forget", "--since", "1h")
    assert code == 0 and out.startswith("deleted 2 interactions")
    _, out, _ = run(capsys, "log", "--home", str(home), "stats", "--json")
    data = json.loads(out)
    assert (data["interactions"], data["outcomes"], data["corrections"]) == (0, 0, 0)


async def test_forget_reaches_records_still_in_the_journal(
    home: Path, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = Journal(home / "journal")
    for iid in ("ia_j1", "ia_j2"):
        journal.append([prepare(record(iid, messages=[{"role": "user", "content": iid}]))])
    journal.append([prepare(FeedbackRecord("ia_j1", time.time(), accepted=True))])
    conversation = prepare(record("ia_j1", messages=[{"role": "user", "content": "ia_j1"}]))
    conversation_id = conversation["interaction"]["conversation_id"]
    code, out, _ = run(
        capsys, "log", "--home", str(home), "forget", "--conversation", conversation_id
    )
    assert code == 0 and out.startswith("deleted 1 interactions") and "1 of them" in out
    restarted = Recorder(home, store_url=db.url)  # replays what is left of the journal
    await restarted.start()
    await restarted.close()
    assert db.rows("SELECT id FROM interactions ORDER BY id") == [
        ("ia_1",), ("ia_2",), ("ia_j2",)
    ]  # fmt: skip
    assert db.rows("SELECT count(*) FROM outcomes WHERE interaction_id = 'ia_j1'") == [(0,)]


def test_forget_needs_a_filter_and_a_missing_store_is_one_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "log", "--home", str(home), "forget")
    assert code == 1 and err == "loragate: error: log forget needs --since or --conversation\n"
    monkeypatch.delenv("LORAGATE_STORE_URL", raising=False)
    empty = tmp_path / "empty"
    code, _, err = run(capsys, "log", "--home", str(empty), "stats")
    assert code == 1 and err.startswith("loragate: error: no store at")


def test_tail_prints_recent_interactions(home: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "log", "--home", str(home), "tail"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True).start()
    wait_until(lambda: len(lines) >= 2, what="the two recorded interactions, tailed")
    process.terminate()
    process.communicate(timeout=10)
    assert len(lines) == 2 and "chat" in lines[0] and "m@v0" in lines[0]
    assert "tool_call_valid=1" in lines[1]


def test_since_accepts_relative_and_iso_times() -> None:
    assert parse_since("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_since("2026-11-01T00:00:00+00:00") == 1793491200.0
