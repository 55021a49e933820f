"""Following JSON-lines files that a client appends to, for every collector: each complete
line is read once. How far each file was read (its inode and offset) is kept in a state file
between runs; a file with another inode (rotated and replaced) or shorter than the offset
(truncated) is read from its start, and a last line without its newline waits for the rest.
Collectors also store an id per line with what the line says, so a line read twice (a lost
state file) still counts once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.store import Store

log = logging.getLogger("loragate")


@dataclass
class Position:
    inode: int
    offset: int


@dataclass
class JsonlFolder:
    """The `pattern` files of one folder, and how far each has been read."""

    folder: Path
    state: Path  # where the positions are kept between runs
    pattern: str = "*.jsonl"
    positions: dict[str, Position] = field(default_factory=dict)

    @classmethod
    def open(cls, folder: Path, state: Path, pattern: str = "*.jsonl") -> JsonlFolder:
        files = cls(folder, state, pattern)
        with contextlib.suppress(FileNotFoundError, ValueError):
            saved = json.loads(state.read_text(encoding="utf-8"))
            files.positions = {name: Position(**p) for name, p in saved.items()}
        return files

    def new_lines(self) -> Iterator[tuple[Path, bytes]]:
        """(file, line) for every complete, non-empty line written since the last read;
        positions move on as lines are taken (call `save` once they are stored)."""
        for path in sorted(self.folder.glob(self.pattern)):
            yield from self._read(path)

    def _read(self, path: Path) -> Iterator[tuple[Path, bytes]]:
        try:
            fh = path.open("rb")
        except FileNotFoundError:  # rotated away between the listing and the open
            return
        with fh:
            stat = os.fstat(fh.fileno())
            known = self.positions.get(path.name)
            start = known.offset if known and known.inode == stat.st_ino else 0
            if start > stat.st_size:  # truncated: written again from the start
                start = 0
            fh.seek(start)
            data = fh.read(stat.st_size - start)
        end = data.rfind(b"\n") + 1  # a partial last line waits for the rest
        offset = start
        for raw in data[:end].splitlines(keepends=True):
            offset += len(raw)
            line = raw.strip()
            if line:
                yield path, line
            self.positions[path.name] = Position(stat.st_ino, offset)
        if path.name not in self.positions:
            self.positions[path.name] = Position(stat.st_ino, start)

    def save(self) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        staging = self.state.with_suffix(".tmp")
        staging.write_text(json.dumps({k: vars(v) for k, v in self.positions.items()}))
        staging.replace(self.state)


def iso_timestamp(value: Any) -> float | None:
    """An ISO 8601 time as clients write it (`2026-11-26T07:01:02.345Z`) as Unix time; None
    for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def taken_before(store: Store, ids: list[str]) -> set[str]:
    """Which of these line ids a collector stored before (in `collected_lines`)."""
    known: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT id FROM collected_lines WHERE id IN ({marks})"
        known.update(row[0] for row in store.query(sql, chunk))
    return known


def line_id(source: str, line: bytes) -> str:
    """A line's id: the same line of the same file is the same event."""
    return hashlib.sha256(source.encode() + b"\0" + line).hexdigest()[:32]


class FolderWatcher:
    """Runs `take` once at start (what was written while the gateway was down), then after
    every change in `folder` (watchfiles), until closed; serving goes on if the folder goes."""

    def __init__(self, name: str, folder: Path, take: Callable[[], Awaitable[Any]]) -> None:
        self.name, self.folder, self.take = name, folder, take
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name=f"loragate-{self.name}")

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _follow(self) -> None:
        from watchfiles import awatch

        try:
            await self.take()
            async for _ in awatch(self.folder, stop_event=self._stop, debounce=200):
                await self.take()
        except Exception as exc:  # the folder went away, say
            log.warning("%s no longer followed: %s", self.name, exc)


def pairs_file(home: Path, collector: str, project: Path) -> Path:
    """Where a collector that makes examples from a project keeps what it made, one JSON line
    each: `<home>/collectors/<collector>/<project name>-<key>.jsonl`."""
    key = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:8]
    return home / "collectors" / collector / f"{project.resolve().name}-{key}.jsonl"


def done_keys(path: Path, key: str) -> set[str]:
    """The `key` of each line of a pairs file: what an earlier run did (a torn last line is
    done again)."""
    done = set()
    if path.exists():
        for line in path.read_bytes().splitlines():
            try:
                done.add(json.loads(line)[key])
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                continue
    return done
