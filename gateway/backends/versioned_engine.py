"""The embedded engine serving several model versions, and swapping them without a failure.

Every version is its own `LlamaCppBackend`, but all of them share one worker thread: on a
CPU two llama.cpp computations at once only slow each other down, and requests keep their
arrival order across versions. A new version is loaded beside the others (on another
thread, so serving goes on), and only then does the router send it requests. A version the
router no longer names is released: new requests cannot reach it, requests already on it
finish, and it is kept warm as the standby (the last one released) so that a rollback to it
is immediate; the standby before it is freed once idle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path
from typing import Protocol

from gateway.backends.llamacpp import LlamaCppBackend
from gateway.backends.protocol import ModelInfo
from gateway.config import Settings
from gateway.errors import ModelNotFound
from gateway.generation import Event, GenerationRequest

log = logging.getLogger("loragate")


class Servable(Protocol):
    """What loading a version needs of it (a registry `Version` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def gguf(self) -> Path: ...


class VersionedEngines:
    """A `Backend` whose `request.model` is a version name (`base@vN`) or the base's name."""

    def __init__(self, make: Callable[[Path, ThreadPoolExecutor], LlamaCppBackend], path: Path):
        self._make = make
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp")
        self.base = make(path, self._executor)
        self.name = self.base.name
        self.base_version = f"{self.name}@v0"
        self._engines: dict[str, LlamaCppBackend] = {}
        self._busy: dict[LlamaCppBackend, int] = {}
        self._standby: tuple[str, LlamaCppBackend] | None = None
        self._retiring: set[LlamaCppBackend] = set()
        self._lock = asyncio.Lock()
        self._threads: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> VersionedEngines:
        template = LlamaCppBackend.from_settings(settings)

        def make(path: Path, executor: ThreadPoolExecutor) -> LlamaCppBackend:
            return template.sibling(path, executor)

        return cls(make, template.path)

    @property
    def path(self) -> Path:
        return self.base.path

    async def start(self) -> None:
        await self.base.start()
        self._engines[self.base_version] = self.base

    async def close(self) -> None:
        engines = {*self._engines.values(), *self._retiring}
        if self._standby:
            engines.add(self._standby[1])
        for engine in engines:
            await engine.close()
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def models(self) -> list[ModelInfo]:
        return await self.base.models()

    def queue_depth(self) -> int:
        """Requests waiting for the shared worker (the one running is not waiting)."""
        return max(0, sum(self._busy.values()) - 1)

    async def set_threads(self, n: int | None) -> None:
        """Threads for every engine, and for those loaded later (None: the default)."""
        async with self._lock:
            self._threads = n
            engines = {*self._engines.values()}
            if self._standby:
                engines.add(self._standby[1])
            for engine in engines:
                await engine.set_threads(n)

    def loaded(self) -> set[str]:
        return set(self._engines)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        version = request.model if "@" in request.model else self.base_version
        engine = self._engines.get(version)
        if engine is None:
            raise ModelNotFound(f"model version {version!r} is not loaded", param="model")
        self._busy[engine] = self._busy.get(engine, 0) + 1
        try:
            async with aclosing(engine.generate(request)) as events:
                async for event in events:
                    yield event
        finally:
            self._busy[engine] -= 1
            if self._busy[engine] == 0:
                del self._busy[engine]
                if engine in self._retiring:
                    self._retiring.discard(engine)
                    await engine.close()

    def backend_model(self, version: str) -> str:
        return version  # each version is served under its own name

    async def load(self, version: Servable) -> None:
        """Make `version` servable (a no-op when it already is, with the same file)."""
        await self.load_file(version.name, version.gguf)

    async def load_file(self, version: str, path: Path) -> None:
        async with self._lock:
            current = self._engines.get(version)
            if current is not None and current.path == path:
                return
            if self._standby and self._standby[0] == version and self._standby[1].path == path:
                self._engines[version] = self._standby[1]
                self._standby = None
            else:
                engine = self._make(path, self._executor)
                await engine.start()
                if self._threads is not None:
                    await engine.set_threads(self._threads)
                self._engines[version] = engine
            log.info("loaded %s from %s", version, path)

    async def release(self, version: str) -> None:
        """Stop sending requests to `version`; it becomes the standby."""
        if version == self.base_version:  # v0 always stays loaded
            if (base := self._engines.get(version)) is not None:
                await base.drop_cache()
            return
        async with self._lock:
            engine = self._engines.pop(version, None)
            if engine is None:
                return
            old, self._standby = self._standby, (version, engine)
            await engine.drop_cache()  # its conversations will not come back to it
            if old is not None:
                await self._retire(old[1])

    async def _retire(self, engine: LlamaCppBackend) -> None:
        if self._busy.get(engine):
            self._retiring.add(engine)  # freed by its last request
        else:
            await engine.close()
