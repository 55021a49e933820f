"""Bad input gets a precise error in the wire format it arrived in, and breaks nothing."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from tests.support.servers import Server, free_port, gateway, serve_argv


@pytest.fixture
def client(embedded: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=embedded.url + "/v1", api_key="unused", max_retries=0)


def test_unknown_model_is_404_listing_what_exists(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="llama-9000", messages=[{"role": "user", "content": "hi"}]
        )
    error = caught.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "llama-9000" in error["message"] and "smollm2-135m-instruct" in error["message"]
    assert caught.value.response.headers["x-loragate-interaction-id"]


def test_missing_messages_is_400_naming_the_field(embedded: Server) -> None:
    reply = httpx.post(embedded.url + "/v1/chat/completions", json={"model": "auto"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "messages" and "messages" in error["message"]
    assert error["type"] == "invalid_request_error"


def test_malformed_json_is_400(embedded: Server) -> None:
    reply = httpx.post(
        embedded.url + "/v1/chat/completions",
        content=b'{"model": "auto", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 400
    assert "not valid JSON" in reply.json()["error"]["message"]


def test_wrong_type_is_400_naming_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], temperature="hot"
        )
    assert caught.value.body["param"] == "temperature"


def test_prompt_longer_than_the_context_is_400_saying_by_how_much(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "word " * 5000}], max_tokens=5
        )
    body = caught.value.body
    assert body["code"] == "context_length_exceeded"
    assert "tokens too many" in body["message"] and "4096" in body["message"]


def test_suffix_on_a_model_without_fim_tokens_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="auto", prompt="def f(", suffix=")", max_tokens=5)
    assert caught.value.body["param"] == "suffix"


@pytest.mark.parametrize(("field", "value"), [("n", 2), ("logprobs", True)])
def test_parameters_that_would_change_the_answer_shape_are_400(
    client: openai.OpenAI, field: str, value: object
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], **{field: value}
        )
    assert caught.value.body["param"] == field


def test_tool_choice_naming_an_absent_tool_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "a", "parameters": {}}}],
            tool_choice={"type": "function", "function": {"name": "b"}},
        )


def test_ollama_routes_answer_errors_in_ollama_shape(embedded: Server) -> None:
    client = ollama.Client(host=embedded.url)
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404 and "nope" in caught.value.error
    reply = httpx.post(embedded.url + "/api/chat", content=b"{oops")
    assert reply.status_code == 400 and isinstance(reply.json()["error"], str)


def test_client_that_disconnects_frees_the_engine(client: openai.OpenAI, embedded: Server) -> None:
    stream = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Write a very long essay about the sea."}],
        max_tokens=3000,
        stream=True,
    )
    for _, _chunk in zip(range(3), stream, strict=False):
        pass
    stream.close()  # the generation had thousands of tokens (a minute or more) to go
    started = time.monotonic()
    reply = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    assert reply.choices[0].message.content is not None
    assert time.monotonic() - started < 15, "the abandoned generation kept the engine busy"
    metrics = httpx.get(embedded.url + "/metrics").text
    assert 'status="aborted"' in metrics


def test_api_key_is_required_when_configured(tmp_path: Path) -> None:
    with gateway(tmp_path, env={"LORAGATE_API_KEY": "s3cret"}) as server:
        denied = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            denied.models.list()
        allowed = openai.OpenAI(base_url=server.url + "/v1", api_key="s3cret", max_retries=0)
        assert allowed.models.list().data
        assert httpx.get(server.url + "/healthz").status_code == 200


def serve_once(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`loragate serve` that is expected to refuse to start."""
    argv = serve_argv(home, free_port(), *args)
    env = {"PATH": "/usr/bin:/bin", "LORAGATE_HOME": str(home)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_non_loopback_bind_without_api_key_is_refused(tmp_path: Path) -> None:
    result = serve_once(tmp_path, "--host", "0.0.0.0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "loragate: error: refusing to listen on 0.0.0.0 without an API key: set LORAGATE_API_KEY"
    ]


def test_missing_model_file_is_one_clear_line(tmp_path: Path) -> None:
    result = serve_once(tmp_path, "--model", str(tmp_path / "no.gguf"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"loragate: error: model file not found: {tmp_path}/no.gguf"
