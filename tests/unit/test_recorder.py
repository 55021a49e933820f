"""The recorder stores every record, judges what it can at once, and loses nothing when the
queue overflows, the journal has corrupt lines or the database is locked."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.generation import Assembled, AssembledCall, Finish, GenerationRequest
from gateway.recording.recorder import Recorder
from gateway.recording.records import DevDataRecord, FeedbackRecord, InteractionRecord
from gateway.store import Store
from tests.support.databases import Database
from tests.support.tools import READ


def record(
    iid: str,
    *,
    messages: list | None = None,
    calls: list | None = None,
    text: str = "hi",
    schema: dict | None = None,
) -> InteractionRecord:
    answer = Assembled(text=text, calls=calls or [], finish=Finish("stop", 10, 2))
    request = GenerationRequest(
        model="m",
        messages=messages or [{"role": "user", "content": "hello"}],
        tools=[READ] if calls else None,
        json_schema=schema,
    )
    return InteractionRecord(
        id=iid,
        created_at=time.time(),
        api="chat",
        workload="chat",
        model_requested="auto",
        version="m@v0",
        request=request,
        answer=answer,
        status="complete",
    )


async def test_records_are_written_with_redacted_text_and_counts(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    secret = [{"role": "user", "content": "my key is AKIAIOSFODNN7EXAMPLE, fix auth.py"}]
    recorder.submit(record("ia_1", messages=secret))
    await recorder.close()
    [(request, redactions, status)] = db.rows(
        "SELECT request, redactions, status FROM interactions"
    )
    assert "AKIAIOSFODNN7EXAMPLE" not in request and redactions == 1 and status == "complete"


async def test_tool_calls_and_schemas_are_judged_at_once_and_results_next_turn(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    good = AssembledCall("call_a", "read_file", '{"path": "a.py"}')
    bad = AssembledCall("call_b", "read_file", '{"file": "a.py"}')
    recorder.submit(record("ia_1", calls=[good, bad]))
    recorder.submit(
        record(
            "ia_2",
            text='{"n": "x"}',
            schema={"type": "object", "properties": {"n": {"type": "integer"}}},
        )
    )
    follow_up = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "", "tool_calls": []},
        {"role": "tool", "tool_call_id": "call_a", "content": "print('a')"},
        {"role": "tool", "tool_call_id": "call_b", "content": "Error: no such file or directory"},
    ]
    recorder.submit(record("ia_3", messages=follow_up))
    await recorder.close()
    outcomes = db.rows(
        "SELECT interaction_id, kind, value, source FROM outcomes "
        "ORDER BY interaction_id, kind, value",
    )
    assert outcomes == [
        ("ia_1", "tool_call_valid", 0.0, "schema"),
        ("ia_1", "tool_call_valid", 1.0, "schema"),
        ("ia_1", "tool_result", 0.0, "next_turn"),
        ("ia_1", "tool_result", 1.0, "next_turn"),
        ("ia_2", "schema_valid", 0.0, "schema"),
    ]


async def test_feedback_becomes_outcomes_and_a_correction(tmp_path: Path, db: Database) -> None:
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    recorder.submit(record("ia_1"))
    assert await recorder.has_interaction("ia_1")
    recorder.submit(FeedbackRecord("ia_1", time.time(), accepted=False, correction="return 4"))
    await recorder.close()
    assert db.rows("SELECT kind, value FROM outcomes") == [("accepted", 0.0)]
    assert db.rows("SELECT content FROM corrections") == [("return 4",)]


async def test_a_full_queue_spills_to_the_journal_which_is_replayed(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url, queue_size=2)
    await recorder.start()
    for i in range(10):  # the writer gets no turn in between: 8 overflow
        recorder.submit(record(f"ia_{i}"))
    await recorder.close()
    restarted = Recorder(tmp_path, store_url=db.url)
    await restarted.start()
    await restarted.close()
    assert db.rows("SELECT count(*) FROM interactions") == [(10,)]
    assert list((tmp_path / "journal").glob("*.jsonl")) == []


async def test_corrupt_journal_lines_are_skipped_and_the_rest_replayed(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url, queue_size=1)
    await recorder.start()
    recorder.submit(record("ia_0"))
    recorder.submit(record("ia_1"))  # journaled
    journal = next((tmp_path / "journal").glob("*.jsonl"))
    with journal.open("a") as fh:
        fh.write('{"interaction": {"id": "broken\n')
        fh.write("[1, 2]\n")
    await recorder.close()
    restarted = Recorder(tmp_path, store_url=db.url)
    await restarted.start()
    await restarted.close()
    assert db.rows("SELECT id FROM interactions ORDER BY id") == [("ia_0",), ("ia_1",)]


async def test_a_locked_database_journals_and_catches_up_later(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url, busy_timeout=0.05)
    await recorder.start()
    with db.locked():
        recorder.submit(record("ia_locked"))
        await recorder.flush()
        journaled = [
            json.loads(line)
            for p in (tmp_path / "journal").glob("*.jsonl")
            for line in p.read_text().splitlines()
        ]
        assert [item["interaction"]["id"] for item in journaled] == ["ia_locked"]
    recorder.submit(record("ia_next"))  # a successful write replays the journal
    await recorder.close()
    assert db.rows("SELECT count(*) FROM interactions") == [(2,)]


async def test_recording_can_be_off_or_skip_a_workload(tmp_path: Path, db: Database) -> None:
    off = Recorder(tmp_path, store_url=db.url, enabled=False)
    await off.start()
    off.submit(record("ia_1"))
    await off.close()
    skipping = Recorder(tmp_path, store_url=db.url, skip_workloads=frozenset({"chat"}))
    await skipping.start()
    skipping.submit(record("ia_2"))
    await skipping.close()
    assert db.rows("SELECT count(*) FROM interactions") == [(0,)]


async def test_asking_again_in_the_same_context_rejects_the_earlier_answer(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    history = [
        {"role": "user", "content": "write a sort"},
        {"role": "assistant", "content": "def sort(x): ..."},
    ]
    recorder.submit(record("ia_1", messages=[*history, {"role": "user", "content": "faster?"}]))
    recorder.submit(record("ia_2", messages=[*history, {"role": "user", "content": "quicker?"}]))
    recorder.submit(record("ia_3", messages=[{"role": "user", "content": "new question"}]))
    recorder.submit(record("ia_4", messages=[{"role": "user", "content": "other question"}]))
    await recorder.close()
    assert db.rows("SELECT interaction_id, kind, value FROM outcomes") == [("ia_1", "reasked", 0.0)]


async def test_a_generate_prompt_sent_again_rejects_the_earlier_answer(
    tmp_path: Path, db: Database
) -> None:
    """JESSY's shape: `/api/generate` with a system prompt, one question per request."""

    def asked(iid: str, prompt: str, system: str = "You are JESSY.") -> InteractionRecord:
        request = GenerationRequest(model="m", prompt=prompt, system=system, stream=False)
        return InteractionRecord(
            id=iid, created_at=time.time(), api="generate", workload="jessy",
            model_requested="jessy", version="m@v0", status="complete", request=request,
            answer=Assembled(text="It is sunny.", finish=Finish("stop", 10, 2)),
        )  # fmt: skip

    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    recorder.submit(asked("ia_1", "What's the weather in Paris?"))
    recorder.submit(asked("ia_2", "what's the weather in  Paris"))  # the same, asked again
    recorder.submit(asked("ia_3", "Tell me a joke."))  # a new question
    recorder.submit(asked("ia_4", "Tell me a joke.", system="You are someone else."))
    await recorder.close()
    assert db.rows("SELECT interaction_id, kind, value FROM outcomes") == [("ia_1", "reasked", 0.0)]


