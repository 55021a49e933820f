"""A serving gateway decides between versions on live feedback.

Real requests through the `openai` SDK; each answer is judged through `POST /v1/feedback`
(users accept the candidate's answers and reject the active version's); the gateway's live
routing sees the judged outcomes, promotes the candidate with its numbers as the reason, and
from then on the candidate answers every request. The canary stage is shortened by settings
(10 outcomes at a 50 % share) so that the trial takes seconds."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import openai

from gateway.backends.embedded import default_model_path
from gateway.store import Store
from gateway.versions.registry import Registry
from tests.support.servers import gateway, served_by_in_a_row

BASE = "smollm2-135m-instruct"
V0, V1 = f"{BASE}@v0", f"{BASE}@v1"


def test_users_preferring_the_candidate_get_it_promoted(tmp_path: Path) -> None:
    env = {"LORAGATE_CANARY_SHARE": "0.5", "LORAGATE_CANARY_OUTCOMES": "10"}
    with gateway(tmp_path, "--n-ctx", "512", env=env) as served:
        registry = Registry(Store(served.home / "store.db"), served.home)
        staging = registry.folder_for(BASE)
        shutil.copyfile(default_model_path(), staging / "model.gguf")
        registry.add(BASE, staging, {"gguf": staging / "model.gguf"})  # v1, a candidate
        client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
        answered: list[str] = []
        deadline = time.monotonic() + 120
        while registry.active(BASE).name != V1:
            assert time.monotonic() < deadline, served.output()[-3000:]
            raw = client.chat.completions.with_raw_response.create(
                model="auto", max_tokens=1,
                messages=[{"role": "user", "content": f"Say a number: {len(answered)}"}],
            )  # fmt: skip
            version = raw.headers["x-loragate-model-version"]
            answered.append(version)
            verdict = {"interaction_id": raw.headers["x-loragate-interaction-id"],
                       "accepted": version == V1}  # fmt: skip
            assert httpx.post(f"{served.url}/v1/feedback", json=verdict).status_code == 200
            time.sleep(0.05)
        state, reason = registry.get(V1).states["*"]
        assert state == "active" and reason.startswith("live: P(better)")
        assert V1 in answered and V0 in answered
        # at a 50 % share, ten answers in a row from it say the promotion arrived
        served_by_in_a_row(served, V1, lambda: (_ask(client), ""), times=10, timeout=10)
        registry.store.close()


def _ask(client: openai.OpenAI) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", max_tokens=1, messages=[{"role": "user", "content": "Hi"}]
    )
    return raw.headers["x-loragate-model-version"]
