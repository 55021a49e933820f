"""Live routing between an active version and a candidate: the posterior arithmetic, the
policy, and a simulation of whole trials with versions of known reward."""

from __future__ import annotations

import random
import sys
import threading

import pytest

from gateway.versions.bandit import Policy, Posterior, prior_from, prob_better
from gateway.versions.router import Lane, Router


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


def test_a_candidate_gets_more_traffic_only_as_evidence_says_it_is_better() -> None:
    policy = Policy(floor=0.1, cap=0.9, min_outcomes=3)
    assert policy.share(Posterior(), Posterior()) == pytest.approx(0.1)  # nothing known
    assert policy.share(Posterior(60, 40), Posterior(2, 8)) == pytest.approx(0.1)  # worse
    strong = Posterior(30, 2)
    assert policy.share(Posterior(20, 20), strong) == pytest.approx(0.9, abs=0.001)
    # two live outcomes decide nothing, whatever they say; the third may
    assert policy.decide(Posterior(90, 10), Posterior(0, 2))[0] is None
    assert policy.decide(Posterior(90, 10), Posterior(0, 3))[0] == "rollback"
    assert policy.decide(Posterior(20, 20), strong)[0] == "promote"
    close = policy.decide(Posterior(60, 40), Posterior(31, 19))
    assert close[0] is None and 0.1 < close[1] < 0.95


def test_the_offline_evaluation_is_a_discounted_prior() -> None:
    assert prior_from(1.0, 4) == (4, 0) and prior_from(0.25, 4) == (1, 3)
    assert prior_from(0.5, 500) == (10, 10)  # at most 20 items' worth, however many ran
    informed = Posterior(prior=prior_from(1.0, 4))
    assert informed.n == 0 and (informed.alpha, informed.beta) == (5, 1)
    assert informed.add(False).prior == (4, 0)
    p = prob_better(informed, Posterior(prior=prior_from(0.0, 4)))
    assert Policy().share(Posterior(prior=(0, 4)), informed) > 0.5 and p > 0.95


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


# Sized for a service: a long canary at 5 %, at most half the traffic before promotion.
SERVICE = Policy(floor=0.05, cap=0.5, min_outcomes=50, rollback_at=0.05)


def simulate(
    seed: int,
    active: float,
    candidate: float,
    policy: Policy,
    *,
    priors: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
    limit: int = 20_000,
) -> tuple[str, int, float, int | None]:
    """One trial as the gateway runs it: the router picks, each answer is judged a success
    with the version's reward probability, and every 10 judged outcomes the shares are set
    and the policy asked. `priors`: the offline evaluation's pseudo-outcomes for (active,
    candidate). Returns (decision, judged outcomes, the candidate's traffic share, the
    outcome count by which it answered the majority of requests: its share above one half,
    or promoted)."""
    rewards = {"m@v0": active, "m@v1": candidate}
    router = Router("m", canary_share=policy.floor, seed=seed)
    router.update({"*": Lane("m@v0", "m@v1")})
    judged = {"m@v0": Posterior(prior=priors[0]), "m@v1": Posterior(prior=priors[1])}
    router.set_share("*", "m@v1", policy.share(judged["m@v0"], judged["m@v1"]))
    outcomes = random.Random(10_000 + seed)
    to_candidate = 0
    majority = None
    for n in range(1, limit + 1):
        version = router.choose("*").version
        to_candidate += version == "m@v1"
        judged[version] = judged[version].add(outcomes.random() < rewards[version])
        if n % 10 == 0:
            decision, _ = policy.decide(judged["m@v0"], judged["m@v1"])
            if decision == "promote":
                majority = majority or n
            if decision is not None:
                return decision, n, to_candidate / n, majority
            share = policy.share(judged["m@v0"], judged["m@v1"])
            if share > 0.5 and majority is None:
                majority = n
            router.set_share("*", "m@v1", share)
    return "none", n, to_candidate / n, majority


