"""`loragate dataset build`: the store → a content-addressed training set.

    <home>/datasets/<hash>/train.jsonl      examples to train on (messages, tools, targets)
                           eval.jsonl       held-out examples of the same kinds
                           negatives.jsonl  rejected and failed answers, for evaluation only
                           mlx/train.jsonl  the same data in mlx-lm's chat layout
                           mlx/valid.jsonl
                           manifest.json    counts, token totals, filters, the store query

The hash covers the three data files, so the same records, options and seed always give the
same folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from gateway.errors import EmptyDataset
from gateway.prompts import templates
from gateway.prompts.scripts import SCAFFOLD_PREFIX
from gateway.store import Store
from trainer.data import curate, libcst_scripts, replay
from trainer.data.examples import TRUST_ORDER, Example, Interaction, interaction_from_row, threads

_QUERY = (
    "SELECT id, created_at, workload, conversation_id, request, response_text, tool_calls, "
    "status, redactions FROM interactions{where} ORDER BY created_at"
)


@dataclass
class BuildOptions:
    """What goes into a dataset; every field is recorded in the manifest."""

    workloads: list[str] = field(default_factory=list)  # empty: all
    since: float | None = None
    include_unjudged: bool = False
    seed: int = 0
    eval_fraction: float = 0.1
    replay_fraction: float = 0.10  # of the tokens that carry loss
    no_call_share: float = 0.15  # of a tool-calling workload's examples
    max_redactions: int = 2  # per example; above, the record is dropped
    max_conversation_share: float = 0.25
    max_tool_share: float = 0.5


@dataclass
class Dataset:
    path: Path
    manifest: dict[str, Any]

    @property
    def hash(self) -> str:
        return self.manifest["hash"]


def read_interactions(
    store: Store, options: BuildOptions, progress: bool = True
) -> tuple[list[Interaction], dict[str, Any], int]:
    """The interactions of the window with their outcomes and latest correction; also the query
    (for the manifest) and how many were not chats."""
    clauses: list[str] = ["kind <> 'shadow'"]  # never shown to anyone: not a turn to learn
    params: list[Any] = []
    if options.workloads:
        clauses.append(f"workload IN ({', '.join('?' * len(options.workloads))})")
        params.extend(options.workloads)
    if options.since is not None:
        clauses.append("created_at >= ?")
        params.append(options.since)
    sql = _QUERY.format(where=" WHERE " + " AND ".join(clauses))
    outcomes: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for iid, kind, value in store.query("SELECT interaction_id, kind, value FROM outcomes"):
        if kind != "comment":
            outcomes[iid].append((kind, value))
    corrections = {
        iid: content
        for iid, content in store.query(
            "SELECT interaction_id, content FROM corrections ORDER BY created_at, id"
        )
    }
    rows = store.query(sql, params)
    found: list[Interaction] = []
    not_chat = 0
    for row in tqdm(rows, desc="reading", unit=" records", disable=not progress, leave=False):
        interaction = interaction_from_row(
            row, outcomes.get(row["id"], []), corrections.get(row["id"])
        )
        if interaction is None:
            not_chat += 1
        else:
            found.append(interaction)
    return found, {"sql": sql, "params": params}, not_chat


def build(
    store: Store,
    home: Path,
    options: BuildOptions,
    *,
    count_tokens: Callable[[str], int] | None = None,
    progress: bool = True,
) -> Dataset:
    """Select, filter, mix, split and write a dataset; returns its folder and manifest."""
    started = time.monotonic()
    interactions, query, not_chat = read_interactions(store, options, progress)
    allowed = frozenset(TRUST_ORDER if options.include_unjudged else TRUST_ORDER[:-1])
    examples, negatives = _examples(interactions, allowed)
    filters: dict[str, Any] = {"not_chat": not_chat}
    if not options.include_unjudged:
        filters["unjudged_not_used"] = sum(1 for i in interactions if i.trust == "unjudged")

    kept = _curated(examples, options, filters)
    if not kept:
        raise EmptyDataset(
            f"no trainable examples among {len(interactions)} interactions "
            f"({len(negatives)} negative, {filters.get('unjudged_not_used', 0)} unjudged, "
            f"{len(filters['invalid'])} invalid): judge more answers, or pass --include-unjudged"
        )

    train, evaluation = curate.split(kept, options.eval_fraction, options.seed)
    shipped = replay.load()
    no_call = curate.no_call_examples(kept, shipped, options.no_call_share)
    sizes = TokenSizes(kept + no_call, count_tokens, options.seed)
    mixed = curate.replay_mix(
        train + no_call, shipped, options.replay_fraction, sizes.target, options.seed
    )
    train = train + no_call + mixed
    random.Random(options.seed).shuffle(train)

    files = {
        "train.jsonl": _lines(e.to_json() for e in train),
        "eval.jsonl": _lines(e.to_json() for e in evaluation),
        "negatives.jsonl": _lines(_negative(i) for i in negatives),
    }
    dataset_hash = _content_hash(files)
    manifest = {
        "hash": dataset_hash,
        "created_at": time.time(),
        "options": asdict(options),
        "query": query,
        "counts": _counts(train, evaluation, negatives, no_call, mixed),
        "tokens": _token_counts(sizes, train, evaluation, mixed + no_call),
        "filters": filters,
        "build_seconds": round(time.monotonic() - started, 2),
    }
    files["mlx/train.jsonl"] = _lines(_mlx_lines(train))
    files["mlx/valid.jsonl"] = _lines(_mlx_lines(evaluation))
    files["manifest.json"] = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    path = _write(home / "datasets", dataset_hash, files)
    return Dataset(path, json.loads((path / "manifest.json").read_text(encoding="utf-8")))


def _token_counts(sizes: TokenSizes, train: list[Example], evaluation: list[Example],
                  replayed: list[Example]) -> dict[str, Any]:  # fmt: skip
    return {
        "train": sum(map(sizes.total, train)),
        "train_target": sum(map(sizes.target, train)),
        "eval": sum(map(sizes.total, evaluation)),
        "replay_target": sum(map(sizes.target, replayed)),
        "method": sizes.method,
    }


def _curated(examples: list[Example], options: BuildOptions,
             filters: dict[str, Any]) -> list[Example]:  # fmt: skip
    """The valid examples, with no more redactions than allowed, de-duplicated and capped per
    conversation and per tool; what each filter left out goes into `filters`."""
    invalid = []
    valid = []
    for example in examples:
        reason = curate.problem(example)
        if reason is None:
            valid.append(example)
        else:
            invalid.append({"id": example.id, "problem": reason})
    filters["invalid"] = invalid
    kept = [e for e in valid if e.redactions <= options.max_redactions]
    filters["too_many_redactions"] = len(valid) - len(kept)
    kept, filters["duplicates"] = curate.deduplicate(kept)
    kept, filters["conversation_cap"] = curate.cap_share(
        kept, lambda e: e.conversation_id, options.max_conversation_share
    )
    kept, filters["tool_cap"] = curate.cap_share(kept, curate.main_tool, options.max_tool_share)
    return kept


def _content_hash(files: dict[str, str]) -> str:
    """The dataset's name: a hash of its files' names and contents."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def _examples(
    interactions: list[Interaction], allowed: frozenset[str]
) -> tuple[list[Example], list[Interaction]]:
    conversations: dict[str, list[Interaction]] = defaultdict(list)
    for interaction in interactions:
        conversations[interaction.conversation_id or interaction.id].append(interaction)
    examples: list[Example] = []
    negatives: list[Interaction] = []
    for members in conversations.values():
        for example, failed in threads(members, allowed):
            negatives.extend(failed)
            if example is not None:
                examples.append(example)
    examples.sort(key=lambda e: e.created_at)
    return examples, negatives


