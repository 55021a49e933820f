"""Per workload, what serves it and how well, from the store alone (`loragate status` and the
dashboard).

For each lane: the active version and the candidate, their traffic shares (as the
gateway sets them: `gateway/versions/live.py`), judged outcomes and reward with a Wilson 95 %
interval (since the candidate entered; without a candidate, since the active version became
active), the candidate's P(better), the last promotion or rollback with its reason, and when
the next scheduled retrain is due.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.config import Settings, parse_duration
from gateway.versions.bandit import Policy, Posterior, wilson
from gateway.versions.live import rewards, trials
from gateway.versions.router import ALL

if TYPE_CHECKING:
    from gateway.versions.registry import Registry


def _measured(version: str, role: str, share: float, posterior: Posterior) -> dict[str, Any]:
    low, high = wilson(posterior.successes, posterior.n)
    return {"version": version, "role": role, "share": share, "judged": posterior.n,
            "reward": posterior.rate, "interval": [low, high]}  # fmt: skip


def _shadow(registry: Registry, version: str, since: float) -> dict[str, Any]:
    """How the candidate's shadow answers fared on the automatic checks."""
    row = registry.store.one(
        "SELECT count(*), coalesce(sum(CASE WHEN worst >= 0.5 THEN 1 ELSE 0 END), 0) FROM "
        "(SELECT min(o.value) AS worst FROM interactions AS i JOIN outcomes AS o ON "
        "o.interaction_id = i.id WHERE i.kind = 'shadow' AND i.version = ? AND i.created_at >= ? "
        "GROUP BY i.id) AS checked",
        (version, since),
    )
    checked, passed = int(row[0]), int(row[1])
    return {"checked": checked, "passed": passed, "interval": list(wilson(passed, checked))}


def status(
    registry: Registry, base: str, policy: Policy, settings: Settings, gateway: str | None = None
) -> dict[str, Any]:
    """`gateway`: where the gateway serving this home answers, when one does."""
    routing = registry.routing(base)
    measured = {t.workload: t for t in trials(registry, base, policy)}
    others = [w for w in routing if w != ALL]
    lanes = []
    for workload, slot in routing.items():
        trial = measured.get(workload)
        if trial is not None:
            versions = [
                _measured(trial.active, "active", 1 - trial.share, trial.active_rewards),
                _measured(trial.candidate, "candidate", trial.share, trial.candidate_rewards),
            ]
            versions[1]["shadow"] = _shadow(registry, trial.candidate, trial.since)
        else:
            since = registry.state_since(slot.active.name, workload)
            pair = (slot.active.name, slot.active.name)
            own, _ = rewards(registry.store, pair, since, workload, others, routed_only=False)
            versions = [_measured(slot.active.name, "active", 1.0, own)]
        last = registry.store.one(
            "SELECT at, action, version, previous, reason FROM deployments WHERE workload = ? "
            "AND action IN ('promote', 'active', 'rollback', 'withdraw') ORDER BY id DESC LIMIT 1",
            (workload,),
        )
        lanes.append({
            "workload": workload, "versions": versions,
            "p_better": trial.p_better if trial else None,
            "last_change": dict(zip(("at", "action", "version", "previous", "reason"), last,
                                    strict=True)) if last else None,
        })  # fmt: skip
    return {"base": base, "gateway": gateway, "lanes": lanes,
            "next_retrain": _next_retrain(registry, settings)}  # fmt: skip


def _next_retrain(registry: Registry, settings: Settings) -> dict[str, Any] | None:
    if not settings.retrain_every:
        return None
    from gateway.versions.schedule import due

    found = due(registry.store, parse_duration(settings.retrain_every),
                settings.retrain_min_new_examples)  # fmt: skip
    return {"due": found.due, "reason": found.reason, "check_in_s": found.next_check_after}
