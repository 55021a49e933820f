"""Keeps a serving gateway in step with the registry: the hot swap.

`loragate retrain`, `models promote` and `rollback` only change rows in the store; every
gateway watches the newest deployment id (a cheap query, four times a second) and, when it
moves, loads the versions the registry now names, switches the router's table in one
assignment, releases the versions no longer named (their requests finish first), and has live
routing measure the new table at once (a new candidate's share comes from the offline
evaluation that admitted it from its first request, not from the next live pass). A
version that fails to load is marked `failed` with the reason, and the table stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.errors import LoragateError
from gateway.versions.hosts import VersionHost
from gateway.versions.periodic import Periodic
from gateway.versions.router import Lane, Router

if TYPE_CHECKING:
    from gateway.versions.registry import Registry, Version

log = logging.getLogger("loragate")


class Rollout:
    def __init__(
        self,
        host: VersionHost,
        router: Router,
        registry: Callable[[], Registry],
        *,
        interval: float = 0.25,
        on_change: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.host = host
        self.router = router
        self.registry = registry
        self.on_change = on_change  # after a new table: live routing sets shares at once
        self.deployment = -1  # the newest deployment applied
        self._watch = Periodic("loragate-rollout", self._sync_if_changed, interval,
                               what="model versions not read")  # fmt: skip

    async def start(self) -> None:
        """Register the served base as v0 (once), apply the current table, then watch."""
        try:
            await self._sync_if_changed()
        except LoragateError as exc:
            log.warning("model versions not read (serving the base model): %s", exc.message)
        self._watch.start()

    async def close(self) -> None:
        await self._watch.close()

    async def _sync_if_changed(self) -> None:
        registry = await asyncio.to_thread(self.registry)
        deployment = await asyncio.to_thread(registry.last_deployment)
        if deployment == self.deployment:
            return
        routing = await asyncio.to_thread(registry.routing, self.host.name)
        lanes: dict[str, Lane] = {}
        for workload, slot in routing.items():
            candidate = slot.candidate
            if candidate is not None and not await self._load(registry, candidate, workload):
                candidate = None
            active = slot.active
            if not await self._load(registry, active, workload):
                return  # marked failed: the next deployment brings the table without it
            lanes[workload] = Lane(active.name, candidate.name if candidate else None)
        log.info("serving %s", describe(lanes))
        self.router.update(lanes)
        self.deployment = deployment
        for version in self.host.loaded() - self.router.versions():
            await self.host.release(version)
        if self.on_change is not None:
            try:
                await self.on_change()
            except Exception as exc:  # its own next pass will try again
                log.warning("live routing not updated after the swap: %s", exc)

    async def _load(self, registry: Registry, version: Version, workload: str) -> bool:
        try:
            await self.host.load(version)
            return True
        except LoragateError as exc:
            reason = f"could not be loaded: {exc.message}"
            log.error("%s %s", version.name, reason)
            await asyncio.to_thread(registry.set_state, version.name, workload, "failed", reason)
            return False


def describe(lanes: dict[str, Lane]) -> str:
    """`* → m@v1 (candidate m@v2)`, one workload after the other."""
    return "; ".join(
        f"{workload} → {lane.active}" + (f" (candidate {lane.candidate})" if lane.candidate else "")
        for workload, lane in sorted(lanes.items())
    )