class TokenSizes:
    """Tokens of an example as the template renders it (`total`) and of its target turns, the
    ones that carry loss (`target`). Counting every example exactly costs more than the rest of
    the build, so a seeded sample of 50 sets the characters-per-token ratio."""

    SAMPLE = 50

    def __init__(
        self, examples: list[Example], count_tokens: Callable[[str], int] | None, seed: int
    ) -> None:
        self.ratio = 3.5  # characters per token, typical for English and code
        self.method = "estimated at 3.5 characters per token"
        self._cache: dict[int, tuple[int, int]] = {}
        self._tools_length: dict[int, int] = {}  # examples of one thread share a tools list
        if count_tokens is None or not examples:
            return
        source = templates.template_source(templates.TOOLS_TEMPLATE)
        sample = random.Random(seed).sample(examples, min(self.SAMPLE, len(examples)))
        texts = [
            templates.render(source, e.messages, e.tools, add_generation_prompt=False)
            for e in sample
        ]
        tokens = sum(count_tokens(t) for t in texts)
        if tokens:
            self.ratio = sum(map(len, texts)) / tokens
            self.method = (
                f"{self.ratio:.2f} characters per token, measured on {len(sample)} examples"
            )

    def _sizes(self, example: Example) -> tuple[int, int]:
        key = id(example)
        if key not in self._cache:
            total, target = _text_lengths(example, self._tools_length)
            self._cache[key] = (round(total / self.ratio), round(target / self.ratio))
        return self._cache[key]

    def total(self, example: Example) -> int:
        return self._sizes(example)[0]

    def target(self, example: Example) -> int:
        return self._sizes(example)[1]


