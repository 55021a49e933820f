"""What a user says an answer should have been: plain text, or an assistant message with tool
calls ("that should have been `Read` with `filepath: src/app.py`").

A correction is stored as the text the serving template renders for that assistant turn: its
content, then one `<tool_call>` block per call. So a text correction that is exactly such a
block (as older records hold) reads back as the same structured correction, and the dataset
learns it as a tool call whatever way it arrived.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidCorrection
from gateway.prompts.ollama_values import go_json
from gateway.prompts.schemas import violation
from gateway.prompts.toolcalls import (
    CLOSE_TAG,
    OPEN_TAG,
    ParsedCall,
    ToolCallSplitter,
    new_call_id,
    parameter_schemas,
)


@dataclass(frozen=True)
class Correction:
    content: str
    calls: tuple[ParsedCall, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> Correction:
        """Read a stored correction: `<tool_call>` blocks whose JSON parses become calls."""
        splitter = ToolCallSplitter()
        shown, calls = splitter.feed(text)
        rest, last = splitter.finish()
        content = (shown + rest).strip()
        return cls(content if calls or last else text, tuple(calls + last))

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Correction:
        """An assistant message in OpenAI shape (`arguments` a JSON string) or Ollama shape
        (`arguments` an object); arguments that don't parse are an `InvalidCorrection`."""
        calls = []
        for number, call in enumerate(message.get("tool_calls") or [], 1):
            function = call.get("function") or {}
            name, raw = function.get("name"), function.get("arguments", {})
            if not isinstance(name, str) or not name:
                raise InvalidCorrection(f"tool call {number} has no function.name")
            if isinstance(raw, str):
                try:
                    raw = json.loads(raw) if raw.strip() else {}
                except json.JSONDecodeError as exc:
                    raise InvalidCorrection(
                        f"the arguments of {name} are not JSON: {exc.msg} at character {exc.pos}"
                    ) from None
            if not isinstance(raw, dict):
                raise InvalidCorrection(f"the arguments of {name} are not a JSON object")
            arguments = go_json(raw)  # as the template prints arguments
            calls.append(ParsedCall(name=name, arguments=arguments, id=new_call_id()))
        content = message.get("content") or ""
        if not calls and not content:
            raise InvalidCorrection("the correction has neither content nor tool_calls")
        return cls(content, tuple(calls))

    def text(self) -> str:
        """The stored form: what the serving template renders for this assistant turn."""
        blocks = [f'{OPEN_TAG}\n{{"name": "{c.name}", "arguments": {c.arguments}}}\n{CLOSE_TAG}'
                  for c in self.calls]  # fmt: skip
        return "\n".join(([self.content] if self.content else []) + blocks)

    def message(self) -> dict[str, Any]:
        """The assistant turn to learn, in OpenAI shape."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.calls
            ]  # fmt: skip
        return message

    def check(self, tools: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> None:
        """Raise `InvalidCorrection` unless it fits the request it corrects: every call names
        one of its tools with arguments valid against that tool's schema; a text answer to a
        request with a response schema is JSON valid against it."""
        schemas = parameter_schemas(tools)
        for call in self.calls:
            if call.name not in schemas:
                offered = ", ".join(sorted(str(n) for n in schemas if n)) or "none"
                raise InvalidCorrection(f"unknown tool {call.name!r} (the request offered: "
                                        f"{offered})")  # fmt: skip
            arguments = json.loads(call.arguments)
            missing = [r for r in schemas[call.name].get("required", []) if r not in arguments]
            if missing:
                raise InvalidCorrection(f"{call.name} is missing required {', '.join(missing)}")
            why = violation(arguments, schemas[call.name])
            if why is not None:
                raise InvalidCorrection(f"the arguments of {call.name} don't match its "
                                        f"schema: {why}")  # fmt: skip
        if json_schema is not None and not self.calls:
            try:
                value = json.loads(self.content)
            except json.JSONDecodeError as exc:
                raise InvalidCorrection(
                    f"the request asked for JSON with a schema and the correction is not "
                    f"JSON: {exc.msg}"
                ) from None
            why = violation(value, json_schema)
            if why is not None:
                raise InvalidCorrection(f"the correction doesn't match the response schema: {why}")


def correction_of(value: str | dict[str, Any]) -> Correction:
    """A correction as `/v1/feedback` or the CLI gives it: text or an assistant message."""
    return Correction.from_text(value) if isinstance(value, str) else Correction.from_message(value)
