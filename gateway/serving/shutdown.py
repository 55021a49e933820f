"""Stopping cleanly: SIGTERM or Ctrl-C.

The first signal stops new generations (503 `shutting_down`; listings, feedback and dev data
are still taken) and gives the running ones `grace` seconds to finish. Then uvicorn stops:
what still runs is cancelled, which stops the engine at its next token and records the
exchange as `aborted`, and the recorder writes everything queued before the process exits:
within grace + 2 s. A second signal exits at once, after journaling every record accepted and
not yet written (`Recorder.spill`); the next start replays the journal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from types import FrameType

import uvicorn

from gateway.serving.service import Service

log = logging.getLogger("loragate")
AFTER_GRACE = 1  # seconds uvicorn gives cancelled requests to wind down


class GracefulStop:
    def __init__(self, server: uvicorn.Server, service: Service, grace: float) -> None:
        self.server, self.service, self.grace = server, service, grace
        self.stopping = False
        server.config.timeout_graceful_shutdown = AFTER_GRACE
        server.handle_exit = self.handle  # type: ignore[method-assign]

    def handle(self, sig: int, frame: FrameType | None) -> None:
        """The signal handler: acts on the event loop, between its callbacks."""
        loop = asyncio.get_running_loop()
        loop.call_soon_threadsafe(self._exit_now if self.stopping else self._begin)
        self.stopping = True

    def _begin(self) -> None:
        self.service.closing = True
        running = self._running()
        if running:
            log.info("stopping: %d request(s) get up to %.0f s to finish (again to exit now)",
                     running, self.grace)  # fmt: skip
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.grace
        while self._running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.server.should_exit = True

    def _running(self) -> int:
        return len(self.server.server_state.tasks)

    def _exit_now(self) -> None:
        journaled = self.service.recorder.spill()
        log.warning("second signal: exiting now; %d record(s) journaled for the next start",
                    journaled)  # fmt: skip
        logging.shutdown()
        os._exit(1)
