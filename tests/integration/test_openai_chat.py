"""The official `openai` SDK against the gateway serving the embedded SmolLM2-135M model."""

from __future__ import annotations

import asyncio
import json

import httpx
import jsonschema
import openai
import pytest

from tests.support.servers import Server

READ_FILE = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Read a file from the workspace",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string", "description": "Relative path"}},
            "required": ["path"],
        },
    },
}
RUN_COMMAND = {
    "type": "function",
    "function": {
        "name": "run_command",
        "description": "Run a shell command",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"}},
            "required": ["command"],
        },
    },
}
ASK = [{"role": "user", "content": "Show me what is in setup.py"}]


@pytest.fixture
def client(embedded: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=embedded.url + "/v1", api_key="unused", max_retries=0)


def test_models_lists_the_served_model_and_workload_aliases(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list().data]
    assert "smollm2-135m-instruct" in ids
    assert {"auto", "continue", "byllm"} <= set(ids)
    # Continue sends autocomplete to chat for ids starting with these letters.
    assert not [i for i in ids if i.lower().startswith(("gpt", "o"))]


def test_chat_answers_with_usage_and_loragate_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": "What is 2+2?"}],
        max_tokens=20,
        temperature=0,
    )
    reply = raw.parse()
    assert "4" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens > 0
    assert raw.headers["x-loragate-interaction-id"].startswith("ia_")
    assert raw.headers["x-loragate-model-version"] == "smollm2-135m-instruct@v0"


def test_workload_alias_is_served_by_the_default_model(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="continue", messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    assert reply.model == "continue"
    assert reply.system_fingerprint == "smollm2-135m-instruct@v0"


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_completion_tokens=5,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens <= 6


def test_same_seed_gives_the_same_answer(client: openai.OpenAI) -> None:
    def ask() -> str:
        return (
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "Name a color."}],
                max_tokens=12,
                temperature=1.0,
                seed=1234,
            )
            .choices[0]
            .message.content
        )

    assert ask() == ask()


def test_stop_sequence_ends_the_answer_before_it(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Count from 1 to 10 separated by commas."}],
        max_tokens=40,
        temperature=0,
        stop=["5"],
    )
    assert "5" not in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"


def test_streaming_sends_role_then_text_then_finish_then_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=15,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_required_tool_call_streams_id_and_name_first(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="auto",
        messages=ASK,
        tools=[READ_FILE, RUN_COMMAND],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=200,
        temperature=0,
        stream=True,
    )
    deltas, finish = [], None
    for chunk in stream:
        choice = chunk.choices[0]
        deltas.extend(choice.delta.tool_calls or [])
        finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    first = deltas[0]
    assert first.index == 0 and first.id and first.type == "function"
    assert first.function.name in ("read_file", "run_command")
    arguments = json.loads("".join(d.function.arguments or "" for d in deltas))
    tool = READ_FILE if first.function.name == "read_file" else RUN_COMMAND
    jsonschema.validate(arguments, tool["function"]["parameters"])


def test_named_tool_choice_forces_that_tool(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="auto",
        messages=ASK,
        tools=[READ_FILE, RUN_COMMAND],
        tool_choice={"type": "function", "function": {"name": "run_command"}},
        max_tokens=200,
        temperature=0,
    )
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert [c.function.name for c in message.tool_calls] == ["run_command"]
    jsonschema.validate(
        json.loads(message.tool_calls[0].function.arguments), RUN_COMMAND["function"]["parameters"]
    )


def test_a_forced_call_writes_its_arguments_in_the_order_calls_are_trained_in(
    client: openai.OpenAI,
) -> None:
    """The trainer prints the calls it trains on with their arguments in the order of the
    tool's schema, and the grammar holds a call to that order, else a trained model writes one
    argument's value under another's name."""
    edit = {"type": "function", "function": {"name": "edit_file", "parameters": {
        "type": "object", "required": ["file_path", "old_string", "new_string"],
        "properties": {"file_path": {"type": "string"}, "old_string": {"type": "string"},
                       "new_string": {"type": "string"}}}}}  # fmt: skip
    reply = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "In a.py, replace `x` with `y`"}],
        tools=[edit], tool_choice={"type": "function", "function": {"name": "edit_file"}},
        max_tokens=80, temperature=0,
    )  # fmt: skip
    (call,) = reply.choices[0].message.tool_calls
    keys = [k for k, _ in json.loads(call.function.arguments, object_pairs_hook=list)]
    assert keys == ["file_path", "old_string", "new_string"]