DAY = 100  # judged outcomes one developer gives in a day


def test_a_candidate_the_offline_evaluation_found_better_serves_most_requests_within_a_day() -> (
    None
):
    """The taught-fact case: right on all 4 held-out items where the active version was right
    on none; live, the candidate is right 75 % of the time, the active version 50 %."""
    priors = (prior_from(0.0, 4), prior_from(1.0, 4))
    runs = [simulate(seed, 0.5, 0.75, Policy(), priors=priors, limit=DAY) for seed in range(100)]
    in_a_day = [m for *_, m in runs if m is not None and m <= DAY]
    promoted = sum(decision == "promote" for decision, *_ in runs)
    median = sorted(in_a_day)[len(in_a_day) // 2]
    print(f"majority within a day: {len(in_a_day)}/100 (median by outcome {median}), "
          f"promoted within a day {promoted}/100")  # fmt: skip
    assert len(in_a_day) >= 95


def test_a_worse_candidate_is_withdrawn_within_a_day_having_served_little() -> None:
    """Offline it was right on 1 of 4 held-out items against 3 for the active version (too
    few items for the gate to refuse it); live it is right 45 % of the time against 75 %."""
    priors = (prior_from(0.75, 4), prior_from(0.25, 4))
    runs = [simulate(seed, 0.75, 0.45, Policy(), priors=priors, limit=DAY) for seed in range(100)]
    withdrawn = [r for r in runs if r[0] == "rollback"]
    mean = sum(share for _, _, share, _ in runs) / len(runs)
    under = sum(share < 0.15 for _, _, share, _ in withdrawn)
    print(f"withdrawn within a day: {len(withdrawn)}/100 (median after "
          f"{sorted(n for _, n, *_ in withdrawn)[len(withdrawn) // 2]} outcomes), mean share "
          f"{mean:.3f}, under 15 % in {under} runs")  # fmt: skip
    assert len(withdrawn) >= 95 and mean < 0.15
    assert not [r for r in runs if r[0] == "promote"]


def test_without_offline_evidence_a_trial_still_ends_the_right_way() -> None:
    better = [simulate(seed, 0.6, 0.7, Policy(), limit=2000) for seed in range(100)]
    worse = [simulate(seed, 0.7, 0.6, Policy(), limit=2000) for seed in range(100)]
    promoted = sum(r[0] == "promote" for r in better)
    rolled_back = sum(r[0] == "rollback" for r in worse)
    mean = sum(r[2] for r in worse) / len(worse)
    print(f"0.6 -> 0.7 promoted within 2000: {promoted}/100; 0.7 -> 0.6 rolled back: "
          f"{rolled_back}/100, mean share {mean:.3f}")  # fmt: skip
    assert promoted >= 85 and rolled_back >= 95 and mean < 0.15
    assert not [r for r in worse if r[0] == "promote"]


def test_a_better_candidate_is_promoted_within_2000_outcomes_in_95_of_100_runs() -> None:
    runs = [simulate(seed, active=0.6, candidate=0.7, policy=SERVICE) for seed in range(100)]
    promoted_in_time = [n for decision, n, *_ in runs if decision == "promote" and n <= 2000]
    print(f"promoted within 2000: {len(promoted_in_time)}/100, "
          f"median {sorted(n for _, n, *_ in runs)[50]} outcomes")  # fmt: skip
    assert len(promoted_in_time) >= 95


def test_a_worse_candidate_is_rolled_back_under_15_percent_of_traffic() -> None:
    runs = [simulate(seed, active=0.7, candidate=0.6, policy=SERVICE) for seed in range(100)]
    cheap = [share for decision, _, share, _ in runs if decision == "rollback" and share < 0.15]
    mean = sum(share for _, _, share, _ in runs) / len(runs)
    print(f"rolled back under 15 %: {len(cheap)}/100, mean share {mean:.3f}")
    assert not [r for r in runs if r[0] == "promote"]
    assert len(cheap) >= 95 and mean < 0.15
