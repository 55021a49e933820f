"""From recorded interactions to training examples: what each answer is worth, and which
assistant turns of a conversation carry loss.

Trust, best first: `corrected` (the correction replaces the model's answer), `accepted`
(explicit feedback or a Continue event), `positive` (every automatic judgement passed: the tool
call validated and its result came back without an error, the schema validated, nobody asked
again), `unjudged` (no judgement at all; used only when asked for). Anything judged negatively
and not corrected is a *negative*: never a target, kept aside for evaluation.

Agents resend the whole conversation each turn, so the longest request of a conversation holds
the assistant turns of the earlier interactions. One example is built per such thread: its
messages plus the final answer, with loss on each assistant turn whose interaction is a target
and none on the others (failed or unjudged turns stay as context).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson

from gateway.recording.corrections import Correction

TRUST_ORDER = ("corrected", "accepted", "positive", "unjudged")
_NEGATIVE = "negative"


@dataclass
class Interaction:
    """One recorded exchange with its judgements, as the dataset builder sees it.

    The request (the whole conversation so far, often many kB) is decoded only when needed:
    in a conversation, usually only the last interaction's is."""

    id: str
    created_at: float
    workload: str
    conversation_id: str | None
    request_json: str
    response_text: str
    tool_calls: list[dict[str, Any]]
    status: str
    redactions: int
    outcomes: list[tuple[str, float]] = field(default_factory=list)
    correction: str | None = None

    @cached_property
    def _request(self) -> dict[str, Any]:
        return orjson.loads(self.request_json)

    @cached_property
    def messages(self) -> list[dict[str, Any]]:
        request = self._request
        messages = request.get("messages")
        if messages is not None:
            return messages
        head = [{"role": "system", "content": request["system"]}] if request.get("system") else []
        return [*head, {"role": "user", "content": request.get("prompt") or ""}]

    @property
    def tools(self) -> list[dict[str, Any]]:
        return self._request.get("tools") or []

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The response schema the client asked for (structured output), if any."""
        return self._request.get("json_schema")

    @property
    def size(self) -> int:
        """How long the conversation so far is (the request's length, without decoding it)."""
        return len(self.request_json)

    @property
    def trust(self) -> str:
        """`corrected`, `accepted`, `positive`, `unjudged` or `negative`."""
        if self.correction is not None:
            return "corrected"
        if self.status != "complete":
            return _NEGATIVE
        values = dict.fromkeys(k for k, _ in self.outcomes)
        if any(v == 0.0 for _, v in self.outcomes):
            return _NEGATIVE
        if "accepted" in values:
            return "accepted"
        return "positive" if self.outcomes else "unjudged"

    def answer(self) -> dict[str, Any]:
        """The assistant turn to learn: the correction (its `<tool_call>` blocks as tool
        calls), else what the model said."""
        if self.correction is not None:
            corrected = Correction.from_text(self.correction).message()
            for n, call in enumerate(corrected.get("tool_calls", [])):
                call["id"] = _stable_call_id(self.id, n)  # the same dataset on every build
            return corrected
        message: dict[str, Any] = {"role": "assistant", "content": self.response_text}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in self.tool_calls
            ]  # fmt: skip
        return message


@dataclass
class Example:
    """A conversation to train on; `targets` index the assistant messages that carry loss."""

    id: str
    workload: str
    conversation_id: str | None
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    targets: list[int]
    trust: str
    sources: list[str]
    redactions: int = 0
    created_at: float = 0.0
    json_schema: dict[str, Any] | None = None  # of the last turn, for structured-output scoring

    def target_tools(self) -> list[str]:
        """Names of the tools called in target turns ('' for a plain-text target)."""
        names: list[str] = []
        for i in self.targets:
            calls = self.messages[i].get("tool_calls") or []
            names.extend(c["function"]["name"] for c in calls) if calls else names.append("")
        return names

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "workload": self.workload, "conversation_id": self.conversation_id,
            "trust": self.trust, "sources": self.sources, "targets": self.targets,
            "messages": self.messages, "tools": self.tools,
        } | ({"json_schema": self.json_schema} if self.json_schema else {})  # fmt: skip


