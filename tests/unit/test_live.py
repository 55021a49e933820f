"""Live trials read from what the recorder stored: which interactions count, and what the
gateway does when a candidate wins or loses."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from gateway.backends.embedded import default_model_path
from gateway.recording.records import FeedbackRecord, InteractionRecord
from gateway.store import Store
from gateway.versions.bandit import Policy, Posterior
from gateway.versions.live import LiveRouting, offline_priors, rewards, trials
from gateway.versions.registry import Registry
from gateway.versions.router import Lane, Router
from tests.support.recordings import chat, record

BASE = "smollm2-135m-instruct"
V0, V1 = f"{BASE}@v0", f"{BASE}@v1"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(Store(tmp_path / "store.db"), tmp_path)
    registry.ensure_base(default_model_path(), BASE)
    staging = registry.folder_for(BASE)
    shutil.copyfile(default_model_path(), staging / "model.gguf")
    registry.add(BASE, staging, {"gguf": staging / "model.gguf"})  # v1, a candidate for all
    return registry


def answered(
    version: str, good: int, bad: int, *, workload: str = "chat", propensity: float = 0.5,
    unjudged: int = 0, at: float | None = None,
) -> tuple[list[InteractionRecord], list[FeedbackRecord]]:  # fmt: skip
    """Interactions `version` answered, `good` accepted, `bad` rejected, `unjudged` neither."""
    at = at or time.time() + 1
    asked = []
    for i in range(good + bad + unjudged):
        iid = f"ia_{version}_{workload}_{propensity}_{at}_{i}"
        interaction = chat(iid, f"Question {iid}?", "a.", at + i * 1e-3, workload)
        interaction.version, interaction.propensity = version, propensity
        asked.append(interaction)
    verdicts = [FeedbackRecord(a.id, at + 1, accepted=i < good)
                for i, a in enumerate(asked[: good + bad])]  # fmt: skip
    return asked, verdicts


def store_all(home: Path, *batches: tuple[list[InteractionRecord], list[FeedbackRecord]]) -> None:
    asked = [a for batch in batches for a in batch[0]]
    verdicts = [v for batch in batches for v in batch[1]]
    asyncio.run(record(home, asked, verdicts))


def test_only_routed_judged_interactions_since_the_candidate_entered_count(
    registry: Registry, tmp_path: Path
) -> None:
    store_all(
        tmp_path,
        answered(V0, 30, 10, unjudged=7),
        answered(V1, 5, 1),
        answered(V1, 9, 9, propensity=1.0),  # pinned: not part of the trial
        answered(V1, 9, 9, at=time.time() - 3600),  # before the candidate entered
        answered(V1, 0, 4, workload="byllm"),
    )
    since = registry.store.one("SELECT changed_at FROM version_states WHERE version = ?", (V1,))
    active, candidate = rewards(registry.store, (V0, V1), since[0], "*", others=["byllm"])
    assert (active, candidate) == (Posterior(30, 10), Posterior(5, 1))
    _, everywhere = rewards(registry.store, (V0, V1), since[0], "*", others=[])
    assert everywhere == Posterior(5, 5)


def test_a_winning_candidate_is_promoted_with_the_numbers_as_reason(
    registry: Registry, tmp_path: Path
) -> None:
    store_all(tmp_path, answered(V0, 55, 45), answered(V1, 80, 20))
    router = Router(BASE)
    router.update({"*": Lane(V0, V1)})
    live = LiveRouting(router, lambda: registry, policy=Policy())
    (trial,) = live.step()
    assert trial.decision == "promote" and trial.p_better > 0.95
    # the cap, until the rollout applies the promotion
    assert router.share("chat") == pytest.approx(0.9, abs=1e-3)
    promoted = registry.get(V1)
    assert promoted.state_for("*") == "active"
    reason = promoted.states["*"][1]
    assert (
        reason.startswith("live: P(better) 1.000 after 100 judged outcomes") and "0.800" in reason
    )
    assert registry.get(V0).state_for("*") == "retired"  # kept, for a rollback


def test_a_losing_candidate_is_retired_with_the_reason(registry: Registry, tmp_path: Path) -> None:
    store_all(tmp_path, answered(V0, 90, 10), answered(V1, 30, 30))
    router = Router(BASE)
    router.update({"*": Lane(V0, V1)})
    LiveRouting(router, lambda: registry, policy=Policy()).step()
    state, reason = registry.get(V1).states["*"]
    assert state == "retired" and reason.startswith("live: P(better) 0.000")
    assert registry.active(BASE).name == V0


def test_a_decision_on_a_candidate_someone_promoted_meanwhile_changes_nothing(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measured as a loser, but promoted by hand before the verdict lands: the hand wins."""
    import gateway.versions.live

    store_all(tmp_path, answered(V0, 90, 10), answered(V1, 30, 30))
    measure = gateway.versions.live.trials

    def measured_then_promoted(*args: object) -> list:
        found = measure(*args)
        registry.promote(V1, reason="by hand")
        return found

    monkeypatch.setattr(gateway.versions.live, "trials", measured_then_promoted)
    router = Router(BASE)
    router.update({"*": Lane(V0, V1)})
    (trial,) = LiveRouting(router, lambda: registry, policy=Policy()).step()
    assert trial.decision == "rollback"
    assert registry.get(V1).states["*"] == ("active", "by hand")


