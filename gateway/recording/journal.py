"""The journal: where records go when the store cannot take them (queue full, database locked,
disk full, PostgreSQL down), as JSON lines of prepared items under `<home>/journal/`.

Files are appended to and replayed under an exclusive `flock`, so `loragate log forget` (another
process) can rewrite them in place while the gateway runs without losing an append.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

from gateway.store import Store, StoreError
from gateway.store.rows import Prepared

log = logging.getLogger("loragate.journal")


@contextmanager
def _locked(path: Path, mode: str) -> Iterator[IO[str]]:
    with path.open(mode, encoding="utf-8", errors="replace") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield fh  # closing the file releases the lock


class Journal:
    """Append-only JSON lines of prepared items; appends are thread- and process-safe.

    When the journal cannot be written either (the disk is full), items are held in memory, up
    to `hold` of them, and go to the store with the next replay."""

    def __init__(self, folder: Path, hold: int = 100_000) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._path = folder / f"pending-{int(time.time() * 1000)}-{os.getpid()}.jsonl"
        self._held: list[Prepared] = []
        self._hold = hold
        self.pending = False

    def append(self, items: list[Prepared]) -> None:
        lines = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
        with self._lock:
            self.pending = True
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with _locked(self._path, "a") as fh:
                    fh.write(lines)
                    fh.flush()
                return
            except OSError as exc:
                room = max(self._hold - len(self._held), 0)
                self._held.extend(items[:room])
                lost = len(items) - room if len(items) > room else 0
                log.error(
                    "journal %s: cannot write (%s); %d records held in memory%s",
                    self._path, exc, len(self._held),
                    f", {lost} lost" if lost else "",
                )  # fmt: skip

    def replay(self, store: Store) -> int:
        """Write every journaled item to the store and delete the files that made it."""
        written = 0
        with self._lock:
            if self._held:
                try:
                    written += store.write(self._held)
                except StoreError as exc:
                    log.error("%d held records not written yet (%s)", len(self._held), exc)
                    return written
                self._held = []
            for path in sorted(self.folder.glob("pending-*.jsonl")):
                with _locked(path, "r") as fh:
                    items = _parse(fh, path)
                    try:
                        written += store.write(items)
                    except StoreError as exc:
                        log.error("journal %s: replay failed (%s); kept for later", path, exc)
                        return written
                    path.unlink()
            self.pending = False
        return written

    def forget(self, drop: Callable[[Prepared], bool]) -> int:
        """Remove the journaled interactions `drop` selects (and the outcomes and corrections
        that name them), rewriting each file in place; returns the interactions removed."""
        removed = 0
        for path in sorted(self.folder.glob("pending-*.jsonl")):
            with _locked(path, "r+") as fh:
                items = _parse(fh, path)
                gone = {i["interaction"]["id"] for i in items if "interaction" in i and drop(i)}
                if not gone:
                    continue
                kept = [i for i in items if not _names(i, gone)]
                fh.seek(0)
                fh.writelines(json.dumps(i, ensure_ascii=False) + "\n" for i in kept)
                fh.truncate()
                removed += len(gone)
        return removed


def _names(item: Prepared, ids: set[str]) -> bool:
    if item.get("interaction", {}).get("id") in ids:
        return True
    judged = [o.get("interaction_id") for o in item.get("outcomes", [])]
    judged += [c.get("interaction_id") for c in item.get("corrections", [])]
    return any(i in ids for i in judged)


def _parse(fh: IO[str], path: Path) -> list[Prepared]:
    items: list[Prepared] = []
    for number, line in enumerate(fh, 1):
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not an object")
            items.append(cast(Prepared, item))  # a line the journal wrote
        except ValueError as exc:
            log.warning("journal %s:%d: corrupt line skipped (%s)", path, number, exc)
    return items
