"""Chat templates: turn a conversation (with tools) into the exact prompt text the model sees.

Rendering mirrors `transformers`' `apply_chat_template` (sandboxed Jinja, trim/lstrip blocks,
a `tojson` that keeps key order and does not HTML-escape, `{% generation %}` accepted) so that
the text served here and the text trained on are the same string. The shipped tools template
gets the conversation as Ollama would hand it to the template's Go twin (`ollama_values`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gateway.errors import BadRequest
from gateway.prompts import ollama_values
from modelfiles import TEMPLATES_DIR

TOOLS_TEMPLATE = "chatml-tools"
# in every version of the shipped tools template, also in copies saved with models
TOOLS_TEMPLATE_MARK = "ChatML with Hermes/Qwen-style tool calling, for models whose own"
# in the versions whose trained calls have their arguments in the tool schema's order; a model
# trained with an earlier copy wrote them sorted
SCHEMA_ORDER_MARK = "A call the model writes has its arguments in the order of the tool's schema"


class GenerationMarkers(Extension):
    """Accepts `{% generation %}...{% endgeneration %}` and renders the body unchanged.

    transformers uses these markers to build the assistant-token mask for training."""

    tags = {"generation"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise(message: str) -> None:
    raise BadRequest(f"chat template: {message}")


@lru_cache(maxsize=32)
def compile_template(source: str):
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[GenerationMarkers, "jinja2.ext.loopcontrols"],
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    return env.from_string(source)


def template_source(name: str) -> str:
    """The text of a template shipped in `modelfiles/templates/<name>.jinja`."""
    return (TEMPLATES_DIR / f"{name}.jinja").read_text(encoding="utf-8")


def template_path(name: str) -> Path:
    return TEMPLATES_DIR / f"{name}.jinja"


def render(
    source: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """Render a conversation; `tools` are OpenAI function tools (`{"type","function"}`)."""
    messages, tools, _ = prepare(source, messages, tools)
    return compile_template(source).render(
        messages=messages,
        tools=tools or None,
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token=eos_token,
    )


def is_tools_template(source: str | None) -> bool:
    """Whether `source` is the shipped tools template (or a copy saved with a model)."""
    return source is not None and TOOLS_TEMPLATE_MARK in source


def writes_sorted_arguments(own_template: str | None) -> bool:
    """Whether a model writes its calls' arguments with sorted keys: one trained here with an
    earlier copy of the tools template (every other, trained here since or not, is held to
    the order of the tool's schema)."""
    return is_tools_template(own_template) and SCHEMA_ORDER_MARK not in (own_template or "")


def prepare(
    source: str | None,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    written: Collection[int] = (),
) -> tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]] | None, list[list[int]]]:
    """What `source` is rendered with: for the shipped tools template the conversation as
    Ollama sees it, with the calls of the messages at `written` (the turns trained on) in the
    order the model is to write them (see `ollama_values.prepare`); for any other template
    the messages and tools as given. Also returns the indices of the given messages that each
    rendered message came from."""
    if is_tools_template(source):
        return ollama_values.prepare(messages, tools, written)
    return messages, list(tools) if tools else None, [[i] for i in range(len(messages))]


def template_handles_tools(source: str) -> bool:
    """Whether a model's own template renders `tools` (most newer ones do; SmolLM2's does not)."""
    return "tools" in source and ("tool_call" in source or "tool_calls" in source)
