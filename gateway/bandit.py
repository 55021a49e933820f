"""How much traffic a candidate version gets, and when it has won or lost, from live rewards.

Each version's reward on a workload is a Beta posterior (prior Beta(1, 1)) over its judged
interactions: a success is an interaction no judgement went against (tool call validated and
its result came back clean, schema valid, accepted, not re-asked); a failure is one corrected,
rejected or failed. Unjudged interactions don't count.

The candidate's share is Thompson sampling in its probability-matching form: a Thompson draw
picks the candidate with probability P(candidate better), so that probability *is* its share,
known exactly, and recorded with each interaction as its propensity. Around it:
- a canary stage: until the candidate has `min_outcomes` judged outcomes it gets exactly the
  `floor` share. (Plain Thompson sampling starts two unknown versions near 50/50: in the
  simulation of `tests/unit/test_bandit.py` a worse candidate took 22 % of the traffic on
  average before it lost, and 3 runs in 100 promoted it.)
- a cap: at most `cap` of the traffic before promotion.
- decisions, once the candidate has `min_outcomes` outcomes: promote when P(better) exceeds
  `promote_at`, roll back when it falls below `rollback_at`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Decision = Literal["promote", "rollback"]


@dataclass(frozen=True)
class Posterior:
    """Judged outcomes of one version on one workload."""

    successes: int = 0
    failures: int = 0

    @property
    def n(self) -> int:
        return self.successes + self.failures

    @property
    def alpha(self) -> int:
        return self.successes + 1

    @property
    def beta(self) -> int:
        return self.failures + 1

    @property
    def rate(self) -> float | None:
        """The observed success rate (None before any outcome)."""
        return self.successes / self.n if self.n else None

    def add(self, success: bool) -> Posterior:
        return Posterior(self.successes + success, self.failures + (not success))


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
    floor: float = 0.05
    cap: float = 0.5
    min_outcomes: int = 50
    promote_at: float = 0.95
    rollback_at: float = 0.05

    def share(self, active: Posterior, candidate: Posterior) -> float:
        """The candidate's share of its workload's requests."""
        if candidate.n < self.min_outcomes:
            return self.floor
        return min(self.cap, prob_better(candidate, active))

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
