"""Scheduled retraining from `loragate serve` (`retrain_every`, `retrain_min_new_examples`).

Once a minute the gateway asks the store whether a retrain is due: the last training run is
older than `retrain_every` and at least `retrain_min_new_examples` interactions were judged
since (accepted, rejected, corrected, or judged by a tool result or a schema). Then it starts
`loragate retrain` as a separate, lower-priority process, one at a time, with its output in
`<home>/logs/retrain-<time>.log`: serving never waits for it, and its result reaches the
gateway like any other registry change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.store import Store
from gateway.versions.periodic import Periodic

log = logging.getLogger("loragate")


@dataclass(frozen=True)
class Due:
    due: bool
    reason: str
    next_check_after: float  # seconds


def due(store: Store, every: float, min_new: int, now: float | None = None) -> Due:
    now = time.time() if now is None else now
    last = store.one("SELECT max(created_at) FROM training_runs")[0]
    if last is not None and now - last < every:
        return Due(False, "the last retrain is recent", every - (now - last))
    since = last or 0.0
    judged = store.one(
        "SELECT count(*) FROM interactions AS i WHERE i.created_at > ? AND (EXISTS "
        "(SELECT 1 FROM outcomes AS o WHERE o.interaction_id = i.id) OR EXISTS "
        "(SELECT 1 FROM corrections AS c WHERE c.interaction_id = i.id))",
        (since,),
    )[0]
    if judged < min_new:
        return Due(False, f"{judged} judged interactions since the last retrain, "
                   f"{min_new} needed", 60.0)  # fmt: skip
    return Due(True, f"{judged} judged interactions since the last retrain", 0.0)


class Retrainer:
    """Runs `command` (by default `loragate retrain`) as its own lower-priority process, never
    two at once, with its output in `<home>/logs/retrain-<time>.log`; started by the schedule
    or by the dashboard's button."""

    def __init__(
        self,
        home: Path,
        *,
        command: Sequence[str] | None = None,
        on_busy: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        """`on_busy(True)` runs when a retrain starts and `on_busy(False)` when it ends: the
        gateway gives the trainer all cores but one meanwhile (two jobs spinning on the same
        cores slow each other down many times over)."""
        self.home = home
        threads = str(max(1, (os.cpu_count() or 2) - 1))
        self.command = list(command or [sys.executable, "-m", "gateway.cli", "retrain",
                                        "--home", str(home), "--threads", threads])  # fmt: skip
        self.on_busy = on_busy
        self.last_log: Path | None = None
        self.runs = 0
        self.started_at: float | None = None
        self.reason = ""
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    async def start(self, reason: str) -> bool:
        """Start a retrain unless one is running; returns whether it started."""
        if self.running:
            return False
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.last_log = logs / time.strftime("retrain-%Y%m%d-%H%M%S.log")
        with self.last_log.open("w", encoding="utf-8") as out:
            out.write(f"# {reason}: {' '.join(self.command)}\n")
            out.flush()
            self._process = await asyncio.create_subprocess_exec(
                *self.command, stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=_lower_priority, start_new_session=True,
            )  # fmt: skip
        self.runs += 1
        self.started_at, self.reason = time.time(), reason
        if self.on_busy is not None:
            await self.on_busy(True)
        self._watcher = asyncio.create_task(self._when_done(self._process))
        log.info("retrain started (%s); log: %s", reason, self.last_log)
        return True

    async def _when_done(self, process: asyncio.subprocess.Process) -> None:
        await process.wait()
        if self.on_busy is not None:
            await self.on_busy(False)

    def progress(self, lines: int = 12) -> list[str]:
        """The last lines of the running (or last) retrain's log, as a terminal shows them: a
        progress bar redrawn with carriage returns is its latest state."""
        if self.last_log is None or not self.last_log.exists():
            return []
        with self.last_log.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 32_768))
            tail = f.read().decode("utf-8", errors="replace")
        shown = (line.rstrip("\r").rsplit("\r", 1)[-1] for line in tail.split("\n"))
        return [line for line in shown if line.strip()][-lines:]

    async def wait(self) -> int | None:
        """Wait for the running retrain, if any (tests); returns its exit code."""
        code = await self._process.wait() if self._process is not None else None
        if self._watcher is not None:
            await self._watcher
        return code


class Scheduler:
    """Starts a retrain through `retrainer` when one is `due`."""

    def __init__(
        self,
        store_target: Path | str,
        retrainer: Retrainer,
        *,
        every: float,
        min_new: int,
        poll: float = 60.0,
    ) -> None:
        self.store_target = store_target
        self.retrainer = retrainer
        self.every = every
        self.min_new = min_new
        self._loop = Periodic("loragate-retrain-schedule", self.check, poll,
                              what="scheduled retrain", immediately=True)  # fmt: skip

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        """Stops watching; a retrain already running is left to finish on its own."""
        await self._loop.close()

    async def check(self) -> bool:
        """Start a retrain if one is due and none is running; returns whether it started."""
        started_at = self.retrainer.started_at
        if self.retrainer.running:
            return False
        if started_at is not None and time.time() - started_at < self.every:
            return False  # a run that failed before training gets another chance later
        decision = await asyncio.to_thread(self._due)
        if not decision.due:
            return False
        return await self.retrainer.start(decision.reason)

    def _due(self) -> Due:
        store = Store(self.store_target)
        try:
            return due(store, self.every, self.min_new)
        finally:
            store.close()


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(10)
