"""Ollama's answers become the gateway's events: tool calls get ids and JSON-text arguments."""

from __future__ import annotations

import json

from ollama import ChatResponse

from gateway.backends.ollama import _events, _message
from gateway.generation import Finish, TextDelta, ToolCallDelta


def test_an_ollama_tool_call_becomes_an_openai_style_call() -> None:
    chunk = ChatResponse.model_validate(
        {
            "model": "m",
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 12,
            "eval_count": 7,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
                ],
            },
        }
    )
    events = _events(chunk, index=0)
    head, args, finish = events
    assert isinstance(head, ToolCallDelta) and head.name == "get_weather" and head.id
    assert json.loads(args.arguments) == {"city": "Oslo"}
    assert finish == Finish("tool_calls", prompt_tokens=12, completion_tokens=7)


def test_text_chunks_are_text_and_length_is_kept() -> None:
    chunk = ChatResponse.model_validate(
        {
            "model": "m",
            "done": True,
            "done_reason": "length",
            "message": {"role": "assistant", "content": "Hi"},
        }
    )
    text, finish = _events(chunk, index=0)
    assert text == TextDelta("Hi") and finish.reason == "length"


def test_openai_history_becomes_ollama_history() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
        ],
    }
    assert _message(message) == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
    }
    tool = {"role": "tool", "content": "ok", "name": "f", "tool_call_id": "c1"}
    assert _message(tool) == {"role": "tool", "content": "ok", "tool_name": "f"}


def test_calls_are_sent_to_ollama_clients_with_object_arguments() -> None:
    from gateway.api.ollama import _ollama_calls
    from gateway.generation import AssembledCall

    calls = [
        AssembledCall("c1", "get_weather", '{"city": "Oslo"}'),
        AssembledCall("c2", "broken", '{"city": '),
    ]
    assert _ollama_calls(calls) == [
        {"id": "c1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}}}
    ]