def _text_lengths(example: Example, tools_length: dict[int, int]) -> tuple[int, int]:
    """Characters the template renders for an example, all and in target turns, without
    rendering it."""
    total = target = 0
    for index, message in enumerate(example.messages):
        n = len(message.get("content") or "") + 24
        n += sum(
            len(c["function"]["name"]) + len(str(c["function"]["arguments"])) + 40
            for c in message.get("tool_calls") or []
        )
        total += n
        if index in example.targets:
            target += n
    if example.tools:
        key = id(example.tools)
        if key not in tools_length:
            tools_length[key] = 420 + sum(len(json.dumps(t)) + 1 for t in example.tools)
        total += tools_length[key]
    return total, target


def _counts(
    train: list[Example],
    evaluation: list[Example],
    negatives: list[Interaction],
    no_call: list[Example],
    mixed: list[Example],
) -> dict[str, Any]:
    per_workload: dict[str, Counter[str]] = defaultdict(Counter)
    per_tool: Counter[str] = Counter()
    per_trust: Counter[str] = Counter()
    for side, examples in (("train", train), ("eval", evaluation)):
        for example in examples:
            per_workload[example.workload][side] += 1
            per_trust[example.trust] += 1
            for name in example.target_tools():
                per_tool[name or "(text)"] += 1
    for interaction in negatives:
        per_workload[interaction.workload]["negatives"] += 1
    repairs: Counter[str] = Counter()
    for example in train + evaluation:
        if example.workload == libcst_scripts.WORKLOAD:
            repairs["repair_pairs"] += any(
                libcst_scripts.is_repair(example.messages, t) for t in example.targets
            )
            repairs["scaffolding"] += example.id.startswith(SCAFFOLD_PREFIX)
    return {
        "train": len(train),
        "eval": len(evaluation),
        "negatives": len(negatives),
        "replay": len(mixed),
        "no_call_added": len(no_call),
        "per_workload": {w: dict(c) for w, c in sorted(per_workload.items())},
        **({"libcst": dict(repairs)} if repairs else {}),
        "per_tool": dict(per_tool.most_common()),
        "per_trust": dict(per_trust.most_common()),
    }


def _negative(i: Interaction) -> dict[str, Any]:
    return {
        "id": i.id, "workload": i.workload, "messages": i.messages, "tools": i.tools,
        "rejected": i.answer(), "outcomes": [list(o) for o in i.outcomes], "status": i.status,
    }  # fmt: skip


def _mlx_lines(examples: list[Example]) -> Iterable[dict[str, Any]]:
    """mlx-lm's chat layout trains on the last message (`mask_prompt`), so an example with
    several target turns becomes one line per target, cut after it."""
    source = templates.template_source(templates.TOOLS_TEMPLATE)
    for example in examples:
        for index in example.targets:
            messages, tools, _ = templates.prepare(
                source, example.messages[: index + 1], example.tools, written=[index]
            )
            line: dict[str, Any] = {"messages": messages}
            if tools:
                line["tools"] = tools
            yield line


def _lines(records: Iterable[dict[str, Any]]) -> str:
    return b"".join(orjson.dumps(r) + b"\n" for r in records).decode()


def _write(root: Path, dataset_hash: str, files: dict[str, str]) -> Path:
    """Write into a temporary folder and rename it into place: a dataset folder is complete or
    absent, and building the same data twice reuses it."""
    final = root / dataset_hash
    if final.exists():
        return final  # the same data: the folder is already complete
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dataset_hash}-", dir=root))
    try:
        for name, text in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def gguf_token_counter(model_path: Path) -> Callable[[str], int]:
    """Counts tokens with the vocabulary of a GGUF model (loads in ~0.1 s, no weights), loaded
    at the first count."""
    vocab: list[Any] = []

    def count(text: str) -> int:
        if not vocab:
            from llama_cpp import Llama
            from llama_cpp._utils import suppress_stdout_stderr

            with suppress_stdout_stderr(disable=False):
                vocab.append(Llama(str(model_path), vocab_only=True, verbose=False))
        return len(vocab[0].tokenize(text.encode(), add_bos=False, special=True))

    return count


def summary(dataset: Dataset) -> str:
    m = dataset.manifest
    c, f, t = m["counts"], m["filters"], m["tokens"]
    lines = [
        f"dataset {m['hash']} at {dataset.path}",
        f"  {c['train']} train ({c['replay']} replay, {c['no_call_added']} no-call added), "
        f"{c['eval']} eval, {c['negatives']} negatives; ~{t['train']:,} train tokens, "
        f"~{t['train_target']:,} of them trained on",
        "  by workload: "
        + ", ".join(
            f"{w} {v.get('train', 0)}/{v.get('eval', 0)}" for w, v in c["per_workload"].items()
        ),
        f"  dropped: {len(f['invalid'])} invalid, {f['duplicates']} duplicates, "
        f"{f['too_many_redactions']} over the redaction limit, "
        f"{f['conversation_cap'] + f['tool_cap']} over a share cap",
    ]
    lines += [f"  invalid {bad['id']}: {bad['problem']}" for bad in f["invalid"][:20]]
    return "\n".join(lines)