def test_a_call_the_model_opens_under_auto_is_finished_as_a_valid_call(
    client: openai.OpenAI,
) -> None:
    """With `tool_choice: auto` the model may answer in text, but once it writes
    `<tool_call>` the rest follows the offered tools' grammar. Asked to write the tag, the
    base model does, and what it goes on with is a call of an offered tool, valid against
    its schema; no temperature given: tool requests decode greedily, so it always does."""
    for _ in range(2):
        reply = client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Reply with exactly this text: <tool_call>"}],
            tools=[READ_FILE, RUN_COMMAND],
            max_tokens=80,
        )
        message = reply.choices[0].message
        assert reply.choices[0].finish_reason == "tool_calls", message
        (call,) = message.tool_calls
        tool = {"read_file": READ_FILE, "run_command": RUN_COMMAND}[call.function.name]
        jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])
    # free text stays free: a question with tools offered is answered in words
    reply = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "What is 2+2?"}],
        tools=[READ_FILE, RUN_COMMAND], max_tokens=20,
    )  # fmt: skip
    assert reply.choices[0].message.content and not reply.choices[0].message.tool_calls


def test_tool_result_turn_is_accepted(client: openai.OpenAI) -> None:
    """The call and its result reach the prompt (it grows by them); with tool_choice none the
    answer is words, never a call."""
    turns = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "setup.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "from setuptools import setup"},
    ]
    asked, reply = (
        client.chat.completions.create(model="auto", messages=[*ASK, *more], tools=[READ_FILE],
                                       tool_choice="none", max_tokens=20, temperature=0)
        for more in ([], turns)
    )  # fmt: skip
    content = reply.choices[0].message.content
    assert content and content.strip()
    assert reply.choices[0].message.tool_calls is None
    assert "<tool_call>" not in content
    # the call (~20 tokens as <tool_call> JSON) and the result (~6) in their turns
    assert asked.usage and reply.usage
    assert reply.usage.prompt_tokens >= asked.usage.prompt_tokens + 20


def test_json_schema_response_format_always_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model="byllm",
        messages=[{"role": "user", "content": "Invent a person."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
        max_tokens=200,
        temperature=0,
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content), schema)


def test_json_object_mode_returns_an_object(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="auto",
        messages=[
            {"role": "user", "content": 'Describe a cat as JSON with the keys "name" and "legs".'}
        ],
        response_format={"type": "json_object"},
        max_tokens=300,
        temperature=0,
    )
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def _agent_turns(client: openai.OpenAI, name: str) -> tuple[list[dict], int]:
    system = f"You are {name}, a coding agent. " + " ".join(
        f"Rule {i}: be careful." for i in range(150)
    )
    first = [{"role": "system", "content": system}, {"role": "user", "content": "List files."}]
    one = client.chat.completions.create(model="auto", messages=first, max_tokens=8)
    second = [
        *first,
        {"role": "assistant", "content": one.choices[0].message.content},
        {"role": "user", "content": "Now read main.py."},
    ]
    return second, one.usage.prompt_tokens


def test_second_turn_reuses_the_cached_prefix(client: openai.OpenAI) -> None:
    second, first_prompt = _agent_turns(client, "Ada")
    two = client.chat.completions.create(model="auto", messages=second, max_tokens=8)
    assert first_prompt > 600
    assert two.usage.prompt_tokens_details.cached_tokens >= first_prompt - 1


def test_prefix_survives_another_conversation_in_between(client: openai.OpenAI) -> None:
    second, first_prompt = _agent_turns(client, "Grace")
    _agent_turns(client, "Linus")  # another agent's turn replaces the KV cache contents
    two = client.chat.completions.create(model="auto", messages=second, max_tokens=8)
    assert two.usage.prompt_tokens_details.cached_tokens >= first_prompt - 1


def test_metrics_are_labelled_by_workload_and_version(
    client: openai.OpenAI, embedded: Server
) -> None:
    client.chat.completions.create(
        model="byllm", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    metrics = httpx.get(embedded.url + "/metrics").text
    labels = 'api="chat",version="smollm2-135m-instruct@v0",workload="jac"'
    for name in (
        "loragate_request_latency_seconds_count",
        "loragate_time_to_first_token_seconds_count",
    ):
        assert f"{name}{{{labels}}}" in metrics
    assert (
        'loragate_tokens_total{direction="out",version="smollm2-135m-instruct@v0",workload="jac"}'
        in metrics
    )
    assert 'loragate_engine_queue_depth{version="smollm2-135m-instruct@v0"}' in metrics


async def test_async_clients_are_served_one_after_another(embedded: Server) -> None:
    client = openai.AsyncOpenAI(base_url=embedded.url + "/v1", api_key="unused", max_retries=0)
    replies = await asyncio.gather(
        *[
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": f"Say the number {i}."}],
                max_tokens=10,
            )
            for i in range(4)
        ]
    )
    assert all(r.choices[0].message.content for r in replies)
    assert len({r.id for r in replies}) == 4
    await client.close()


def test_completions_continue_a_raw_prompt(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="autocomplete", prompt="def add(a, b):\n    return", max_tokens=8, temperature=0
    )
    assert reply.object == "text_completion"
    assert reply.choices[0].text
    streamed = client.completions.create(
        model="autocomplete", prompt="import os\nimport", max_tokens=5, stream=True
    )
    pieces = [c.choices[0].text for c in streamed if c.choices]
    assert "".join(pieces)