def test_without_auto_promote_only_the_share_moves(registry: Registry, tmp_path: Path) -> None:
    store_all(tmp_path, answered(V0, 55, 45), answered(V1, 34, 26))
    router = Router(BASE)
    router.update({"*": Lane(V0, V1)})
    live = LiveRouting(router, lambda: registry, policy=Policy(), decide=False)
    (trial,) = live.step()
    assert 0.05 < trial.share == router.share("chat") < 0.95
    assert registry.get(V1).state_for("*") == "candidate"
    assert [t.candidate for t in trials(registry, BASE, Policy())] == [V1]


def test_status_shows_shares_rewards_with_intervals_and_the_last_change(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    store_all(tmp_path, answered(V0, 55, 45), answered(V1, 34, 26))
    assert main(["status", "--home", str(tmp_path), "--json"]) in (0, None)
    report = json.loads(capsys.readouterr().out)
    (lane,) = report["lanes"]
    active, candidate = lane["versions"]
    assert (active["version"], active["judged"], active["reward"]) == (V0, 100, 0.55)
    assert candidate["role"] == "candidate" and candidate["judged"] == 60
    assert active["interval"] == pytest.approx([0.452, 0.644], abs=1e-3)  # Wilson, 95 %
    assert 0.5 < lane["p_better"] < 0.95  # more traffic as the evidence grows:
    assert candidate["share"] == pytest.approx(0.1 + 0.8 * (2 * lane["p_better"] - 1))
    assert report["next_retrain"] is None

    main(["rollback", "--home", str(tmp_path)])
    capsys.readouterr()
    main(["status", "--home", str(tmp_path)])
    text = capsys.readouterr().out
    assert f"*          {V0:<32} active     100.0%     100  0.550 (0.452-0.644)" in text
    assert f"withdraw {V1} (withdrawn by rollback)" in text
    assert "next retrain: not scheduled" in text


def test_the_held_out_evaluation_against_the_active_version_seeds_the_trial() -> None:
    from gateway.versions.registry import Version

    held = {"n": 4, "right": 1.0, "active_right": 0.0, "against": V0}
    candidate = Version(V1, BASE, 1, {}, 0.0, metrics={"held_out": held})
    assert offline_priors(candidate, V0) == ((0, 4), (4, 0))
    assert offline_priors(candidate, "m@v7") == ((0, 0), (0, 0))  # measured against another
    assert offline_priors(Version(V1, BASE, 1, {}, 0.0), V0) == ((0, 0), (0, 0))
