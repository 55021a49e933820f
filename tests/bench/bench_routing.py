"""What choosing a model version costs a request, and what a live-routing pass costs.

    python tests/bench/bench_routing.py

1. The decision on the request path: `Service._choose` (is this the routed model? the
   router's choice for the workload, the name the backend knows the version by) with seven
   lanes, each with a candidate at some share; goal ≤ 50 µs. Baseline in the same run: the
   same call without a router (a plain upstream), so the figure is also a difference.
2. Off the request path: one `LiveRouting.step` (one rewards query per lane with a candidate,
   P(better), shares) over a store of 100,000 interactions, 40 % of them judged.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.backends.embedded import default_model_path
from gateway.backends.protocol import ModelInfo
from gateway.recording.records import FeedbackRecord
from gateway.serving.catalog import Route
from gateway.serving.service import Service
from gateway.versions.bandit import Policy
from gateway.versions.live import LiveRouting
from gateway.versions.registry import Registry
from gateway.versions.router import Lane, Router
from tests.support.recordings import chat, record

BASE = "smollm2-135m-instruct"
WORKLOADS = ["*", "continue", "byllm", "jessy", "libcst", "docs", "autocomplete"]


class Host:
    name = BASE

    def backend_model(self, version: str) -> str:
        return version


def decision_cost() -> None:
    router = Router(BASE, seed=0)
    router.update({w: Lane(f"{BASE}@v{i + 1}", f"{BASE}@v{i + 20}", 0.1 * (i % 5) + 0.05)
                   for i, w in enumerate(WORKLOADS)})  # fmt: skip
    route = Route(BASE, BASE, None, None, ModelInfo(BASE))
    routed = Service(None, None, None, None, router, Host())  # type: ignore[arg-type]
    plain = Service(None, None, None, None)  # type: ignore[arg-type]
    n = 200_000
    for label, service in (("without a router (baseline)", plain), ("with the router", routed)):
        seconds = min(timeit.repeat(lambda s=service: s._choose(route, "continue", None),
                                    number=n, repeat=5))  # fmt: skip
        print(f"version choice {label}: {seconds / n * 1e6:.2f} µs per request")


def live_pass_cost() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        from gateway.store import Store

        registry = Registry(Store(home / "store.db"), home)
        registry.ensure_base(default_model_path(), BASE)
        staging = registry.folder_for(BASE)
        (staging / "model.gguf").write_bytes(default_model_path().read_bytes())
        registry.add(BASE, staging, {"gguf": staging / "model.gguf"})
        now = time.time() + 1
        asked, verdicts = [], []
        for i in range(100_000):
            version = f"{BASE}@v1" if i % 10 == 0 else f"{BASE}@v0"
            interaction = chat(f"ia_{i}", f"Question {i}?", "a.", now + i * 1e-4, "continue")
            interaction.version, interaction.propensity = version, 0.05 if i % 10 == 0 else 0.95
            asked.append(interaction)
            if i % 5 < 2:
                verdicts.append(FeedbackRecord(interaction.id, now + 20, accepted=i % 3 > 0))
        started = time.perf_counter()
        asyncio.run(record(home, asked, verdicts))
        print(f"(recorded 100,000 interactions in {time.perf_counter() - started:.0f} s)")
        router = Router(BASE)
        router.update({"*": Lane(f"{BASE}@v0", f"{BASE}@v1")})
        registry = Registry(Store(home / "store.db"), home)
        live = LiveRouting(router, lambda: registry, policy=Policy(), decide=False)
        live.step()
        seconds = min(timeit.repeat(live.step, number=1, repeat=5))
        (trial,) = live.step()
        judged = trial.active_rewards.n + trial.candidate_rewards.n
        print(f"one live-routing pass over 100,000 interactions: {seconds * 1e3:.0f} ms "
              f"({judged} judged outcomes read)")  # fmt: skip


if __name__ == "__main__":
    decision_cost()
    live_pass_cost()
