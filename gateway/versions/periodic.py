"""A step the gateway repeats for as long as it serves (the rollout's registry watch, live
routing, the retrain schedule): a failing step is logged and the next one runs on time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gateway.errors import LoragateError

log = logging.getLogger("loragate")


class Periodic:
    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[object]],
        interval: float,
        *,
        what: str,
        immediately: bool = False,
    ) -> None:
        """`what` prefixes the warning for a typed error; `immediately`: the first step runs
        at start rather than one interval later."""
        self.name = name
        self.step = step
        self.interval = interval
        self.what = what
        self.immediately = immediately
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        if not self.immediately:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self.step()
            except LoragateError as exc:
                log.warning("%s: %s", self.what, exc.message)
            except Exception:
                log.exception("%s", self.what)
            await asyncio.sleep(self.interval)
