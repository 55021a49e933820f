"""What the dashboard's pages are made from: the settings, the recorder (a verdict given in
the review queue is recorded like any feedback), a store connection of its own for reading,
and, when the gateway serves model versions, the registry and the retrainer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.recording.recorder import Recorder
    from gateway.versions.registry import Registry
    from gateway.versions.schedule import Retrainer


@dataclass
class Versions:
    registry: Callable[[], Registry]
    base: str  # the served base's name (v0's base)
    retrainer: Retrainer


@dataclass
class Dashboard:
    settings: Settings
    recorder: Recorder
    versions: Versions | None = None
    _store: Store | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def store(self) -> Store:
        """Opened on first use (from a worker thread), so that a store that is down fails a
        page, not the gateway's start."""
        with self._lock:
            if self._store is None:
                self.settings.home.mkdir(parents=True, exist_ok=True)
                self._store = Store(self.settings.store_target)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
