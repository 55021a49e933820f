"""The official `ollama` client against the gateway's Ollama API (embedded model)."""

from __future__ import annotations

import json

import ollama
import pytest

from tests.support.servers import Server

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def client(embedded: Server) -> ollama.Client:
    return ollama.Client(host=embedded.url)


def test_list_show_ps_and_version(client: ollama.Client) -> None:
    names = [m.model for m in client.list().models]
    assert names == ["smollm2-135m-instruct:latest"]
    model = client.list().models[0]
    assert model.size > 50_000_000 and model.details.family == "llama"
    assert model.details.quantization_level == "Q4_1"
    shown = client.show("smollm2-135m-instruct")
    assert "<tool_call>" in shown.template and "tools" in shown.capabilities
    assert shown.modelinfo["general.architecture"] == "llama"
    assert [m.model for m in client.ps().models] == names
    assert client._client.get("/api/version").json()["version"]


def test_chat_returns_message_and_ollama_timings(client: ollama.Client) -> None:
    reply = client.chat(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": "What is 2+2?"}],
        options={"temperature": 0, "num_predict": 20},
    )
    assert reply.message.role == "assistant" and "4" in reply.message.content
    assert reply.done and reply.done_reason == "stop"
    assert reply.prompt_eval_count > 0 and reply.eval_count > 0
    assert reply.total_duration >= reply.eval_duration > 0


def test_chat_streams_ndjson_until_done(client: ollama.Client) -> None:
    parts = list(
        client.chat(
            model="auto",
            messages=[{"role": "user", "content": "Hello!"}],
            stream=True,
            options={"num_predict": 12},
        )
    )
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content for p in parts).strip()
    assert parts[-1].done_reason in ("stop", "length")


def test_chat_with_tools_answers_and_calls_carry_object_arguments(client: ollama.Client) -> None:
    # Ollama has no tool_choice, so the 135M model decides; either way the reply is well formed.
    reply = client.chat(
        model="auto",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[WEATHER],
        options={"temperature": 0, "num_predict": 60},
    )
    assert reply.message.content or reply.message.tool_calls
    for call in reply.message.tool_calls or []:
        assert call.function.name == "get_weather"
        assert isinstance(call.function.arguments, dict)


def test_chat_replays_a_tool_result_turn(client: ollama.Client) -> None:
    """The call and its result reach the prompt (it grows by them) and the model answers the
    question in words."""
    question = [{"role": "user", "content": "What's the weather in Paris?"}]
    turns = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "18 degrees and sunny", "tool_name": "get_weather"},
    ]
    options = {"num_predict": 20, "temperature": 0}
    asked = client.chat(model="auto", messages=question, tools=[WEATHER], options=options)
    reply = client.chat(model="auto", messages=question + turns, tools=[WEATHER], options=options)
    assert reply.message.content and reply.message.content.strip()
    assert not reply.message.tool_calls
    # the call (~20 tokens as <tool_call> JSON) and the result (~6) in their turns
    assert reply.prompt_eval_count >= asked.prompt_eval_count + 20


def test_generate_with_system_like_jessy(client: ollama.Client) -> None:
    reply = client.generate(
        model="smollm2-135m-instruct",
        prompt="What is 2+2?",
        system="You are a helpful assistant.",
        stream=False,
        options={"temperature": 0, "num_predict": 20},
    )
    assert reply.response.strip() and reply.done
    assert reply.prompt_eval_count > 20  # the system prompt went through the chat template


def test_generate_format_json_schema(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    reply = client.generate(
        model="auto",
        prompt="What is 2+2? Answer in JSON.",
        format=schema,
        options={"temperature": 0, "num_predict": 30},
    )
    assert isinstance(json.loads(reply.response)["answer"], int)


def test_generate_raw_streams(client: ollama.Client) -> None:
    parts = list(
        client.generate(
            model="auto",
            prompt="def hello():\n    print(",
            raw=True,
            stream=True,
            options={"num_predict": 6},
        )
    )
    assert parts[-1].done and "".join(p.response for p in parts)


def test_empty_generate_loads_the_model(client: ollama.Client) -> None:
    reply = client.generate(model="auto", prompt="")
    assert reply.done and reply.done_reason == "load"


def test_a_chat_without_messages_loads_the_model_as_ollama_does(client: ollama.Client) -> None:
    reply = client.chat(model="auto")  # how Ollama clients preload a model
    assert reply.done and reply.done_reason == "load"
    assert reply.message.role == "assistant" and reply.message.content == ""
    with pytest.raises(ollama.ResponseError) as unknown:
        client.chat(model="llama-9000")
    assert unknown.value.status_code == 404
