"""Long work, said as it happens: a stage announces itself, records how long it took, and
says when it failed (Ctrl-C is not a failure)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType

Say = Callable[[str], None]


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Stage:
    """`with Stage("export", seconds, say, label="[3/6] export"):` says `label ...`, and on leaving
    stores the elapsed seconds under `name`."""

    def __init__(
        self, name: str, seconds: dict[str, float], say: Say, *, label: str | None = None
    ) -> None:
        self.name, self.seconds, self.say = name, seconds, say
        self.label = label or name

    def __enter__(self) -> None:
        self.started = time.perf_counter()
        self.say(f"{self.label} ...")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self.started
        self.seconds[self.name] = round(elapsed, 2)
        if kind is not None and not issubclass(kind, KeyboardInterrupt):
            self.say(f"{self.name} failed after {elapsed:.0f} s")
