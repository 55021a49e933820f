"""Validation-gated fallback and shadow answers, through a real gateway and the `openai` SDK.

The upstream is the runtime-LoRA stand-in (`tests/support/lora_server.py`), told which tool
arguments each model answers with, so the test decides which answers pass the automatic check
(the tool's JSON schema); the gateway decides the rest."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import openai
import pytest

from tests.integration.test_upstream_versions import BASE, add_version, configure, succeeds
from tests.support.lora_server import LoraServer, lora_server
from tests.support.servers import Server, gateway, served_by_in_a_row
from tests.support.waiting import wait_until

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": CITY}}
GOOD, BAD = '{"city": "Lisbon"}', '{"city": 5}'


@pytest.fixture
def vllm() -> LoraServer:
    with lora_server("smollm2") as server:
        yield server


def ask(served: Server, stream: bool, **headers: str) -> tuple[str, str]:
    """(the tool arguments the client got, the version header)."""
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2", messages=[{"role": "user", "content": "Weather in Lisbon?"}],
        tools=[WEATHER], stream=stream, extra_headers=headers,
    )  # fmt: skip
    if stream:
        arguments = "".join(chunk.choices[0].delta.tool_calls[0].function.arguments or ""
                            for chunk in raw.parse()
                            if chunk.choices and chunk.choices[0].delta.tool_calls)  # fmt: skip
    else:
        arguments = raw.parse().choices[0].message.tool_calls[0].function.arguments
    return arguments, raw.headers["x-loragate-model-version"]


def routed(served: Server, version: str) -> None:
    """Wait until the gateway serves `version` (lists it; answers with it, if it is active)."""
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
    wait_until(lambda: version in [m.id for m in client.models.list().data], timeout=15,
               what=f"{version} listed; the gateway said: {served.output()[-2000:]}")  # fmt: skip


def active(served: Server, version: str) -> None:
    """Wait until `version` answers every request."""
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)

    def ask() -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="smollm2", messages=[{"role": "user", "content": "Hi"}]
        )
        return raw.headers["x-loragate-model-version"], ""

    served_by_in_a_row(served, version, ask)


def rows(home: Path, sql: str) -> list[tuple]:
    def found() -> list[tuple]:
        with sqlite3.connect(home / "store.db") as db:
            return db.execute(sql).fetchall()

    try:
        return wait_until(found, timeout=10, every=0.1)
    except AssertionError:
        return []


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_failing_its_schema_is_answered_again_by_the_other_version(
    tmp_path: Path, vllm: LoraServer, stream: bool
) -> None:
    home = configure(tmp_path, backend="openai", upstream=vllm.url, model="smollm2",
                     train_base="default", fallback="next")  # fmt: skip
    with gateway(tmp_path) as served:
        v1 = add_version(home)
        succeeds(home, "models", "promote", v1)
        vllm.arguments = {v1: BAD, "smollm2": GOOD}  # the trained version breaks the schema
        active(served, v1)
        assert ask(served, stream) == (GOOD, f"{BASE}@v0")
        assert vllm.answered[-2:] == [v1, "smollm2"]
        (retried,) = rows(home, "SELECT id, version FROM interactions WHERE kind = 'retried'")
        (answered,) = rows(home, "SELECT version, kind, fallback_of FROM interactions "
                                 "WHERE fallback_of IS NOT NULL")  # fmt: skip
        assert retried[1] == v1 and answered == (f"{BASE}@v0", "served", retried[0])
        judged = rows(home, f"SELECT kind, value FROM outcomes WHERE interaction_id = "
                            f"'{retried[0]}'")  # fmt: skip
        assert ("tool_call_valid", 0.0) in judged

        pinned = ask(served, stream, **{"X-Loragate-Model-Version": v1})
        assert pinned == (BAD, v1)  # a version asked for by name answers as it is

        vllm.arguments[v1] = GOOD  # a passing answer is served as it came
        assert ask(served, stream) == (GOOD, v1)


def test_a_fallback_that_cannot_answer_leaves_the_first_answer(
    tmp_path: Path, vllm: LoraServer
) -> None:
    home = configure(tmp_path, backend="openai", upstream=vllm.url, model="smollm2",
                     train_base="default", fallback="no-such-model")  # fmt: skip
    with gateway(tmp_path) as served:
        vllm.arguments = {"smollm2": BAD}
        assert ask(served, stream=False) == (BAD, f"{BASE}@v0")  # not a 404 for the client
        assert "fallback to no-such-model failed" in served.output()
        assert rows(home, "SELECT kind FROM interactions") == [("served",)]


def test_a_candidate_answers_in_the_shadow_checked_and_never_shown(
    tmp_path: Path, vllm: LoraServer
) -> None:
    home = configure(tmp_path, backend="openai", upstream=vllm.url, model="smollm2",
                     train_base="default")  # fmt: skip
    (home / "config.toml").write_text((home / "config.toml").read_text()
                                      + "shadow_share = 1.0\ncanary_share = 0.0\n")  # fmt: skip
    with gateway(tmp_path) as served:
        v1 = add_version(home)  # a candidate, at a canary share of 0: only shadows reach it
        vllm.arguments = {v1: BAD, "smollm2": GOOD}
        routed(served, v1)
        assert ask(served, stream=False) == (GOOD, f"{BASE}@v0")
        shadow = rows(home, "SELECT id, version, context_hash FROM interactions "
                            "WHERE kind = 'shadow'")  # fmt: skip
        assert [(s[1], s[2]) for s in shadow] == [(v1, None)]  # never taken for a re-ask
        assert ("tool_call_valid", 0.0) in rows(
            home, f"SELECT kind, value FROM outcomes WHERE interaction_id = '{shadow[0][0]}'"
        )
        (lane,) = json.loads(succeeds(home, "status", "--json"))["lanes"]
        candidate = lane["versions"][1]
        assert candidate["judged"] == 0  # shadow answers are not live outcomes
        assert (candidate["shadow"]["checked"], candidate["shadow"]["passed"]) == (1, 0)
        assert "shadow answers: 0/1 passed the automatic checks" in succeeds(home, "status")
