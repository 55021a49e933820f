"""Continue's dev data, read from the files Continue writes: `~/.continue/dev_data/0.2.0/
<event>.jsonl` (under `$CONTINUE_GLOBAL_DIR` when set), one JSON object per line.

Each new line becomes the same `DevDataRecord` a `POST /devdata` makes, so both take one path to
the store: `autocomplete`, `editOutcome`, `toolUsage` and `chatFeedback` judge the answers they
name; other events are kept as read lines only. How far each file was read is kept in
`<home>/collectors/continue.json` (a truncated or replaced file is read again from its start, a
partial last line waits for its end), and every line's id is kept in the store, so a restart or
a second `loragate collect continue` never takes a line twice. A line that is not a JSON object
is counted as corrupt and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from collectors.jsonl import FolderWatcher, JsonlFolder, iso_timestamp, line_id, taken_before
from gateway.recording.records import DevDataRecord, prepare
from gateway.store import Store
from gateway.store.rows import LineRow

log = logging.getLogger("loragate")

COLLECTOR = "continue"
SCHEMA = "0.2.0"


def continue_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Continue's own folder on this machine (config.yaml, dev_data/)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("CONTINUE_GLOBAL_DIR") or "~/.continue").expanduser()


def dev_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where Continue writes its dev data on this machine."""
    return continue_dir(environ) / "dev_data" / SCHEMA


@dataclass
class DevDataFiles:
    """The dev-data files of one folder, read a line at a time, each line once."""

    lines: JsonlFolder

    @property
    def folder(self) -> Path:
        return self.lines.folder

    @classmethod
    def open(cls, folder: Path, home: Path) -> DevDataFiles:
        return cls(JsonlFolder.open(folder, home / "collectors" / f"{COLLECTOR}.json"))

    def read_new(self) -> Iterator[DevDataRecord]:
        """The records of every complete line written since the last read."""
        for path, line in self.lines.new_lines():
            yield record_of(path.stem, line)

    def save(self) -> None:
        self.lines.save()


def record_of(event: str, line: bytes) -> DevDataRecord:
    """A dev-data line as the record `POST /devdata` would make of it; `event` is the file's
    name (the line's own `eventName` wins)."""
    identity = line_id(event, line)
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        row = LineRow(id=identity, collector=COLLECTOR, event=event, status="corrupt",
                      created_at=time.time())  # fmt: skip
        return DevDataRecord("", {}, row["created_at"], line=row)
    given = data.get("eventName")
    name = given if isinstance(given, str) and given else event
    created_at = iso_timestamp(data.get("timestamp")) or time.time()
    row = LineRow(id=identity, collector=COLLECTOR, event=name, status="read",
                  created_at=created_at)  # fmt: skip
    return DevDataRecord(name, data, created_at, line=row)


@dataclass
class Summary:
    """What one pass over the files took: lines by event, and corrupt lines skipped."""

    events: Counter[str] = field(default_factory=Counter)
    corrupt: int = 0

    def add(self, record: DevDataRecord) -> None:
        if record.line is not None and record.line["status"] == "corrupt":
            self.corrupt += 1
        else:
            self.events[record.name] += 1

    @property
    def lines(self) -> int:
        return sum(self.events.values()) + self.corrupt


class Watcher(FolderWatcher):
    """Follows the folder while the gateway serves: every change is read and handed to
    `submit` (the recorder's), and the positions saved."""

    def __init__(self, files: DevDataFiles, submit: Callable[[DevDataRecord], None]) -> None:
        super().__init__("Continue dev data", files.folder, self.take)
        self.files = files
        self.submit = submit

    async def take(self) -> Summary:
        """Read what is new (off the event loop), hand it over, and remember how far."""
        records = await asyncio.to_thread(lambda: list(self.files.read_new()))
        summary = Summary()
        for n, record in enumerate(records, 1):
            self.submit(record)
            summary.add(record)
            if n % 200 == 0:
                await asyncio.sleep(0)  # requests being served go first
        await asyncio.to_thread(self.files.save)
        if summary.corrupt:
            log.warning("Continue dev data: %d corrupt lines skipped", summary.corrupt)
        return summary


@dataclass
class Report:
    """What `loragate collect continue` did, by what became of each line."""

    folder: Path
    read: Summary
    statuses: Counter[str]  # joined, unmatched, ignored, corrupt: of the lines taken now
    before: int  # lines taken by an earlier run (skipped)

    def __str__(self) -> str:
        if not self.read.lines:
            return f"nothing new in {self.folder}"
        events = ", ".join(f"{name} {n}" for name, n in sorted(self.read.events.items()))
        s = self.statuses
        return (
            f"read {self.read.lines} new lines from {self.folder} ({events or 'none whole'}): "
            f"{s['joined']} judged a recorded answer, {s['unmatched']} named an answer that "
            f"was not recorded, {s['ignored']} judge nothing; skipped {self.before} taken "
            f"before and {self.read.corrupt} corrupt"
        )


def collect(store: Store, files: DevDataFiles, batch: int = 2_000) -> Report:
    """Take every new line into the store now (the gateway need not run)."""
    read = Summary()
    fresh: list[str] = []
    pending: list[DevDataRecord] = []
    for record in files.read_new():
        read.add(record)
        pending.append(record)
        if len(pending) >= batch:
            fresh += _write(store, pending)
    fresh += _write(store, pending)
    files.save()
    statuses: Counter[str] = Counter()
    for chunk in _chunks(fresh):
        for status, n in store.query(
            f"SELECT status, count(*) FROM collected_lines WHERE id IN ({_marks(chunk)}) "
            "GROUP BY status", chunk,
        ):  # fmt: skip
            statuses[status] += n
    return Report(files.folder, read, statuses, before=read.lines - len(fresh))


def _write(store: Store, records: list[DevDataRecord]) -> list[str]:
    """Write and clear `records`; returns the ids of their lines that were not taken before."""
    ids = list(dict.fromkeys(r.line["id"] for r in records if r.line is not None))
    known = taken_before(store, ids)
    store.write([prepare(r) for r in records])
    records.clear()
    return [i for i in ids if i not in known]


def _chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _marks(chunk: list[str]) -> str:
    return ", ".join("?" * len(chunk))
