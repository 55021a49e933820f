"""The one registry a serving gateway reads and changes."""

from __future__ import annotations

import threading
from pathlib import Path

from gateway.store import Store
from gateway.versions.registry import Registry


class RegistryHandle:
    """Built once by the app and shared by the hot swap and live routing. The registry opens
    (the store connected and migrated, the served base registered as v0) on first use, from
    whichever worker thread asks first, so that a store that is down delays versions, not the
    start; the store then takes one call at a time."""

    def __init__(self, target: Path | str, home: Path, base_gguf: Path, base_name: str) -> None:
        self.target, self.home = target, home
        self.base_gguf, self.base_name = base_gguf, base_name
        self._registry: Registry | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Registry:
        with self._lock:
            if self._registry is None:
                self.home.mkdir(parents=True, exist_ok=True)
                registry = Registry(Store(self.target), self.home)
                registry.ensure_base(self.base_gguf, self.base_name)
                self._registry = registry
            return self._registry

    def close(self) -> None:
        with self._lock:
            if self._registry is not None:
                self._registry.store.close()
                self._registry = None
