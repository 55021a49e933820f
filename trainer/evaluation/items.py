"""Evaluation items: the shipped general set and a dataset's held-out split, as prompts with
the reference answer, and the token budget each answer gets."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import EvalError
from gateway.versions.registry import Version

SUITES = ("held-out", "general")
GENERAL = Path(__file__).parent / "evalsets" / "general.jsonl"
MAX_ANSWER_TOKENS = 1024
# how items are answered: runs stored under another protocol are not reused
PROTOCOL = 2


@dataclass(frozen=True)
class Item:
    id: str
    messages: list[dict[str, Any]]  # the prompt
    reference: dict[str, Any]  # the assistant turn expected
    tools: list[dict[str, Any]]
    json_schema: dict[str, Any] | None = None
    workload: str = ""


def _items_from(rows: list[dict[str, Any]]) -> list[Item]:
    items = []
    for i, row in enumerate(rows):
        messages = row["messages"]
        targets = row.get("targets") or [len(messages) - 1]
        last = targets[-1]
        items.append(Item(str(row.get("id", i)), messages[:last], messages[last],
                          row.get("tools") or [], row.get("json_schema"),
                          row.get("workload") or ""))  # fmt: skip
    return items


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def suite_items(
    home: Path, suite: str, version: Version | None, workload: str | None = None
) -> list[Item]:
    dataset_hash = version.dataset_hash if version is not None else None
    return items_of(home, suite, dataset_hash, workload)


def items_of(
    home: Path, suite: str, dataset_hash: str | None, workload: str | None = None
) -> list[Item]:
    """The suite's items; held-out ones from the dataset `dataset_hash` (else the newest),
    of one workload when `workload` is given."""
    if suite == "general":
        return _items_from(_read(GENERAL))
    folder = home / "datasets" / dataset_hash if dataset_hash else None
    if folder is None or not folder.exists():
        built = sorted((home / "datasets").glob("*/eval.jsonl"), key=lambda p: p.stat().st_mtime)
        if not built:
            raise EvalError("no held-out data: build a dataset first (`loragate dataset build`)")
        folder = built[-1].parent
    rows = _read(folder / "eval.jsonl")
    return _items_from([r for r in rows if workload is None or r.get("workload") == workload])


def items_hash(items: list[Item]) -> str:
    text = json.dumps([PROTOCOL, [(i.id, i.messages, i.reference) for i in items]],
                      sort_keys=True)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def budget(item: Item) -> int:
    """The most tokens an answer to `item` is given: twice its reference text's length in
    characters, plus its reference calls' length (an exact call fits: a token is at least one
    character), plus 32."""
    calls = expected_calls(item.reference)
    text = item.reference.get("content") or ""
    return min(2 * len(text) + (len(json.dumps(calls)) if calls else 0) + 32, MAX_ANSWER_TOKENS)


def prefix_order(items: list[Item]) -> list[int]:
    """Indexes of `items` sorted so that prompts sharing tools and leading turns are adjacent."""
    return sorted(range(len(items)), key=lambda i: json.dumps([items[i].tools, items[i].messages]))


def expected_calls(reference: dict[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for call in reference.get("tool_calls") or []:
        fn = call.get("function", call)
        arguments = fn.get("arguments")
        calls.append({"name": fn["name"],
                      "arguments": json.loads(arguments) if isinstance(arguments, str)
                      else arguments or {}})  # fmt: skip
    return calls
