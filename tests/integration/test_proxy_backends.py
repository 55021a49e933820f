"""The gateway in front of other servers: an OpenAI-compatible one and an Ollama, with real
clients on both sides, translating between the two wire formats, and failing precisely."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import ollama
import openai
import pytest

from tests.support.servers import Server, free_port, gateway
from tests.support.upstreams import (
    LLAMA_SERVER_ALIAS,
    hung_upstream,
    llama_cpp_server,
    ollama_upstream,
    silent_server,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def openai_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("openai-proxy")
    with (
        llama_cpp_server(tmp) as upstream,
        gateway(tmp, "--backend", "openai", "--upstream", upstream) as proxy,
    ):
        yield proxy


@pytest.fixture(scope="module")
def ollama_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    tmp = tmp_path_factory.mktemp("ollama-proxy")
    with (
        ollama_upstream(tmp) as (host, model),
        gateway(tmp, "--backend", "ollama", "--upstream", host) as proxy,
    ):
        yield proxy, model


def test_openai_sdk_through_the_openai_backend(openai_proxy: Server) -> None:
    client = openai.OpenAI(base_url=openai_proxy.url + "/v1", api_key="x", max_retries=0)
    assert LLAMA_SERVER_ALIAS in [m.id for m in client.models.list().data]
    raw = client.chat.completions.with_raw_response.create(
        model=LLAMA_SERVER_ALIAS,
        messages=[{"role": "user", "content": "What is 2+2?"}],
        max_tokens=16,
        temperature=0,
    )
    reply = raw.parse()
    assert reply.choices[0].message.content and reply.usage.prompt_tokens > 0
    assert raw.headers["x-loragate-model-version"] == f"{LLAMA_SERVER_ALIAS}@v0"
    chunks = list(
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Hello"}],
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # llama_cpp.server sends no usage in streams; the usage chunk is still there, as asked.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    completion = client.completions.create(
        model=LLAMA_SERVER_ALIAS, prompt="1, 2, 3,", max_tokens=5
    )
    assert completion.choices[0].text


def test_ollama_client_through_the_openai_backend(openai_proxy: Server) -> None:
    client = ollama.Client(host=openai_proxy.url)
    reply = client.chat(
        model=LLAMA_SERVER_ALIAS,
        messages=[{"role": "user", "content": "Hi"}],
        options={"num_predict": 8},
    )
    assert reply.message.content and reply.done
    generated = client.generate(
        model=LLAMA_SERVER_ALIAS,
        prompt="Hi",
        system="Be brief.",
        stream=False,
        options={"num_predict": 8},
    )
    assert generated.response


def test_openai_sdk_through_the_ollama_backend(ollama_proxy: tuple[Server, str]) -> None:
    proxy, model = ollama_proxy
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
    # Ollama has no tool_choice; what must survive the trip is the conversation: an OpenAI
    # tool call (arguments as a JSON string) becomes Ollama's (arguments as an object).
    reply = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "user", "content": "What's the weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": json.dumps({"city": "Oslo"}),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "3 degrees, snow"},
        ],
        tools=[WEATHER],
        max_tokens=20,
    )
    assert reply.choices[0].message.content or reply.choices[0].message.tool_calls
    streamed = list(
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=8, stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)


def test_ollama_client_through_the_ollama_backend(ollama_proxy: tuple[Server, str]) -> None:
    proxy, model = ollama_proxy
    client = ollama.Client(host=proxy.url)
    assert [m.model for m in client.list().models] == [f"{model}:latest"]
    parts = list(
        client.chat(
            model=model,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            options={"num_predict": 8},
        )
    )
    assert parts[-1].done and "".join(p.message.content for p in parts)
    reply = client.generate(
        model=model, prompt="Hi", system="Be brief.", options={"num_predict": 8}
    )
    assert reply.response and reply.eval_count > 0


def test_dead_upstream_is_502_naming_it(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with gateway(tmp_path, "--backend", "openai", "--upstream", dead) as proxy:
        client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert caught.value.status_code == 502
        assert dead in caught.value.body["message"]
        with pytest.raises(ollama.ResponseError) as ocaught:
            ollama.Client(host=proxy.url).chat(model="m", messages=[])
        assert ocaught.value.status_code == 502


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_hung_upstream_is_504_after_the_timeout(tmp_path: Path, backend: str) -> None:
    timeout = {"LORAGATE_UPSTREAM_TIMEOUT": "1"}
    with (
        silent_server() as hung,
        gateway(tmp_path, "--backend", backend, "--upstream", hung, env=timeout) as proxy,
    ):
        with pytest.raises(ollama.ResponseError) as caught:
            ollama.Client(host=proxy.url).generate(model="m", prompt="hi")
        assert caught.value.status_code == 504
        assert hung in caught.value.error
        client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as ocaught:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert ocaught.value.status_code == 504


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_a_client_that_gives_up_closes_the_upstream_request(tmp_path: Path, backend: str) -> None:
    timeout = {"LORAGATE_UPSTREAM_TIMEOUT": "8"}  # the start's model listing waits this long
    with (
        hung_upstream() as (hung, closed),
        gateway(tmp_path, "--backend", backend, "--upstream", hung, env=timeout) as proxy,
    ):
        impatient = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0,
                                  timeout=1)  # fmt: skip
        before = closed()
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )
        # within 5 s, not the upstream timeout (8 s): the client left
        wait_until(lambda: closed() != before, timeout=5, every=0.1,
                   what="the upstream request closed")  # fmt: skip
