"""The filters between raw examples and a training set: validation, de-duplication, redaction
limits, share caps, no-call examples, the replay mix and the train/eval split.

Each filter returns what it kept and reports what it dropped, so the manifest can say exactly
what happened to every record.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from gateway.errors import InvalidCorrection
from gateway.recording.corrections import Correction
from gateway.recording.redact import MARK
from trainer.data import libcst_scripts
from trainer.data.examples import TRUST_ORDER, Example

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def problem(example: Example) -> str | None:
    """Why a target turn is unfit to learn from, or None. Like the Continue seed's checks:
    JSON errors, unknown tool names, missing required arguments, schema violations; a LibCST
    script that does not parse or defines no transformer; and a target that would teach the
    model to write `[REDACTED]`."""
    for index in example.targets:
        message = example.messages[index]
        if MARK in (message.get("content") or ""):
            return f"turn {index}: the answer contains a redacted secret"
        if example.workload == libcst_scripts.WORKLOAD and not message.get("tool_calls"):
            reason = libcst_scripts.script_problem(message.get("content") or "")
            if reason is not None:
                return f"turn {index}: {reason}"
        if not message.get("tool_calls"):
            continue
        try:  # the checks a correction gets at `/v1/feedback`
            calls = Correction.from_message(message)
            calls.check(example.tools, None)
        except InvalidCorrection as exc:
            return f"turn {index}: {exc.message}"
        for call in calls.calls:
            if MARK in call.arguments:
                return f"turn {index}: arguments of {call.name} contain a redacted secret"
    return None


def _prompt_key(example: Example) -> tuple[Any, ...]:
    asked = " | ".join(
        _NOT_WORD.sub(" ", (m.get("content") or "").lower()).strip()
        for m in example.messages
        if m.get("role") == "user"
    )
    tools = tuple(sorted(t["function"]["name"] for t in example.tools))
    return example.workload, asked, tools


def deduplicate(examples: list[Example]) -> tuple[list[Example], int]:
    """One example per near-identical prompt (case, punctuation and spacing ignored): the most
    trusted, then the newest."""
    best: dict[tuple[Any, ...], Example] = {}
    for example in examples:
        key = _prompt_key(example)
        kept = best.get(key)
        if kept is None or _rank(example) < _rank(kept):
            best[key] = example
    kept_ids = {id(e) for e in best.values()}
    return [e for e in examples if id(e) in kept_ids], len(examples) - len(best)


def _rank(example: Example) -> tuple[int, float]:
    trust = TRUST_ORDER.index(example.trust) if example.trust in TRUST_ORDER else len(TRUST_ORDER)
    return trust, -example.created_at


def cap_share(
    examples: list[Example], key: Callable[[Example], str | None], share: float
) -> tuple[list[Example], int]:
    """Drop the least trusted, oldest examples of any key (a conversation, a tool) holding more
    than `share` of the examples; a key is never cut below the next most common one, and the
    only key there is (every call to one tool, one conversation) is not cut at all: there is
    nothing to balance it against."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        k = key(example)
        if k is not None:
            groups[k].append(example)
    dropped: set[int] = set()
    total = len(examples)
    while groups:
        ordered = sorted(groups.values(), key=len, reverse=True)
        if len(ordered) < 2:
            break
        top = ordered[0]
        allowed = max(math.floor(share * total), len(ordered[1]))
        if len(top) <= allowed:
            break
        top.sort(key=_rank)  # most trusted and newest first
        excess = top[allowed:]
        del top[allowed:]
        dropped.update(id(e) for e in excess)
        total -= len(excess)
    return [e for e in examples if id(e) not in dropped], len(dropped)


def main_tool(example: Example) -> str | None:
    """The tool of the last target turn, or None for a plain-text answer."""
    names = example.target_tools()
    return names[-1] or None if names else None


def no_call_examples(
    examples: list[Example], replay: list[dict[str, Any]], share: float
) -> list[Example]:
    """Plain-text answers with the workload's own tools and system prompt offered, for every
    tool-calling workload whose examples hold fewer than `share` of them (a LoRA trained on
    calls alone starts calling tools on plain questions)."""
    plain = [r for r in replay if not r["messages"][-1].get("tool_calls")]
    added: list[Example] = []
    by_workload: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        if example.tools:
            by_workload[example.workload].append(example)
    for workload, tool_examples in sorted(by_workload.items()):
        have = sum(1 for e in tool_examples if "" in e.target_tools())
        need = math.ceil(share * len(tool_examples)) - have
        if need <= 0 or not plain:
            continue
        tools = Counter(json.dumps(e.tools, sort_keys=True) for e in tool_examples)
        toolset = json.loads(tools.most_common(1)[0][0])
        systems = Counter(
            e.messages[0]["content"] for e in tool_examples if e.messages[0]["role"] == "system"
        )
        head = [{"role": "system", "content": systems.most_common(1)[0][0]}] if systems else []
        for k in range(need):
            turn = [m for m in plain[k % len(plain)]["messages"] if m["role"] != "system"]
            messages = [*head, *turn]
            added.append(
                Example(
                    id=f"replay-nocall-{workload}-{k}", workload=workload, conversation_id=None,
                    messages=messages, tools=toolset, targets=[len(messages) - 1],
                    trust="replay", sources=[],
                )
            )  # fmt: skip
    return added


def replay_mix(
    examples: list[Example],
    replay: list[dict[str, Any]],
    fraction: float,
    size: Callable[[Example], int],
    seed: int,
    max_passes: int = 3,
) -> list[Example]:
    """Replay examples, in a seeded order, until they are `fraction` of the tokens that carry
    loss (`size`), going through the shipped set at most `max_passes` times."""
    if fraction <= 0 or not replay:
        return []
    own = sum(size(e) for e in examples)
    wanted = own * fraction / (1 - fraction)
    order = sorted(range(len(replay)), key=lambda i: _hash(f"{seed}:replay:{i}"))
    mixed: list[Example] = []
    total = 0
    while total < wanted and len(mixed) < max_passes * len(replay):
        record = replay[order[len(mixed) % len(order)]]
        messages = record["messages"]
        example = Example(
            id=f"replay-{len(mixed)}", workload="replay", conversation_id=None,
            messages=messages, tools=record.get("tools") or [], targets=[len(messages) - 1],
            trust="replay", sources=[],
        )  # fmt: skip
        mixed.append(example)
        total += size(example)
    return mixed


def split(
    examples: list[Example], eval_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Train/eval, stratified by workload and tool, in a seeded order; a conversation is
    always on one side only."""
    group_of = {id(e): e.conversation_id or e.id for e in examples}
    stratum_of: dict[str, tuple[str, str]] = {}
    for example in examples:
        stratum_of.setdefault(group_of[id(example)], (example.workload, main_tool(example) or ""))
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for group, stratum in stratum_of.items():
        strata[stratum].append(group)
    held_out: set[str] = set()
    for groups in strata.values():
        groups.sort(key=lambda g: _hash(f"{seed}:{g}"))
        n = min(math.floor(eval_fraction * len(groups) + 0.5), len(groups) - 1)
        held_out.update(groups[:n])
    train = [e for e in examples if group_of[id(e)] not in held_out]
    evaluation = [e for e in examples if group_of[id(e)] in held_out]
    return train, evaluation


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
