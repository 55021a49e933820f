"""Live routing between an active version and a candidate: the posterior arithmetic, the
policy, and a simulation of whole trials with versions of known reward."""

from __future__ import annotations

import random
import sys
import threading

import pytest

from gateway.bandit import Policy, Posterior, prob_better
from gateway.router import Lane, Router


@pytest.mark.parametrize(
    ("candidate", "active", "expected"),
    [
        (Posterior(0, 0), Posterior(0, 0), 0.5),
        (Posterior(1, 3), Posterior(3, 1), 0.1032),  # Beta(2,4) vs Beta(4,2)
        (Posterior(40, 10), Posterior(30, 20), 0.9848),
        (Posterior(60, 40), Posterior(700, 300), 0.0199),
    ],
)
def test_prob_better_is_exact(candidate: Posterior, active: Posterior, expected: float) -> None:
    """Values checked against 100,000-draw Monte Carlo estimates (±0.003)."""
    assert prob_better(candidate, active) == pytest.approx(expected, abs=5e-4)
    assert prob_better(active, candidate) == pytest.approx(1 - expected, abs=5e-4)


def test_a_candidate_is_a_canary_until_it_has_enough_outcomes() -> None:
    policy = Policy(floor=0.05, cap=0.5, min_outcomes=50)
    strong = Posterior(49, 0)  # perfect, but 49 outcomes: no decision and the floor share
    assert policy.share(Posterior(60, 40), strong) == 0.05
    assert policy.decide(Posterior(60, 40), strong)[0] is None
    assert policy.share(Posterior(60, 40), strong.add(True)) == 0.5  # capped before promotion
    assert policy.decide(Posterior(60, 40), strong.add(True))[0] == "promote"
    assert policy.decide(Posterior(90, 10), Posterior(25, 25))[0] == "rollback"
    close = policy.decide(Posterior(60, 40), Posterior(31, 19))
    assert close[0] is None and 0.05 < close[1] < 0.95


def test_the_router_uses_the_share_it_is_given_and_keeps_it_across_updates() -> None:
    router = Router("m", canary_share=0.05, seed=3)
    router.update({"*": Lane("m@v1", "m@v2")})
    router.set_share("*", "m@v2", 0.4)
    choices = [router.choose("chat") for _ in range(4000)]
    assert 0.37 < sum(c.version == "m@v2" for c in choices) / 4000 < 0.43
    assert {c.propensity for c in choices} == {0.4, 0.6}
    router.update({"*": Lane("m@v1", "m@v2"), "byllm": Lane("m@v1")})
    assert router.share("chat") == 0.4  # the same candidate keeps its share
    router.update({"*": Lane("m@v1", "m@v3")})
    assert router.share("chat") == 0.05  # a new candidate starts as a canary
    router.set_share("*", "m@v2", 0.5)  # a stale share for a candidate gone: ignored
    assert router.share("chat") == 0.05


def test_a_share_set_from_another_thread_never_undoes_a_table_swap() -> None:
    """Live routing sets shares from a worker thread while the rollout swaps the table on the
    event loop: a promotion swapped in must stay, however the two interleave."""
    router = Router("m")
    stop = threading.Event()

    def live() -> None:
        while not stop.is_set():
            router.set_share("*", "m@v1", 0.3)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    worker = threading.Thread(target=live)
    worker.start()
    try:
        for _ in range(3000):
            router.update({"*": Lane("m@v0", "m@v1")})
            router.update({"*": Lane("m@v1")})  # promoted
            assert router.lanes()["*"] == Lane("m@v1")
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(previous)


def simulate(seed: int, active: float, candidate: float, policy: Policy) -> tuple[str, int, float]:
    """One trial as the gateway runs it: the router picks, each answer is judged a success
    with the version's reward probability, and every 10 judged outcomes the shares are set
    and the policy asked. Returns (decision, judged outcomes, the candidate's traffic share)."""
    rewards = {"m@v0": active, "m@v1": candidate}
    router = Router("m", canary_share=policy.floor, seed=seed)
    router.update({"*": Lane("m@v0", "m@v1")})
    judged = {"m@v0": Posterior(), "m@v1": Posterior()}
    outcomes = random.Random(10_000 + seed)
    to_candidate = 0
    for n in range(1, 20_001):
        version = router.choose("*").version
        to_candidate += version == "m@v1"
        judged[version] = judged[version].add(outcomes.random() < rewards[version])
        if n % 10 == 0:
            decision, _ = policy.decide(judged["m@v0"], judged["m@v1"])
            if decision is not None:
                return decision, n, to_candidate / n
            router.set_share("*", "m@v1", policy.share(judged["m@v0"], judged["m@v1"]))
    return "none", n, to_candidate / n


def test_a_better_candidate_is_promoted_within_2000_outcomes_in_95_of_100_runs() -> None:
    runs = [simulate(seed, active=0.6, candidate=0.7, policy=Policy()) for seed in range(100)]
    promoted_in_time = [n for decision, n, _ in runs if decision == "promote" and n <= 2000]
    print(f"promoted within 2000: {len(promoted_in_time)}/100, "
          f"median {sorted(n for _, n, _ in runs)[50]} outcomes")  # fmt: skip
    assert len(promoted_in_time) >= 95


def test_a_worse_candidate_is_rolled_back_under_15_percent_of_traffic() -> None:
    runs = [simulate(seed, active=0.7, candidate=0.6, policy=Policy()) for seed in range(100)]
    cheap = [share for decision, _, share in runs if decision == "rollback" and share < 0.15]
    mean = sum(share for *_, share in runs) / len(runs)
    print(f"rolled back under 15 %: {len(cheap)}/100, mean share {mean:.3f}")
    assert not [r for r in runs if r[0] == "promote"]
    assert len(cheap) >= 95 and mean < 0.15