async def test_an_accepted_answer_to_a_question_asked_again_corrects_the_first(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    ask = [{"role": "user", "content": "sort a list in place"}]
    recorder.submit(record("ia_first", messages=ask, text="sorted(x)"))
    recorder.submit(record("ia_again", messages=ask, text="x.sort()"))
    await recorder.flush()
    recorder.submit(FeedbackRecord("ia_again", time.time(), accepted=True))
    await recorder.close()
    assert db.rows("SELECT interaction_id, content, source FROM corrections") == [
        ("ia_first", "x.sort()", "later_answer")
    ]


async def test_continue_dev_data_events_judge_their_interactions(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    call = AssembledCall("call_7", "read_file", '{"path": "a.py"}')
    recorder.submit(record("ia_tool", calls=[call], text=""))
    recorder.submit(
        record("ia_edit", messages=[{"role": "user", "content": "add"}], text="return a + b")
    )
    recorder.submit(
        record("ia_chat", messages=[{"role": "user", "content": "how?"}], text="Use a dict.")
    )
    now = time.time() + 0.5
    recorder.submit(
        DevDataRecord(
            "toolUsage", {"toolCallId": "call_7", "output": [{"content": "Tool x not found"}]}, now
        )
    )
    recorder.submit(
        DevDataRecord(
            "editOutcome",
            {"accepted": False, "completion": "return a + b", "newCode": "return a - b"},
            now,
        )
    )
    recorder.submit(
        DevDataRecord("chatFeedback", {"feedback": True, "completion": "Use a dict."}, now)
    )
    recorder.submit(DevDataRecord("autocomplete", {"accepted": True, "completion": "nowhere"}, now))
    await recorder.close()
    judged = db.rows(
        "SELECT interaction_id, kind, value, source FROM outcomes "
        "WHERE source LIKE 'continue.%' ORDER BY interaction_id",
    )
    assert judged == [
        ("ia_chat", "accepted", 1.0, "continue.chatFeedback"),
        ("ia_edit", "accepted", 0.0, "continue.editOutcome"),
        ("ia_tool", "tool_result", 0.0, "continue.toolUsage"),
    ]
    assert db.rows("SELECT interaction_id, content FROM corrections") == [
        ("ia_edit", "return a - b")
    ]


async def test_requests_mentioning_a_private_path_are_not_recorded(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url, skip_paths=("*/secrets/*", "*.env"))
    await recorder.start()
    recorder.submit(record("ia_env", messages=[{"role": "user", "content": "fix config/.env"}]))
    call = AssembledCall("c1", "read_file", '{"path": "ops/secrets/db.yaml"}')
    recorder.submit(record("ia_call", calls=[call]))
    recorder.submit(record("ia_ok", messages=[{"role": "user", "content": "fix src/app.py"}]))
    await recorder.close()
    assert db.rows("SELECT id FROM interactions") == [("ia_ok",)]


@contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A real filesystem of `size` (tmpfs, needs root) mounted at `folder`."""
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Write a file until the disk is full; returns it."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as fh:  # nothing left in a buffer to fail on close
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small disk needs root")
async def test_a_full_disk_is_logged_keeps_what_was_committed_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path / "disk") as home:
        recorder = Recorder(home)
        await recorder.start()
        for i in range(20):
            recorder.submit(record(f"ia_{i}"))
        await recorder.flush()
        filler = fill(home)
        big = "x" * 200_000  # more than any page the database has free
        recorder.submit(record("ia_full", messages=[{"role": "user", "content": big}]))
        await recorder.flush()
        assert any("disk is full" in r.getMessage() for r in caplog.records)
        filler.unlink()
        recorder.submit(record("ia_after"))
        await recorder.close()
        store = Store(home / "store.db")
        ids = {r[0] for r in store.query("SELECT id FROM interactions")}
        assert ids == {f"ia_{i}" for i in range(20)} | {"ia_full", "ia_after"}
        assert store.one("PRAGMA integrity_check")[0] == "ok"
        store.close()
