"""Scheduled retraining: when it is due, and that it runs beside serving, one at a time."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from gateway.config import store_target
from gateway.recording.records import FeedbackRecord
from gateway.store import Store
from gateway.versions.schedule import Retrainer, Scheduler, due
from tests.support.databases import Database
from tests.support.recordings import chat, record
from tests.support.waiting import eventually

DAY = 86400.0


async def record_judged(db: Database, n: int, judged: int, at: float) -> None:
    """`n` chats from `at` on, the first `judged` of them accepted."""
    chats = [chat(f"ia_{at}_{i}", f"q{i}", "a", at + i) for i in range(n)]
    accepted = [FeedbackRecord(c.id, at + n, accepted=True) for c in chats[:judged]]
    await record(db.home, chats, accepted, store_url=db.url)


def add_run(store: Store, at: float) -> None:
    store.execute(
        "INSERT INTO training_runs (id, created_at, dataset_hash, base, engine, recipe, status, "
        "path) VALUES (?, ?, 'h', 'b', 'torch', '{}', 'completed', '/x')",
        (f"run-{at}", at),
    )


async def test_due_needs_time_since_the_last_run_and_enough_judged_work(db: Database) -> None:
    now = time.time()
    await record_judged(db, 10, judged=3, at=now - 3 * DAY)
    store = Store(db.target)
    assert due(store, 7 * DAY, 3, now).due  # never trained: due once enough is judged
    assert not due(store, 7 * DAY, 4, now).due

    add_run(store, now - 2 * DAY)
    recent = due(store, 7 * DAY, 1, now)
    assert not recent.due and recent.next_check_after == 5 * DAY
    assert "0 judged interactions since the last retrain" in due(store, DAY, 1, now).reason

    await record_judged(db, 5, judged=5, at=now - DAY / 2)
    assert due(store, DAY, 5, now).due
    unjudged_only = due(store, DAY, 6, now)
    assert not unjudged_only.due and unjudged_only.reason.startswith("5 judged")


async def test_the_default_command_is_retrain_leaving_a_core_to_serving(tmp_path: Path) -> None:
    retrainer = Retrainer(tmp_path)
    assert retrainer.command[1:5] == ["-m", "gateway.cli", "retrain", "--home"]
    assert retrainer.command[-2] == "--threads" and int(retrainer.command[-1]) >= 1


async def test_a_due_retrain_runs_as_its_own_process_one_at_a_time(
    db: Database, tmp_path: Path
) -> None:
    await record_judged(db, 2, judged=2, at=time.time() - 10)
    marker = tmp_path / "ran"
    command = [sys.executable, "-c",
               f"import time, pathlib; time.sleep(0.5); pathlib.Path({str(marker)!r}).touch(); "
               "print('retrained')"]  # fmt: skip
    busy: list[bool] = []

    async def on_busy(training: bool) -> None:
        busy.append(training)

    retrainer = Retrainer(db.home, command=command, on_busy=on_busy)
    scheduler = Scheduler(store_target(db.home, db.url), retrainer, every=3600, min_new=2,
                          poll=0.05)  # fmt: skip
    scheduler.start()
    try:
        await eventually(lambda: retrainer.runs, timeout=5, what="the retrain started")
        await asyncio.sleep(0.2)  # four more polls while it runs: they must start nothing more
        assert retrainer.runs == 1
        assert await retrainer.wait() == 0
    finally:
        await scheduler.close()
    assert marker.exists()
    assert busy == [True, False]  # serving gave up cores for the run, and took them back
    assert retrainer.last_log is not None
    text = retrainer.last_log.read_text()
    assert text.startswith("# 2 judged interactions since the last retrain")
    assert "retrained" in text
    # it finished without recording a training run (it failed early, say): not retried at once
    assert not await scheduler.check()
