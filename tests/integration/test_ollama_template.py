"""The Modelfile's Go TEMPLATE, run by Go's text/template the way Ollama runs it, prints the same
bytes as the Jinja template the gateway serves and trains with, for the same conversation:
system prompts, several turns, tools, tool calls, tool results. A version deployed to Ollama
therefore sees exactly the prompts it was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.prompts import templates
from gateway.versions.ollama_tags import modelfile_for
from tests.support import go_template

JINJA = templates.template_source(templates.TOOLS_TEMPLATE)

READ = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Read a file & return <its> text — verbatim",
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Relative path"},
                "lines": {"type": ["integer", "null"], "minimum": 1},
            },
            "required": ["path"],
        },
    },
}
EDIT = {
    "type": "function",
    "function": {
        "name": "edit",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "mode": {"type": "string", "enum": ["replace", "insert"]},
                "patch": {
                    "type": "object",
                    "properties": {"old": {"type": "string"}, "new": {"type": "string"}},
                    "required": ["old", "new"],
                },
                "tags": {"type": "array", "items": {"type": "string"}},
                "scale": {"anyOf": [{"type": "number"}, {"type": "string"}]},
            },
        },
    },
}
NO_PARAMETERS = {"type": "function", "function": {"name": "now", "description": "The time."}}


def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A call as OpenAI clients send it: arguments as JSON text, spaced and in their order."""
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip


CONVERSATIONS: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]] | None]] = {
    "one question, the default system prompt": ([{"role": "user", "content": "Hi"}], None),
    "system prompt and several turns": (
        [
            {"role": "system", "content": "You are JESSY. Be warm."},
            {"role": "user", "content": "What is a monad?"},
            {"role": "assistant", "content": "A pattern for chaining computations."},
            {"role": "user", "content": 'Shorter, with <code> & "quotes"?'},
        ],
        None,
    ),
    "tools offered": (
        [
            {"role": "system", "content": "You fix bugs."},
            {"role": "user", "content": "Why does main.py fail?"},
        ],
        [READ, EDIT, NO_PARAMETERS],
    ),
    "tool calls, their results, an answer and a follow-up": (
        [
            {"role": "user", "content": "Fix a.py and b.py"},
            {
                "role": "assistant",
                "content": "Reading both.",
                "tool_calls": [
                    call("c1", "read_file", {"path": "a.py", "lines": 20}),
                    call("c2", "read_file", {"path": "b.py"}),
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "x = 1 < 2"},
            {"role": "tool", "tool_call_id": "c2", "content": "import a\n"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    call(
                        "c3",
                        "edit",
                        {
                            "patch": {"old": "1 < 2", "new": "1 <= 2"},
                            "mode": "replace",
                            "scale": 0.5,
                            "tags": ["fix", "é"],
                        },
                    )
                ],
            },
            {"role": "tool", "tool_call_id": "c3", "content": "ok"},
            {"role": "assistant", "content": "Done: a.py compares with <=."},
            {"role": "user", "content": "Thanks. And tests?"},
        ],
        [READ, EDIT],
    ),
    "waiting on a tool result": (
        [
            {"role": "system", "content": "Agent."},
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": "", "tool_calls": [call("t", "now", {})]},
            {"role": "tool", "tool_call_id": "t", "content": "09:30"},
        ],
        [NO_PARAMETERS],
    ),
    "two system prompts and same-role neighbours": (
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Context: a.py"},
            {"role": "user", "content": "Question: why?"},
            {"role": "assistant", "content": "Because."},
            {"role": "system", "content": "Answer in English."},
            {"role": "user", "content": "Really?"},
        ],
        None,
    ),
    "no tools offered in an empty list": ([{"role": "user", "content": "Hi"}], []),
}


def as_ollama_sends(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same conversation from an Ollama client: string content, arguments as objects."""
    out = []
    for message in messages:
        sent = {**message, "content": message.get("content") or ""}
        if message.get("tool_calls"):
            sent["tool_calls"] = [
                {"function": {"name": c["function"]["name"],
                              "arguments": json.loads(c["function"]["arguments"])}}
                for c in message["tool_calls"]
            ]  # fmt: skip
        out.append(sent)
    return out


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_template.build(tmp_path_factory.mktemp("go") / "ollama_template")


@pytest.mark.parametrize("workload", ["*", "continue", "jessy"])
@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_ollama_renders_the_modelfile_as_the_gateway_renders_jinja(
    harness: Path, workload: str, name: str
) -> None:
    messages, tools = CONVERSATIONS[name]
    template = modelfile_for(workload).template
    assert template is not None
    ollama = go_template.render(harness, template, as_ollama_sends(messages), tools)
    gateway = templates.render(JINJA, messages, tools)
    assert ollama == gateway


def test_a_difference_is_caught(harness: Path) -> None:
    """The harness really runs the Go template: a changed TEMPLATE prints other bytes."""
    template = (modelfile_for("*").template or "").replace("<tool_response>", "<tool_result>")
    messages, tools = CONVERSATIONS["waiting on a tool result"]
    ollama = go_template.render(harness, template, as_ollama_sends(messages), tools)
    assert ollama != templates.render(JINJA, messages, tools) and "<tool_result>" in ollama
