"""Model versions routed on an upstream: Ollama tags and runtime LoRA adapters.

The gateway is configured as a user would (`<home>/config.toml` with `train_base`), versions
are registered in its store, and promotion and rollback go through the real CLI in another
process. The upstreams are stand-ins (neither Ollama nor vLLM can be installed here) that
answer "answered by <model>", so each answer says which upstream model served it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gateway.backends.embedded import default_model_path
from gateway.store import Store
from gateway.versions.registry import Registry
from tests.support.cli import loragate
from tests.support.lora_server import LoraServer, lora_server
from tests.support.ollama_models import ollama_models
from tests.support.servers import Server, gateway, served_by_in_a_row
from tests.support.waiting import wait_until

BASE = "smollm2-135m-instruct"


def configure(tmp_path: Path, **settings: str) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    lines = [f'{key} = "{value}"' for key, value in settings.items()]
    (home / "config.toml").write_text("\n".join(["[gateway]", *lines]) + "\n")
    return home


def succeeds(home: Path, *args: str) -> str:
    done = loragate(home, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def add_version(home: Path, *, peft: bool = True) -> str:
    """A version as `retrain` registers one: a GGUF, and the PEFT adapter folder."""
    registry = Registry(Store(home / "store.db"), home)
    registry.ensure_base(default_model_path(), BASE)
    staging = registry.folder_for(BASE)
    gguf = staging / "model-Q4_K_M.gguf"
    shutil.copyfile(default_model_path(), gguf)
    with gguf.open("ab") as fh:  # other bytes, as a retrained model's would be
        fh.write(b"\0" * 32)
    files = {"gguf": gguf}
    if peft:
        (staging / "peft").mkdir()
        (staging / "peft" / "adapter_config.json").write_text('{"r": 16, "peft_type": "LORA"}')
        (staging / "peft" / "adapter_model.safetensors").write_bytes(b"\0" * 64)
        files["peft"] = staging / "peft"
    name = registry.add(BASE, staging, files).name
    registry.store.close()
    return name


def ask(served: Server, model: str, **headers: str) -> tuple[str, str]:
    """One chat; returns (the answer, the version the gateway says answered)."""
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], extra_headers=headers
    )
    return raw.parse().choices[0].message.content or "", raw.headers["x-loragate-model-version"]


def eventually(served: Server, model: str, version: str) -> str:
    """Ask until `version` answers every request; returns its answer."""
    return served_by_in_a_row(served, version, lambda: ask(served, model)[::-1])


def failure_of(home: Path, version: str, timeout: float = 15) -> str:
    """The reason the gateway gave when it marked `version` failed (waits for it)."""
    wait_until(lambda: "failed" in succeeds(home, "models"), timeout=timeout, every=0.2,
               what=f"{version} marked failed")  # fmt: skip
    states = json.loads(succeeds(home, "models", "show", version))["states"]
    assert states["*"]["state"] == "failed", states
    return states["*"]["reason"]


@pytest.fixture
def vllm() -> Iterator[LoraServer]:
    with lora_server("smollm2") as server:
        yield server


def test_ollama_versions_are_tags_the_gateway_routes_to(tmp_path: Path) -> None:
    with ollama_models(tmp_path) as (host, models):
        models["smollm2:135m"] = {"files": {}, "template": "", "system": "", "parameters": {},
                                  "digest": "0" * 64, "size": 1, "modified_at": 0.0}  # fmt: skip
        home = configure(tmp_path, backend="ollama", upstream=host, model="smollm2:135m",
                         train_base="default")  # fmt: skip
        with gateway(tmp_path) as served:
            assert ask(served, "smollm2:135m") == ("answered by smollm2:135m", f"{BASE}@v0")
            v1 = add_version(home)
            succeeds(home, "models", "promote", v1)
            # the gateway created the tag from the version's GGUF, then routed to it
            assert eventually(served, "smollm2:135m", v1) == f"answered by {BASE}:v1"
            assert models[f"{BASE}:v1"]["template"].startswith("<|im_start|>system")
            assert ask(served, "auto") == (f"answered by {BASE}:v1", v1)
            pinned = ask(served, "smollm2:135m", **{"X-Loragate-Model-Version": f"{BASE}@v0"})
            assert pinned == ("answered by smollm2:135m", f"{BASE}@v0")
            assert ask(served, f"{BASE}@v0") == ("answered by smollm2:135m", f"{BASE}@v0")

            succeeds(home, "rollback")
            assert eventually(served, "smollm2:135m", f"{BASE}@v0") == "answered by smollm2:135m"
            assert f"{BASE}:v1" in models  # kept for a rollback the other way


def test_vllm_versions_are_runtime_lora_adapters(tmp_path: Path, vllm: LoraServer) -> None:
    home = configure(tmp_path, backend="openai", upstream=vllm.url, model="smollm2",
                     train_base="default")  # fmt: skip
    with gateway(tmp_path) as served:
        assert ask(served, "smollm2") == ("answered by smollm2", f"{BASE}@v0")
        v1 = add_version(home)
        succeeds(home, "models", "promote", v1)
        assert eventually(served, "smollm2", v1) == f"answered by {v1}"
        peft = str((home / "models" / v1 / "peft").resolve())
        assert vllm.calls == [("load", {"lora_name": v1, "lora_path": peft})]
        assert f"{v1}" in [m["id"] for m in _models(served)]

        v2 = add_version(home)
        succeeds(home, "models", "promote", v2)
        assert eventually(served, "smollm2", v2) == f"answered by {v2}"
        # v1 stays loaded as the standby, so a rollback to it is immediate
        assert set(vllm.adapters) == {v1, v2}
        succeeds(home, "rollback")
        assert eventually(served, "smollm2", v1) == f"answered by {v1}"
        v3 = add_version(home)
        succeeds(home, "models", "promote", v3)
        assert eventually(served, "smollm2", v3) == f"answered by {v3}"
        assert set(vllm.adapters) == {v1, v3}  # the standby before it was unloaded


def test_a_version_without_an_adapter_is_marked_failed(tmp_path: Path, vllm: LoraServer) -> None:
    home = configure(tmp_path, backend="openai", upstream=vllm.url, model="smollm2",
                     train_base="default")  # fmt: skip
    with gateway(tmp_path) as served:
        v1 = add_version(home, peft=False)  # a GGUF registered by hand
        succeeds(home, "models", "promote", v1)
        assert "has no PEFT adapter" in failure_of(home, v1)
        assert ask(served, "smollm2") == ("answered by smollm2", f"{BASE}@v0")


def test_an_upstream_without_runtime_lora_says_how_to_enable_it(tmp_path: Path) -> None:
    with lora_server("smollm2", runtime_lora=False) as plain:
        home = configure(tmp_path, backend="openai", upstream=plain.url, model="smollm2",
                         train_base="default")  # fmt: skip
        with gateway(tmp_path) as served:
            v1 = add_version(home)
            succeeds(home, "models", "promote", v1)
            assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" in failure_of(home, v1)
            assert ask(served, "smollm2") == ("answered by smollm2", f"{BASE}@v0")


def _models(served: Server) -> list[dict[str, str]]:
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
    return [m.model_dump() for m in client.models.list().data]
