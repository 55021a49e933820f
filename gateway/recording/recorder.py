"""The recorder: every exchange is stored, and no request waits for the disk.

The request path only calls `submit`, which puts a record on a bounded queue. One writer task
takes whatever is queued (so batches grow with load), prepares it on the event loop in small
slices between requests, and writes it on a dedicated thread in one transaction. Preparing is
Python work: on a thread it would hold the GIL against the event loop, which then waits up to a
switch interval (5 ms) per wake-up; SQLite releases the GIL while it works.

When the queue is full, or a write fails (database locked, disk full), records go to an
append-only journal under `<home>/journal/`, replayed at the next start or after the next
successful write. `close` (SIGTERM, Ctrl-C) drains the queue before the process exits; `spill`
journals it at once when the process cannot wait (a second signal).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.config import store_target
from gateway.recording.journal import Journal
from gateway.recording.records import (
    DevDataRecord,
    FeedbackRecord,
    InteractionRecord,
    mentions_path,
    prepare,
)
from gateway.store import Store, StoreError
from gateway.store.rows import Prepared

T = TypeVar("T")

log = logging.getLogger("loragate.recorder")
Record = InteractionRecord | FeedbackRecord | DevDataRecord
_STOP = object()


class Recorder:
    def __init__(
        self,
        home: Path,
        *,
        store_url: str | None = None,
        enabled: bool = True,
        skip_workloads: frozenset[str] = frozenset(),
        skip_paths: tuple[str, ...] = (),
        queue_size: int = 50_000,
        batch_size: int = 2_000,
        busy_timeout: float = 5.0,
    ) -> None:
        self.enabled = enabled
        self.skip_workloads = skip_workloads
        self.skip_paths = skip_paths
        self.store_target = store_target(home, store_url)
        self.journal = Journal(home / "journal")
        self._queue: asyncio.Queue[object] = asyncio.Queue(queue_size)
        self._batch_size = batch_size
        self._busy_timeout = busy_timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")
        self._store: Store | None = None
        self._writer: asyncio.Task[None] | None = None
        self._taken: list[Record] = []  # the batch the writer holds, until it is written
        self.written = 0

    async def start(self) -> None:
        """Open the store (migrating it) and replay what a previous run journaled. A store
        that cannot be opened is retried at each batch; until then records are journaled."""
        if self.enabled:
            await self._in_thread(self._open)
        self._writer = asyncio.create_task(self._write_forever(), name="recorder-writer")

    def submit(self, record: Record) -> None:
        """Never blocks: queue it, or journal it when the queue is full."""
        if not self.enabled:
            return
        if isinstance(record, InteractionRecord) and record.workload in self.skip_workloads:
            return
        if self._private(record):  # scans text only when globs are configured
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.journal.append([prepare(record)])

    async def flush(self) -> None:
        """Wait until everything submitted so far is written (or journaled)."""
        await self._queue.join()

    async def has_interaction(self, interaction_id: str) -> bool:
        await self.flush()
        store = self._store
        return store is not None and await self._in_thread(store.has_interaction, interaction_id)

    async def request_of(self, interaction_id: str) -> dict[str, Any] | None:
        """The stored request of an interaction (everything submitted so far is written
        first); None when there is no such interaction."""
        await self.flush()
        store = self._store
        return None if store is None else await self._in_thread(store.request_of, interaction_id)

    async def in_store(self, fn: Callable[[Store], T]) -> T | None:
        """Run `fn` with the store on the writer's thread, once everything submitted so far
        is written (a collector joining files to recorded answers); None while it is away."""
        await self.flush()
        store = self._store or await self._in_thread(self._open)
        return None if store is None else await self._in_thread(fn, store)

    async def close(self) -> None:
        if self._writer is not None:
            await self._queue.put(_STOP)
            await self._writer
        if self._store is not None:
            await self._in_thread(self._store.close)
        self._thread.shutdown(wait=True)

    def spill(self) -> int:
        """Journal at once every record accepted and not yet written (those queued and the
        batch the writer holds), for an exit that cannot wait for the writer. A record the
        writer was storing meanwhile is stored twice at worst, which the store ignores.
        Returns how many were journaled."""
        records = list(self._taken)
        while not self._queue.empty():
            if isinstance(record := self._queue.get_nowait(), Record):
                records.append(record)
        items = []
        for record in records:
            try:
                items.append(prepare(record))
            except Exception:
                log.exception("could not prepare a record; skipped")
        if items:
            self.journal.append(items)
        return len(items)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            records = [r for r in batch if isinstance(r, Record)]
            self._taken = records
            try:
                if records:
                    await self._in_thread(self._write, await _prepare_all(records))
            finally:
                self._taken = []
                for _ in batch:
                    self._queue.task_done()
            if len(records) < len(batch):
                return

    def _private(self, record: Record) -> bool:
        """Whether the record mentions a file path the user keeps out of the record."""
        return (
            bool(self.skip_paths)
            and isinstance(record, InteractionRecord)
            and mentions_path(record, self.skip_paths)
        )

    def _open(self) -> Store | None:
        try:
            self._store = Store(self.store_target, self._busy_timeout)
        except StoreError as exc:
            log.error("%s; recording to the journal until it opens", exc.message)
            return None
        replayed = self.journal.replay(self._store)
        if replayed:
            log.warning("replayed %d interactions from the journal", replayed)
        return self._store

    def _write(self, items: list[Prepared]) -> None:
        store = self._store or self._open()
        if store is None:
            self.journal.append(items)
            return
        try:
            self.written += store.write(items)
        except StoreError as exc:
            log.error("%s; %d records journaled", exc.message, len(items))
            self.journal.append(items)
            return
        if self.journal.pending:
            self.written += self.journal.replay(store)


async def _prepare_all(records: list[Record], slice_size: int = 64) -> list[Prepared]:
    items = []
    for start in range(0, len(records), slice_size):
        for record in records[start : start + slice_size]:
            try:
                items.append(prepare(record))
            except Exception:  # one bad record must not cost the batch
                log.exception("could not prepare a record; skipped")
        await asyncio.sleep(0)  # let requests in between slices
    return items
