"""Which model version answers a request, per workload.

The table comes from the registry (`registry.py`): per workload an active version and
at most one candidate, which answers its lane's `share` of the requests (the canary share
until live rewards set it: `bandit.py`, `live.py`). Each choice is returned
with its probability, which the recorder keeps as the interaction's propensity. A request
pinned to a version (`model@vN`, or the `X-Loragate-Model-Version` header) skips the choice.
A choice is one dict lookup and one random number: routing costs about a microsecond.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace

from gateway.errors import ModelNotFound

ALL = "*"
PIN_HEADER = "x-loragate-model-version"


@dataclass(frozen=True)
class Choice:
    version: str
    propensity: float


@dataclass(frozen=True)
class Lane:
    """What serves one workload, by version name."""

    active: str
    candidate: str | None = None
    share: float | None = None  # the candidate's; None: the router's canary share


class Router:
    def __init__(
        self,
        base: str,
        *,
        served: str | None = None,
        canary_share: float = 0.05,
        seed: int | None = None,
    ) -> None:
        """`base`: the registry's name of the base (`<base>@vN`); `served`: the published model
        whose requests are routed (the base's own name on the embedded engine, the upstream's
        name for it otherwise)."""
        self.base = base
        self.served = served or base
        self.canary_share = canary_share
        self._lanes: dict[str, Lane] = {}
        # the table is swapped by the rollout (event loop) and shares set by live routing (a
        # worker thread): each read-modify-write holds this, so neither undoes the other;
        # choices read the table without it
        self._writing = threading.Lock()
        self._random = random.Random(seed)

    @property
    def base_version(self) -> str:
        return f"{self.base}@v0"

    def update(self, lanes: dict[str, Lane]) -> None:
        """Swap the whole table at once: the next choice sees only the new one. A candidate
        that stays keeps the share it had."""
        with self._writing:
            old = self._lanes
            self._lanes = {
                w: replace(lane, share=old[w].share)
                if lane.share is None and w in old and old[w].candidate == lane.candidate
                else lane
                for w, lane in lanes.items()
            }

    def lanes(self) -> dict[str, Lane]:
        return dict(self._lanes)

    def set_share(self, workload: str, candidate: str, share: float) -> None:
        """The candidate's share of `workload`, if it is still that lane's candidate."""
        with self._writing:
            lane = self._lanes.get(workload)
            if lane is not None and lane.candidate == candidate:
                self._lanes = {**self._lanes, workload: replace(lane, share=share)}

    def lane(self, workload: str) -> Lane | None:
        return self._lanes.get(workload) or self._lanes.get(ALL)

    def other_version(self, workload: str, version: str) -> str | None:
        """The version to try after `version` failed: the lane's candidate and active stand in
        for each other; without a candidate, the base (v0) for a trained active version."""
        lane = self.lane(workload)
        if lane is None:
            return None
        for first, second in ((lane.active, lane.candidate), (lane.candidate, lane.active)):
            if version == first and second is not None:
                return second
        return self.base_version if version != self.base_version else None

    def share(self, workload: str) -> float:
        """The candidate's share of the lane serving `workload` (0 without a candidate)."""
        lane = self.lane(workload)
        return self._share_of(lane) if lane is not None and lane.candidate else 0.0

    def _share_of(self, lane: Lane) -> float:
        return self.canary_share if lane.share is None else lane.share

    def versions(self) -> set[str]:
        """Every version that may be chosen or pinned right now."""
        names = {self.base_version}
        for lane in self._lanes.values():
            names.add(lane.active)
            if lane.candidate:
                names.add(lane.candidate)
        return names

    def choose(self, workload: str, pinned: str | None = None) -> Choice:
        if pinned:
            if pinned not in self.versions():
                raise ModelNotFound(
                    f"model version {pinned!r} is not served; served: "
                    f"{', '.join(sorted(self.versions()))}",
                    param="model",
                )
            return Choice(pinned, 1.0)
        lane = self.lane(workload)
        if lane is None:
            return Choice(self.base_version, 1.0)
        if lane.candidate is None:
            return Choice(lane.active, 1.0)
        share = self._share_of(lane)
        if self._random.random() < share:
            return Choice(lane.candidate, share)
        return Choice(lane.active, 1.0 - share)

    def active_version(self, workload: str = ALL) -> str:
        lane = self.lane(workload)
        return lane.active if lane else self.base_version