def _stable_call_id(interaction_id: str, n: int) -> str:
    return "call_" + hashlib.sha256(f"{interaction_id}:{n}".encode()).hexdigest()[:24]


def interaction_from_row(
    row: Any, outcomes: list[tuple[str, float]], correction: str | None
) -> Interaction | None:
    """An `Interaction` from a store row; None for requests that are not chats (raw and
    fill-in-the-middle completions: autocomplete is not trained yet)."""
    request_json = row["request"]
    if '"messages":' not in request_json:  # a completion: few, so decoding them costs little
        request = orjson.loads(request_json)
        if request.get("raw") or request.get("suffix") is not None:
            return None
    return Interaction(
        id=row["id"], created_at=row["created_at"], workload=row["workload"],
        conversation_id=row["conversation_id"], request_json=request_json,
        response_text=row["response_text"] or "",
        tool_calls=orjson.loads(row["tool_calls"]) if row["tool_calls"] else [],
        status=row["status"], redactions=row["redactions"], outcomes=outcomes,
        correction=correction,
    )  # fmt: skip


def _answer_key(message: dict[str, Any]) -> tuple[str, ...]:
    calls = message.get("tool_calls") or []
    if calls:
        return ("calls", *(c.get("id") or "" for c in calls))
    return ("text", (message.get("content") or "").strip())


def _interaction_key(i: Interaction) -> tuple[str, ...]:
    if i.tool_calls:
        return ("calls", *(c["id"] for c in i.tool_calls))
    return ("text", i.response_text.strip())


def threads(
    interactions: Iterable[Interaction], allowed: frozenset[str]
) -> Iterator[tuple[Example | None, list[Interaction]]]:
    """Examples built from one conversation's interactions, and the negatives among them.

    `allowed` is the set of trust levels that may be targets. Yields (example or None, the
    interactions it covered that are negatives)."""
    pending = sorted(interactions, key=lambda i: (i.size, i.created_at), reverse=True)
    covered: set[str] = set()
    for last in pending:
        if last.id in covered:
            continue
        by_answer = {_interaction_key(i): i for i in pending if i.id not in covered}
        messages = [*last.messages, last.answer()]
        turns: list[tuple[int, Interaction]] = []
        for index, message in enumerate(last.messages):
            if message.get("role") == "assistant":
                produced = by_answer.get(_answer_key(message))
                if produced is not None and produced.id != last.id:
                    turns.append((index, produced))
        turns.append((len(messages) - 1, last))
        members = [i for _, i in turns]
        covered.update(i.id for i in members)
        targets = []
        for index, i in turns:
            if i.trust not in allowed:
                continue  # failed or unjudged: context, no loss
            if i.trust == "corrected" and i is not last:
                # The conversation continued from the original answer, so the correction gets
                # an example of its own and the turn stays as context here.
                yield _single(i), []
                continue
            targets.append(index)
        negatives = [i for i in members if i.trust == _NEGATIVE]
        if not targets:
            yield None, negatives
            continue
        best = min((TRUST_ORDER.index(i.trust) for index, i in turns if index in targets))
        yield (
            Example(
                id=last.id, workload=last.workload, conversation_id=last.conversation_id,
                messages=messages, tools=last.tools, targets=targets, trust=TRUST_ORDER[best],
                sources=[i.id for i in members], redactions=max(i.redactions for i in members),
                created_at=last.created_at, json_schema=last.json_schema,
            ),
            negatives,
        )  # fmt: skip


def _single(i: Interaction) -> Example:
    messages = [*i.messages, i.answer()]
    return Example(
        id=i.id, workload=i.workload, conversation_id=i.conversation_id, messages=messages,
        tools=i.tools, targets=[len(messages) - 1], trust=i.trust, sources=[i.id],
        redactions=i.redactions, created_at=i.created_at, json_schema=i.json_schema,
    )  # fmt: skip
