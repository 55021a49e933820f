"""Versions deployed to an Ollama through the official `ollama` client: each version its own
tag, the clients' tag moved by promotion and rollback, a Modelfile beside each GGUF."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.backends.embedded import default_model_path
from gateway.store import Store
from gateway.versions.ollama_tags import Modelfile, OllamaDeployer, modelfile_for
from gateway.versions.registry import Registry
from tests.support.cli import loragate
from tests.support.ollama_models import ollama_models

BASE = "smollm2-135m-instruct"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    home = tmp_path / "home"
    home.mkdir()
    registry = Registry(Store(home / "store.db"), home)
    registry.ensure_base(default_model_path(), BASE)
    return registry


def add_version(registry: Registry, tmp_path: Path) -> str:
    staging = registry.folder_for(BASE)
    gguf = staging / "model-Q4_K_M.gguf"
    shutil.copyfile(default_model_path(), gguf)
    with gguf.open("ab") as fh:  # other bytes, as a retrained model's would be
        fh.write(b"\0" * 32)
    return registry.add(BASE, staging, {"gguf": gguf}).name


def test_the_modelfile_round_trips() -> None:
    shipped = modelfile_for("*")
    assert shipped.parameters == {"stop": ["<|im_end|>", "<|im_start|>"], "num_ctx": 8192}
    assert shipped.template is not None and "<tool_call>" in shipped.template
    again = Modelfile.parse(shipped.render("./model.gguf"))
    assert again == shipped


def test_promotion_and_rollback_move_the_clients_tag(registry: Registry, tmp_path: Path) -> None:
    with ollama_models(tmp_path) as (host, models):
        ollama = OllamaDeployer(host, client_tag=f"{BASE}:latest")
        assert ollama.sync(registry, BASE) == [
            f"Ollama: created {BASE}:v0", f"Ollama: {BASE}:latest is {BASE}:v0"]  # fmt: skip
        v1 = add_version(registry, tmp_path)
        assert ollama.sync(registry, BASE) == [
            f"Ollama: created {BASE}:v1", f"Ollama: {BASE}:latest is {BASE}:v0"]  # fmt: skip
        assert models[f"{BASE}:latest"]["digest"] == models[f"{BASE}:v0"]["digest"]

        registry.promote(v1)
        assert ollama.sync(registry, BASE) == [f"Ollama: {BASE}:latest is {BASE}:v1"]
        assert models[f"{BASE}:latest"]["digest"] == models[f"{BASE}:v1"]["digest"]
        assert models[f"{BASE}:v1"]["template"] == modelfile_for("*").template
        modelfile = (registry.get(v1).gguf.parent / "Modelfile").read_text()
        assert modelfile.startswith('FROM ./model-Q4_K_M.gguf\nTEMPLATE """<|im_start|>system')

        registry.rollback(BASE)
        ollama.sync(registry, BASE)
        assert models[f"{BASE}:latest"]["digest"] == models[f"{BASE}:v0"]["digest"]
        assert f"{BASE}:v1" in models  # kept until removed
        registry.remove(v1)
        ollama.remove(v1)
        assert f"{BASE}:v1" not in models


def test_the_cli_deploys_and_says_so_when_ollama_is_down(
    registry: Registry, tmp_path: Path
) -> None:
    import os

    v1 = add_version(registry, tmp_path)
    home = registry.home
    with ollama_models(tmp_path) as (host, models):
        env = {**os.environ, "LORAGATE_OLLAMA_DEPLOY": host, "LORAGATE_OLLAMA_TAG": "mine:latest"}
        promoted = loragate(home, "models", "promote", v1, env=env)
        assert promoted.returncode == 0, promoted.stderr
        assert promoted.stdout.splitlines()[-1] == f"Ollama: mine:latest is {BASE}:v1"
        assert models["mine:latest"]["digest"] == models[f"{BASE}:v1"]["digest"]
    down = {**os.environ, "LORAGATE_OLLAMA_DEPLOY": host}
    rolled = loragate(home, "rollback", env=down)
    assert rolled.returncode == 1
    (line,) = rolled.stderr.strip().splitlines()
    assert line.startswith(f"loragate: error: Ollama at {host}: ")
    assert line.endswith(f"the registry is changed, Ollama is not: run `loragate models "
                         f"promote {BASE}@v0`")  # fmt: skip
