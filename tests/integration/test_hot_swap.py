"""Model versions change under a serving gateway without failing a request.

The registry is changed the way `loragate models` and `loragate rollback` change it (the real
CLI, another process); the gateway notices, loads the new version beside the old one, and
switches. A second GGUF is the base file copied: a real model that llama.cpp loads."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

import openai
import pytest

from gateway.store import Store
from gateway.versions.registry import Registry
from tests.support.cli import loragate
from tests.support.servers import Server, gateway
from tests.support.waiting import eventually

BASE = "smollm2-135m-instruct"


@pytest.fixture
def served(tmp_path: Path) -> Server:
    with gateway(tmp_path, "--n-ctx", "1024") as server:
        yield server


def second_gguf(tmp_path: Path) -> Path:
    from gateway.backends.embedded import default_model_path

    copy = tmp_path / "retrained.gguf"
    shutil.copyfile(default_model_path(), copy)
    return copy


def client_of(served: Server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)


async def ask(client: openai.AsyncOpenAI, model: str = BASE) -> str:
    """One short chat; returns the version that answered."""
    raw = await client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Say yes."}], max_tokens=2,
    )  # fmt: skip
    return raw.headers["x-loragate-model-version"]


async def register_candidate(served: Server, tmp_path: Path, client: openai.AsyncOpenAI) -> None:
    """A second GGUF through `loragate models register --candidate`, until the gateway lists it."""
    assert served.home is not None
    registered = loragate(served.home, "models", "register", str(second_gguf(tmp_path)),
                          "--candidate")  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.strip() == f"{BASE}@v1: candidate for *"

    async def listed() -> bool:
        return f"{BASE}@v1" in [m.id for m in (await client.models.list()).data]

    await eventually(listed, timeout=10, every=0.1, what=f"the gateway lists {BASE}@v1")


async def wait_for(client: openai.AsyncOpenAI, version: str, timeout: float = 30) -> None:
    async def serves() -> bool:
        return await ask(client) == version

    await eventually(serves, timeout=timeout, what=f"{version} serves")


@pytest.mark.slow
async def test_promotion_and_rollback_under_load_fail_no_request(
    served: Server, tmp_path: Path
) -> None:
    assert served.home is not None
    client = client_of(served)
    assert await ask(client) == f"{BASE}@v0"

    await register_candidate(served, tmp_path, client)
    assert await ask(client, f"{BASE}@v1") == f"{BASE}@v1"

    answered: Counter[str] = Counter()
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def client_loop() -> None:
        while not stop.is_set():
            try:
                answered[await ask(client)] += 1
            except Exception as exc:  # any failed request fails the test
                failures.append(exc)

    clients = [asyncio.create_task(client_loop()) for _ in range(8)]
    try:
        await asyncio.sleep(1.0)
        promoted = await asyncio.to_thread(loragate, served.home, "models", "promote",
                                           f"{BASE}@v1")  # fmt: skip
        assert promoted.returncode == 0, promoted.stderr
        await wait_for(client, f"{BASE}@v1")
        await asyncio.sleep(1.0)
        rolled = await asyncio.to_thread(loragate, served.home, "rollback")
        assert rolled.returncode == 0, rolled.stderr
        assert rolled.stdout.strip() == f"{BASE}@v0 serves * again; {BASE}@v1 retired"
        await wait_for(client, f"{BASE}@v0")
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.gather(*clients)
    assert failures == []
    assert answered[f"{BASE}@v0"] > 0 and answered[f"{BASE}@v1"] > 0

    listing = loragate(served.home, "models")
    assert f"{BASE}@v1" in listing.stdout and "retired" in listing.stdout


@pytest.mark.slow
async def test_a_version_that_cannot_load_is_marked_failed_and_nothing_changes(
    served: Server, tmp_path: Path
) -> None:
    """A broken file (here: a truncated header) registered behind the checks' back."""
    assert served.home is not None
    client = client_of(served)
    registry = Registry(Store(served.home / "store.db"), served.home)
    staging = registry.folder_for(BASE)
    (staging / "model.gguf").write_bytes(b"GGUF" + bytes(4096))
    registry.add(BASE, staging, {"gguf": staging / "model.gguf"}, workload="jac",
                        state="active")  # fmt: skip

    def failed() -> str:
        shown = loragate(served.home, "models", "show", f"{BASE}@v1").stdout
        return shown if '"state": "failed"' in shown else ""

    shown = await eventually(failed, timeout=20, every=0.2, what=f"{BASE}@v1 marked failed")
    assert "could not be loaded" in shown
    assert await ask(client, "byllm") == f"{BASE}@v0"


