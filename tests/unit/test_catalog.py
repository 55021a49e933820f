"""Model names clients may send, and the 404 for the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.backends.embedded import model_name_for
from gateway.backends.protocol import ModelInfo
from gateway.errors import ModelNotFound
from gateway.generation import Event, GenerationRequest
from gateway.serving.catalog import Catalog, published_name


class ListingOnly:
    """A backend reduced to its model listing: the catalog needs nothing else."""

    def __init__(self, *names: str) -> None:
        self.names = names

    async def models(self) -> list[ModelInfo]:
        return [ModelInfo(name=n) for n in self.names]

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def queue_depth(self) -> int:
        return 0

    def generate(self, request: GenerationRequest) -> AsyncIterator[Event]:
        raise NotImplementedError


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
        ("qwen2.5-coder-1.5b-instruct-q8_0.gguf", "qwen2.5-coder-1.5b-instruct"),
        ("OLMo-2-1B.F16.gguf", "local-olmo-2-1b"),
        ("gpt-oss-20b.gguf", "local-gpt-oss-20b"),
    ],
)
def test_file_names_become_model_ids_continue_treats_as_local(file: str, name: str) -> None:
    assert model_name_for(Path(file)) == name


def test_upstream_names_starting_with_gpt_or_o_are_prefixed() -> None:
    assert published_name("gpt-oss:20b") == "local-gpt-oss:20b"
    assert published_name("llama3.2") == "llama3.2"


async def test_aliases_versions_and_ollama_tags_resolve() -> None:
    catalog = Catalog(ListingOnly("smollm2", "olmo"))
    await catalog.refresh()
    assert (await catalog.resolve("smollm2:latest")).backend_model == "smollm2"
    assert (await catalog.resolve("smollm2@v0")).pinned == "smollm2@v0"
    assert (await catalog.resolve("smollm2")).pinned is None  # the router chooses
    alias = await catalog.resolve("byllm")
    assert (alias.backend_model, alias.workload) == ("smollm2", "byllm")
    assert (await catalog.resolve("local-olmo")).backend_model == "olmo"


async def test_a_preferred_upstream_model_answers_the_aliases() -> None:
    catalog = Catalog(ListingOnly("llama3.2", "qwen2.5-coder"), preferred="qwen2.5-coder:latest")
    await catalog.refresh()
    assert (await catalog.resolve("continue")).backend_model == "qwen2.5-coder"
    assert catalog.default_version() == "qwen2.5-coder@v0"


async def test_trained_versions_being_served_resolve_and_are_listed() -> None:
    catalog = Catalog(ListingOnly("smollm2"), versions=lambda: {"smollm2@v0", "smollm2@v3"})
    await catalog.refresh()
    assert (await catalog.resolve("smollm2@v3")).pinned == "smollm2@v3"
    assert catalog.all_names()[:3] == ["smollm2", "smollm2@v0", "smollm2@v3"]
    with pytest.raises(ModelNotFound, match="smollm2@v3, auto"):
        await catalog.resolve("smollm2@v2")


async def test_unknown_names_and_versions_are_404_with_the_list() -> None:
    catalog = Catalog(ListingOnly("smollm2"))
    await catalog.refresh()
    for name in ("mistral", "smollm2@v7"):
        with pytest.raises(ModelNotFound, match="available: smollm2, smollm2@v0, auto"):
            await catalog.resolve(name)
