"""Jac MTLLM's requests: what a `by llm()` call asks, and whether an answer is what it declared.

MTLLM 0.3 sends one user message per call (`BaseLLM.__infer__`): the ask itself, built from a
`[System Prompt]`, `[Information]`, `[Context]`, `[Inputs Information]`, `[Output Information]`,
`[Type Explanations]` and `[Action]` section and a suffix asking for `[Output] <result>`; and,
when it cannot use the answer, follow-ups: a *fix* (`[Previous Output]` ... `[Error]`: the value
did not evaluate), an *extract* (`[Output]` ... `[Previous Result You Provided]`: the answer had
no `[Output]`) and a yes/no *check*. The value of an ask's answer is the text after `[Output]`;
a fix's or an extract's answer is the value itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.generation import GenerationRequest
from gateway.prompts import jac_types
from gateway.prompts.jac_types import Explained, TypeSpec

WORKLOAD = "jac"
_ASK_MARKS = ("[System Prompt]", "[Inputs Information]", "[Output Information]",
              "[Type Explanations]", "[Action]")  # fmt: skip
_SECTION = re.compile(r"^\[([A-Za-z &]+)\]\n", re.MULTILINE)
_OUTPUT_HINT = re.compile(r"\(([^()]*(?:\([^()]*\))?[^()]*)\)\s*$")
_OUTPUT = re.compile(r"\[Output\](.*)", re.DOTALL)
_CHECK_TAIL = "Check if the output is exactly in the desired Output Type."


@dataclass
class MtllmCall:
    """One MTLLM request: `kind` is ask, fix, extract or check; `previous` is the earlier
    answer a fix or extract quotes."""

    kind: str
    output_type: TypeSpec | None
    explained: dict[str, Explained] = field(default_factory=dict)
    previous: str | None = None
    method: str = "Normal"

    def value_of(self, answer: str) -> str | None:
        """The answer's value as MTLLM reads it; None when an ask's answer has no `[Output]`."""
        if self.kind != "ask":
            return answer.strip()
        match = _OUTPUT.search(answer)
        return match.group(1).strip() if match else None

    def problem(self, answer: str) -> str | None:
        """Why the answer is not a value of the declared type, or None."""
        if self.output_type is None:
            return "the prompt declares no type that can be read"
        value = self.value_of(answer)
        if value is None:
            return "no [Output] in the answer"
        return jac_types.type_problem(value, self.output_type, self.explained)

    def grammar(self) -> str | None:
        if self.kind != "ask" or self.output_type is None or self.method != "Normal":
            return None
        return jac_types.grammar(self.output_type, self.explained)


def sections(text: str) -> dict[str, str]:
    """`[Name]` headed blocks of a prompt, by name, their text stripped."""
    found: dict[str, str] = {}
    marks = list(_SECTION.finditer(text))
    ends = [m.start() for m in marks[1:]] + [len(text)]
    for mark, end in zip(marks, ends, strict=False):  # no marks: no sections
        found.setdefault(mark[1], text[mark.end() : end].strip("\n"))
    return found


def read_call(request: GenerationRequest) -> MtllmCall | None:
    """The MTLLM call a request makes, or None for any other request."""
    text = _only_text(request)
    if text is None or "[" not in text:
        return None
    if all(mark in text for mark in _ASK_MARKS):
        return _ask(text)
    parts = sections(text)
    if "Previous Output" in parts and "Desired Output Type" in parts and "Error" in parts:
        return _follow_up("fix", parts, parts["Desired Output Type"], parts["Previous Output"])
    if "Previous Result You Provided" in parts and "Desired Output Type" in parts:
        hint = parts["Desired Output Type"]
        return _follow_up("extract", parts, _hinted_type(hint) or hint, parts.get("Output"))
    if _CHECK_TAIL in text and "Desired Output Type" in parts:
        return _follow_up("check", parts, parts["Desired Output Type"], parts.get("Output"))
    return None


def _only_text(request: GenerationRequest) -> str | None:
    if request.messages is not None:
        users = [m for m in request.messages if m["role"] == "user"]
        if len(request.messages) != 1 or len(users) != 1:
            return None
        content = users[0].get("content")
        return content if isinstance(content, str) else None
    return request.prompt


def _ask(text: str) -> MtllmCall:
    parts = sections(text)
    hinted = _hinted_type(parts.get("Output Information", ""))
    action = parts.get("Action", "")
    method = "Normal"
    if "[Reasoning] <Reason>" in action:
        method = "Reason"
    elif "[Chain of Thoughts]" in action:
        method = "Chain-of-Thoughts"
    elif "[Tool Usage]" in action:
        method = "ReAct"
    return MtllmCall("ask", _type_or_none(hinted), _explained(parts), method=method)


def _follow_up(kind: str, parts: dict[str, str], type_text: str, previous: str | None) -> MtllmCall:
    return MtllmCall(kind, _type_or_none(type_text), _explained(parts), previous=previous)


def _explained(parts: dict[str, str]) -> dict[str, Explained]:
    return jac_types.parse_explanations(parts.get("Type Explanations", ""))


def _hinted_type(hint: str) -> str | None:
    """`The person described (Person)` → `Person`: the last bracketed group of the line."""
    match = _OUTPUT_HINT.search(hint.strip())
    return match.group(1) if match else None


def _type_or_none(text: str | None) -> TypeSpec | None:
    if not text:
        return None
    try:
        return jac_types.parse_type(text)
    except jac_types.TypeSyntaxError:
        return None
