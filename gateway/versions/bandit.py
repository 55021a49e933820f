"""How much traffic a candidate version gets, and when it has won or lost, from live rewards
and the offline evaluation that admitted it.

Each version's reward on a workload is a Beta posterior over its judged interactions: a
success is an interaction no judgement went against (tool call validated and its result came
back clean, schema valid, accepted, not re-asked); a failure is one corrected, rejected or
failed. Unjudged interactions don't count. The prior is Beta(1, 1) plus what `retrain`'s
held-out evaluation measured for both versions, discounted: each held-out item counts as one
live outcome, at most `MAX_PRIOR_ITEMS` of them however many were evaluated (`prior_from`).
One developer judges perhaps a hundred answers a day; without that evidence a trial would
take weeks.

The candidate's share grows with the evidence that it is better: `floor` (the canary share)
while P(candidate better) <= 1/2, rising linearly to `cap` as P(candidate better) reaches 1.
The share is known exactly and recorded with each interaction as its propensity. Once the
candidate has `min_outcomes` live outcomes: promote when P(better) exceeds `promote_at`, roll
back when it falls below `rollback_at`. The simulation in `tests/unit/test_bandit.py` shows
what these defaults do at 100 judged outcomes a day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Decision = Literal["promote", "rollback"]


@dataclass(frozen=True)
class Posterior:
    """Judged outcomes of one version on one workload; `prior` adds pseudo-outcomes
    (successes, failures) from an offline evaluation."""

    successes: int = 0
    failures: int = 0
    prior: tuple[int, int] = (0, 0)

    @property
    def n(self) -> int:
        """Live outcomes only."""
        return self.successes + self.failures

    @property
    def alpha(self) -> int:
        return self.successes + self.prior[0] + 1

    @property
    def beta(self) -> int:
        return self.failures + self.prior[1] + 1

    @property
    def rate(self) -> float | None:
        """The observed success rate (None before any outcome)."""
        return self.successes / self.n if self.n else None

    def add(self, success: bool) -> Posterior:
        return Posterior(self.successes + success, self.failures + (not success), self.prior)

    def with_prior(self, prior: tuple[int, int]) -> Posterior:
        return Posterior(self.successes, self.failures, prior)


PRIOR_WEIGHT = 1.0  # live outcomes one held-out item is worth
MAX_PRIOR_ITEMS = 20


def prior_from(right: float, items: int) -> tuple[int, int]:
    """Pseudo-outcomes (successes, failures) from a right rate on `items` held-out items."""
    weight = PRIOR_WEIGHT * min(items, MAX_PRIOR_ITEMS)
    successes = math.floor(weight * right + 0.5)
    return successes, math.floor(weight + 0.5) - successes


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a rate (95 % by default); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def prob_better(b: Posterior, a: Posterior) -> float:
    """P(θ_b > θ_a) for θ ~ Beta posteriors: the exact finite sum for integer parameters,
    over whichever of the two has fewer terms."""
    if b.alpha > a.alpha:
        return 1.0 - prob_better(a, b)
    aa, ba, ab, bb = a.alpha, a.beta, b.alpha, b.beta
    base = _lbeta(aa, ba)
    total = 0.0
    for i in range(ab):
        total += math.exp(_lbeta(aa + i, ba + bb) - math.log(bb + i) - _lbeta(1 + i, bb) - base)
    return min(1.0, max(0.0, total))


@dataclass(frozen=True)
class Policy:
    floor: float = 0.1
    cap: float = 0.9
    min_outcomes: int = 3
    promote_at: float = 0.95
    rollback_at: float = 0.1

    def share(self, active: Posterior, candidate: Posterior) -> float:
        """The candidate's share of its workload's requests."""
        evidence = max(0.0, 2 * prob_better(candidate, active) - 1)
        return self.floor + (self.cap - self.floor) * evidence

    def decide(self, active: Posterior, candidate: Posterior) -> tuple[Decision | None, float]:
        """Whether the candidate has won or lost, and P(candidate better)."""
        p = prob_better(candidate, active)
        if candidate.n < self.min_outcomes:
            return None, p
        if p > self.promote_at:
            return "promote", p
        if p < self.rollback_at:
            return "rollback", p
        return None, p
