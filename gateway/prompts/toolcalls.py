"""Tool calls in the Hermes/Qwen text convention: parse them, stream them, constrain them.

A model that follows the convention writes

    <tool_call>
    {"name": "read_file", "arguments": {"path": "a.py"}}
    </tool_call>

`ToolCallSplitter` separates such blocks from plain text as tokens stream in; `call_grammar`
builds the llama.cpp grammar that forces exactly this text (with arguments valid against the
tool's JSON schema) when the request says a call is required.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"


@dataclass(frozen=True)
class ParsedCall:
    """One complete tool call: `arguments` is the JSON text of an object."""

    name: str
    arguments: str
    id: str = field(default_factory=lambda: new_call_id())


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def parse_call(block: str) -> ParsedCall | None:
    """Parse the JSON inside one `<tool_call>` block; None when it is not a call."""
    try:
        data = json.loads(block.strip())
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return ParsedCall(name=data["name"], arguments=args)
    return ParsedCall(name=data["name"], arguments=json.dumps(args, ensure_ascii=False))


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ToolCallSplitter:
    """Feed streamed text in; get back plain text to show now and tool calls once complete."""

    def __init__(self) -> None:
        self._pending = ""
        self._in_call = False
        self._calls_seen = 0
        self._held_space = ""  # whitespace after a call is shown only if text follows it

    def feed(self, text: str) -> tuple[str, list[ParsedCall]]:
        self._pending += text
        out: list[str] = []
        calls: list[ParsedCall] = []
        while True:
            if self._in_call:
                end = self._pending.find(CLOSE_TAG)
                if end < 0:
                    break
                block, self._pending = self._pending[:end], self._pending[end + len(CLOSE_TAG) :]
                self._in_call = False
                call = parse_call(block)
                if call is None:
                    out.append(OPEN_TAG + block + CLOSE_TAG)
                else:
                    calls.append(call)
                    self._calls_seen += 1
                continue
            start = self._pending.find(OPEN_TAG)
            if start < 0:
                keep = _partial_tag_suffix(self._pending, OPEN_TAG)
                cut = len(self._pending) - keep
                out.append(self._pending[:cut])
                self._pending = self._pending[cut:]
                break
            out.append(self._pending[:start])
            self._pending = self._pending[start + len(OPEN_TAG) :]
            self._in_call = True
        return self._hold_space("".join(out)), calls

    def _hold_space(self, text: str) -> str:
        if not self._calls_seen:
            return text
        if not text.strip():
            self._held_space += text
            return ""
        text, self._held_space = self._held_space + text, ""
        return text

    def finish(self) -> tuple[str, list[ParsedCall]]:
        """Flush at end of generation; an unclosed block still counts if its JSON is whole."""
        rest, self._pending = self._pending, ""
        if not self._in_call:
            return self._hold_space(rest), []
        self._in_call = False
        call = parse_call(rest)
        if call:
            return "", [call]
        # A block cut off (by max_tokens) after complete calls is noise, not an answer.
        return ("", []) if self._calls_seen else (OPEN_TAG + rest, [])


def strip_trailing_separator(text: str) -> str:
    """Text before a tool call usually ends in the newline that separated it from the call."""
    return text[:-1] if text.endswith("\n") else text


# -- constrained decoding -----------------------------------------------------------------


def _function(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    return tool.get("function", tool)


def parameter_schemas(tools: Iterable[Mapping[str, Any]] | None) -> dict[str | None, Any]:
    """Each offered tool's parameters schema (`{}` where it gives none), by tool name."""
    return {fn.get("name"): fn.get("parameters") or {} for fn in map(_function, tools or [])}


def call_schema(tools: list[dict[str, Any]], *, sorted_arguments: bool = False) -> dict[str, Any]:
    """JSON schema of `{"name": ..., "arguments": {...}}` for any one of `tools`; with
    `sorted_arguments`, every object's properties in sorted order (see `call_grammar`)."""
    variants = []
    for tool in tools:
        fn = _function(tool)
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        variants.append(
            {
                "type": "object",
                "properties": {"name": {"const": fn["name"]},
                               "arguments": _sorted(params) if sorted_arguments else params},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )  # fmt: skip
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def _sorted(schema: Any) -> Any:
    """`schema` with the properties of every object it describes in sorted order."""
    if isinstance(schema, list):
        return [_sorted(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _sorted(value) for key, value in schema.items() if key != "properties"}
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: _sorted(v) for k, v in sorted(schema["properties"].items())}
    return out


def call_grammar(
    tools: list[dict[str, Any]], *, parallel: bool, opened: bool = False,
    sorted_arguments: bool = False,
) -> str:  # fmt: skip
    """GBNF that admits one (or, when `parallel`, several) `<tool_call>` blocks and nothing else.
    `opened`: the text already holds the first block's `<tool_call>` (a model that began a call
    on its own); the grammar admits the rest.

    The grammar fixes the order of each call's arguments, so it must be the order the model
    learnt: the order of the tool's schema, in which the trainer prints the calls it trains
    on, or (`sorted_arguments`) sorted keys, for versions trained before it did. A model
    trained on `{"file_path", "new_string", "old_string"}` and held to the schema's
    `file_path, old_string, new_string` wrote the new text under `old_string`."""
    from llama_cpp.llama_grammar import SchemaConverter

    # properties keep the order they are given in: `name`, then `arguments`
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    schema = converter.resolve_refs(call_schema(tools, sorted_arguments=sorted_arguments), "tools")
    call_rule = converter.visit(schema, "call")
    rest = f'"\\n" {call_rule} "\\n{_gbnf_escape(CLOSE_TAG)}"'
    converter._add_rule("block", f'"{_gbnf_escape(OPEN_TAG)}" {rest}')
    first = rest if opened else "block"
    converter._add_rule("root", f'{first} ("\\n" block)*' if parallel else first)
    return converter.format_grammar()


def schema_grammar(schema: dict[str, Any] | None) -> str:
    """GBNF for a JSON value matching `schema` (any JSON object when None: `json_object` mode)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(json.dumps(schema if schema is not None else {"type": "object"}))


def _gbnf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