async def test_engines_change_threads_between_requests() -> None:
    """While a scheduled retrain trains, serving runs on one thread (`set_threads`)."""
    from gateway.backends.embedded import threads_for
    from gateway.backends.versioned_engine import VersionedEngines
    from gateway.config import load_settings
    from gateway.generation import GenerationRequest

    engines = VersionedEngines.from_settings(load_settings({"n_ctx": 512}))
    await engines.start()
    try:
        request = GenerationRequest(model=BASE, max_tokens=3,
                                    messages=[{"role": "user", "content": "Say yes."}])  # fmt: skip
        import llama_cpp

        def threads() -> tuple[int, int]:
            ctx = engines.base._llm.ctx
            return llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)

        assert threads() == threads_for(None)  # all cores but one decode, all prefill
        await engines.set_threads(1)
        assert threads() == (1, 1)
        one = [event async for event in engines.generate(request)]
        await engines.set_threads(2)
        assert threads() == (2, 2)
        again = [event async for event in engines.generate(request)]
        assert one[-1].completion_tokens == again[-1].completion_tokens == 3  # type: ignore[union-attr]
        await engines.set_threads(None)  # the training is over: back to the default
        assert threads() == threads_for(None)
    finally:
        await engines.close()


async def test_a_version_standing_by_keeps_its_model_but_not_its_cached_conversations(
    tmp_path: Path,
) -> None:
    """Each loaded version has a prompt cache of up to `prompt_cache_mb`: one that serves
    nothing (the standby kept for a quick re-promotion, or v0 while a trained version serves)
    gives that memory back."""
    from gateway.backends.embedded import default_model_path
    from gateway.backends.versioned_engine import VersionedEngines
    from gateway.config import load_settings
    from gateway.generation import GenerationRequest

    copy = tmp_path / "copy.gguf"
    shutil.copy(default_model_path(), copy)
    engines = VersionedEngines.from_settings(load_settings({"n_ctx": 512}))
    await engines.start()
    try:
        await engines.load_file(f"{BASE}@v1", copy)

        async def ask(version: str) -> None:
            say_yes = [{"role": "user", "content": "Say yes."}]
            request = GenerationRequest(model=version, max_tokens=2, messages=say_yes)
            assert [event async for event in engines.generate(request)]

        def cached(version: str) -> int:
            return len(engines._engines[version]._llm.cache.cache_state)

        await ask(f"{BASE}@v0")
        await ask(f"{BASE}@v1")
        assert cached(f"{BASE}@v0") and cached(f"{BASE}@v1")
        standby = engines._engines[f"{BASE}@v1"]
        await engines.release(f"{BASE}@v1")
        assert standby._llm is not None and not standby._llm.cache.cache_state
        await engines.release(f"{BASE}@v0")  # v0 stays loaded, without its conversations
        assert cached(f"{BASE}@v0") == 0
        await ask(f"{BASE}@v0")
    finally:
        await engines.close()


@pytest.mark.slow
async def test_a_version_is_pinned_by_name_or_header_and_unknown_ones_are_404(
    served: Server, tmp_path: Path
) -> None:
    assert served.home is not None
    client = client_of(served)
    await register_candidate(served, tmp_path, client)
    pinned = await client.chat.completions.with_raw_response.create(
        model=BASE, max_tokens=2, messages=[{"role": "user", "content": "Say yes."}],
        extra_headers={"X-Loragate-Model-Version": f"{BASE}@v1"},
    )  # fmt: skip
    assert pinned.headers["x-loragate-model-version"] == f"{BASE}@v1"
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(
            model=BASE, max_tokens=2, messages=[{"role": "user", "content": "Say yes."}],
            extra_headers={"X-Loragate-Model-Version": f"{BASE}@v9"},
        )  # fmt: skip
    assert caught.value.body["message"] == (  # type: ignore[index]
        f"model version '{BASE}@v9' is not served; served: {BASE}@v0, {BASE}@v1"
    )
    with pytest.raises(openai.NotFoundError, match=f"{BASE}@v0, {BASE}@v1, auto"):
        await client.chat.completions.create(
            model=f"{BASE}@v9", max_tokens=2, messages=[{"role": "user", "content": "hi"}]
        )
