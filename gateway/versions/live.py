"""Live trials: a workload's candidate against its active version, on judged interactions.

Every few seconds the gateway reads, per lane with a candidate, the judged interactions each of
the two versions answered since the candidate entered (routed ones only: pinned requests carry
propensity 1 and are left out), sets the candidate's share from the posteriors
(`bandit.py`), and, when the policy says so, promotes the candidate or rolls it back
through the registry with the reason; the rollout then swaps as for any registry change.
`loragate status` reads the same trials.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.store import Store
from gateway.versions.bandit import Decision, Policy, Posterior, prior_from
from gateway.versions.periodic import Periodic
from gateway.versions.router import ALL, Router

if TYPE_CHECKING:
    from gateway.versions.registry import Registry, Version

log = logging.getLogger("loragate")

# A judged interaction has an outcome (comments aside) or a correction; it is a success when it
# has no correction and no outcome went against it (scores below 0.5 count against).
_REWARDS = """
SELECT i.version AS version, count(*) AS judged,
       sum(CASE WHEN c.interaction_id IS NULL AND o.worst >= 0.5 THEN 1 ELSE 0 END) AS successes
FROM interactions AS i
LEFT JOIN (SELECT interaction_id, min(value) AS worst FROM outcomes WHERE kind <> 'comment'
           GROUP BY interaction_id) AS o ON o.interaction_id = i.id
LEFT JOIN (SELECT DISTINCT interaction_id FROM corrections) AS c ON c.interaction_id = i.id
WHERE i.created_at >= ? AND i.version IN (?, ?) AND i.kind <> 'shadow' {routed}
  AND (o.interaction_id IS NOT NULL OR c.interaction_id IS NOT NULL) {workloads}
GROUP BY i.version
"""


@dataclass(frozen=True)
class Trial:
    workload: str
    active: str
    candidate: str
    since: float
    active_rewards: Posterior
    candidate_rewards: Posterior
    share: float
    p_better: float
    decision: Decision | None


def rewards(
    store: Store,
    versions: tuple[str, str],
    since: float,
    workload: str,
    others: list[str],
    *,
    routed_only: bool = True,
) -> tuple[Posterior, Posterior]:
    """Judged outcomes of the two versions on `workload` (for `*`: every workload but
    `others`, which have lanes of their own) since `since`; `routed_only`: leave out requests
    that were not chosen between the two (propensity 1: pinned, or no candidate)."""
    if workload == ALL:
        marks = ", ".join("?" for _ in others)
        where, extra = (f"AND i.workload NOT IN ({marks})", tuple(others)) if others else ("", ())
    else:
        where, extra = "AND i.workload = ?", (workload,)
    sql = _REWARDS.format(workloads=where, routed="AND i.propensity < 1.0" if routed_only else "")
    rows = store.query(sql, (since, *versions, *extra))
    found = {r["version"]: Posterior(int(r["successes"]), int(r["judged"] - r["successes"]))
             for r in rows}  # fmt: skip
    return found.get(versions[0], Posterior()), found.get(versions[1], Posterior())


def trials(registry: Registry, base: str, policy: Policy) -> list[Trial]:
    """Every lane of `base` that has a candidate, measured."""
    routing = registry.routing(base)
    others = [w for w in routing if w != ALL]
    found = []
    for workload, slot in routing.items():
        if slot.candidate is None:
            continue
        since = registry.state_since(slot.candidate.name, workload)
        pair = (slot.active.name, slot.candidate.name)
        active, candidate = rewards(registry.store, pair, since, workload, others)
        active_prior, candidate_prior = offline_priors(slot.candidate, slot.active.name)
        active, candidate = active.with_prior(active_prior), candidate.with_prior(candidate_prior)
        decision, p = policy.decide(active, candidate)
        share = policy.share(active, candidate)
        found.append(Trial(workload, *pair, since, active, candidate, share, p, decision))
    return found


def offline_priors(candidate: Version, active: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Pseudo-outcomes for (active, candidate) from the held-out evaluation `retrain` ran
    between the two (none when it was measured against another version)."""
    held = candidate.metrics.get("held_out") or {}
    if held.get("against") != active or not held.get("n"):
        return (0, 0), (0, 0)
    return prior_from(held["active_right"], held["n"]), prior_from(held["right"], held["n"])


def policy_of(settings: Settings) -> Policy:
    return Policy(
        floor=settings.canary_share,
        cap=settings.canary_cap,
        min_outcomes=settings.canary_outcomes,
    )


def describe(trial: Trial) -> str:
    a, c = trial.active_rewards, trial.candidate_rewards
    return (
        f"live: P(better) {trial.p_better:.3f} after {c.n} judged outcomes of {trial.candidate} "
        f"(reward {c.rate or 0:.3f}) and {a.n} of {trial.active} (reward {a.rate or 0:.3f})"
    )


class LiveRouting:
    """Keeps candidate shares current and acts on the policy's decisions."""

    def __init__(
        self,
        router: Router,
        registry: Callable[[], Registry],
        *,
        policy: Policy,
        decide: bool = True,
        interval: float = 5.0,
    ) -> None:
        self.router = router
        self.registry = registry
        self.policy = policy
        self.decide = decide
        self._loop = Periodic("loragate-live", lambda: asyncio.to_thread(self.step), interval,
                              what="live routing not updated")  # fmt: skip

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    def step(self) -> list[Trial]:
        """Measure every trial once, set shares, act on decisions."""
        registry = self.registry()
        measured = trials(registry, self.router.base, self.policy)
        for trial in measured:
            self.router.set_share(trial.workload, trial.candidate, trial.share)
            if not self.decide or trial.decision is None:
                continue
            current = registry.candidate(self.router.base, trial.workload)
            if current is None or current.name != trial.candidate:
                continue  # changed by someone else since it was measured: theirs stands
            reason = describe(trial)
            if trial.decision == "promote":
                registry.promote(trial.candidate, trial.workload, reason=reason)
            else:
                registry.rollback(self.router.base, trial.workload, reason=reason)
            log.info("%s %s for %s: %s", trial.decision, trial.candidate, trial.workload, reason)
        return measured
