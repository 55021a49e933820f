"""`loragate eval`: a model version answers fixed items; each answer is scored; rates come
with Wilson 95 % intervals, and two versions are compared on the same items, paired.

Suites:
- `held-out`: the eval split of the version's training dataset (else the newest dataset built):
  each example's last target turn is the reference, the conversation before it the prompt.
- `general`: `trainer/evalsets/general.jsonl`, shipped and never trained on (chat, instructions,
  tools unrelated to the user's, including turns where no call is right): it catches forgetting.
With `--judge MODEL`, a model on an OpenAI-compatible endpoint (this gateway by default) also
says whether each text answer is right given the reference (`judge_accuracy`).
Items with tools are scored as calls (`trainer/scoring.py`), items with a response schema as
structured output, the rest as text (exact match, token F1). An item is *right* when its call
is wholly right, its output is schema-valid with every field right, or its token F1 is ≥ 0.5;
pairs of versions are compared on that, with an exact sign test on the items only one got.
Answers are greedy (temperature 0; no seed, so that the shared prefix of agent prompts is reused)
from the version's GGUF in llama.cpp, in prefix order (items with the same tools and system prompt
one after the other, so each reuses the last one's KV cache), each within a budget set by its
reference: twice as many tokens as the reference text has characters, as many as its calls have,
plus 32. A token is at least one character, so an exact call always fits, and so does a text
twice the reference's length, where token F1 stops counting an answer right at three times the
reference's words; answers cut at the budget are scored as cut. Runs are stored in `eval_runs`,
and a version's scores on the same items are computed once and reused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.errors import LoragateError
from gateway.generation import Assembled, GenerationRequest
from gateway.store import Store
from gateway.versions.bandit import wilson
from gateway.versions.registry import Registry, Version
from trainer.scoring import exact_match, score_call, score_structured, token_f1

SUITES = ("held-out", "general")
GENERAL = Path(__file__).parent / "evalsets" / "general.jsonl"
RIGHT = 0.5  # an item's score from which it counts as right
MAX_ANSWER_TOKENS = 1024
# how items are answered: runs stored under another protocol are not reused
PROTOCOL = 2
SEED_TARGETS = {"name_accuracy": 0.95, "json_parse_rate": 0.99, "full_call_accuracy": 0.90}


class EvalError(LoragateError):
    """An evaluation that cannot be run as asked."""


@dataclass(frozen=True)
class Item:
    id: str
    messages: list[dict[str, Any]]  # the prompt
    reference: dict[str, Any]  # the assistant turn expected
    tools: list[dict[str, Any]]
    json_schema: dict[str, Any] | None = None


def _items_from(rows: list[dict[str, Any]]) -> list[Item]:
    items = []
    for i, row in enumerate(rows):
        messages = row["messages"]
        targets = row.get("targets") or [len(messages) - 1]
        last = targets[-1]
        items.append(Item(str(row.get("id", i)), messages[:last], messages[last],
                          row.get("tools") or [], row.get("json_schema")))  # fmt: skip
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


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def budget(item: Item) -> int:
    """The most tokens an answer to `item` is given: twice its reference text's length in
    characters, plus its reference calls' length (an exact call fits: a token is at least one
    character), plus 32."""
    calls = _expected_calls(item.reference)
    text = item.reference.get("content") or ""
    return min(2 * len(text) + (len(json.dumps(calls)) if calls else 0) + 32, MAX_ANSWER_TOKENS)


def prefix_order(items: list[Item]) -> list[int]:
    """Indexes of `items` sorted so that prompts sharing tools and leading turns are adjacent."""
    return sorted(range(len(items)), key=lambda i: json.dumps([items[i].tools, items[i].messages]))


def answer_all(
    gguf: Path, items: list[Item], *, label: str = "", say: Callable[[str], None] | None = None
) -> list[Assembled]:
    """Greedy answers from the GGUF in llama.cpp, in `items`' order (answered in prefix order),
    with a status line (rate, ETA)."""
    from gateway.backends.llamacpp import LlamaCppBackend

    say = say or _stderr
    engine = LlamaCppBackend(gguf, n_ctx=4096, n_threads=None, n_batch=256, cache_mb=64)

    async def run() -> list[Assembled]:
        await engine.start()
        answers: dict[int, Assembled] = {}
        started = time.monotonic()
        try:
            for done, index in enumerate(prefix_order(items), 1):
                item = items[index]
                request = GenerationRequest(
                    model="eval", messages=item.messages, tools=item.tools or None,
                    json_schema=item.json_schema, temperature=0.0, max_tokens=budget(item),
                )  # fmt: skip
                answer = answers[index] = Assembled()
                async for event in engine.generate(request):
                    answer.add(event)
                rate = done / (time.monotonic() - started)
                if done % 10 == 0 or done == len(items):
                    say(f"  {label or gguf.name}: {done}/{len(items)} answered, {rate:.1f}/s, "
                        f"ETA {(len(items) - done) / rate:.0f} s")  # fmt: skip
        finally:
            await engine.close()
        return [answers[i] for i in range(len(items))]

    return asyncio.run(run())


def _expected_calls(reference: dict[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for call in reference.get("tool_calls") or []:
        fn = call.get("function", call)
        arguments = fn.get("arguments")
        calls.append({"name": fn["name"],
                      "arguments": json.loads(arguments) if isinstance(arguments, str)
                      else arguments or {}})  # fmt: skip
    return calls


def score_items(items: list[Item], answers: list[Assembled]) -> tuple[dict[str, Any], list[float]]:
    """Metrics of a suite, each rate with n and its Wilson interval, and each item's score."""
    counts: dict[str, list[int]] = {}  # metric -> [hits, n]
    f1s: list[float] = []
    tp = fp = fn = 0
    per_item: list[float] = []

    def count(metric: str, hit: bool) -> None:
        pair = counts.setdefault(metric, [0, 0])
        pair[0] += int(hit)
        pair[1] += 1

    for item, answer in zip(items, answers, strict=True):
        if item.tools:
            got = [{"name": c.name, "arguments": c.arguments} for c in answer.calls]
            s = score_call(_expected_calls(item.reference), got, item.tools)
            count("name_accuracy", s.name_ok)
            count("full_call_accuracy", s.full_ok)
            count("relevance" if s.call_expected else "irrelevance", s.called == s.call_expected)
            if s.parsed is not None:
                count("json_parse_rate", s.parsed)
                count("schema_valid_rate", bool(s.schema_ok))
            tp, fp, fn = tp + s.arg_tp, fp + s.arg_fp, fn + s.arg_fn
            per_item.append(float(s.full_ok))
        elif item.json_schema is not None:
            st = score_structured(item.reference.get("content") or "", answer.text,
                                  item.json_schema)  # fmt: skip
            count("structured_parse_rate", st.parsed)
            count("structured_schema_valid_rate", st.schema_ok)
            counts.setdefault("field_exact_match", [0, 0])
            counts["field_exact_match"][0] += st.fields_right
            counts["field_exact_match"][1] += st.fields
            per_item.append(float(st.schema_ok and st.fields_right == st.fields))
        else:
            reference = item.reference.get("content") or ""
            count("exact_match", exact_match(reference, answer.text))
            f1s.append(token_f1(reference, answer.text))
            per_item.append(f1s[-1])
    metrics: dict[str, Any] = {}
    for metric, (hits, n) in counts.items():
        low, high = wilson(hits, n)
        metrics[metric] = {"rate": hits / n, "n": n, "interval": [low, high]}
    if tp + fp + fn:
        metrics["argument_f1"] = {"value": 2 * tp / (2 * tp + fp + fn), "n": tp + fp + fn}
    if f1s:
        metrics["token_f1"] = {"value": sum(f1s) / len(f1s), "n": len(f1s)}
    right = sum(score >= RIGHT for score in per_item)
    low, high = wilson(right, len(per_item))
    metrics["right"] = {"rate": right_rate(per_item), "n": len(per_item),
                        "interval": [low, high]}  # fmt: skip
    return metrics, per_item


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of `wins` vs `losses` under no difference."""
    return min(1.0, 2 * one_sided_p(max(wins, losses), min(wins, losses)))


def right_rate(scores: list[float]) -> float:
    return sum(score >= RIGHT for score in scores) / max(len(scores), 1)


def one_sided_p(wins: int, losses: int) -> float:
    """P(at least `wins` of the discordant items favour A) if A and B were alike."""
    n = wins + losses
    return sum(math.comb(n, i) for i in range(wins, n + 1)) / 2**n if n else 1.0


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """`a` against `b` on the same items: wins, losses, ties on being right, and whether the
    difference is significant (sign test, p < 0.05)."""
    wins = sum(x >= RIGHT > y for x, y in zip(a, b, strict=True))
    losses = sum(y >= RIGHT > x for x, y in zip(a, b, strict=True))
    p = sign_test(wins, losses)
    difference = right_rate(a) - right_rate(b)
    return {"wins": wins, "losses": losses, "ties": len(a) - wins - losses,
            "difference": difference, "p_value": p, "significant": p < 0.05}  # fmt: skip


MAX_GENERAL_DROP = 0.02
# All wins on 5 items is p = 0.031: the fewest held-out items that can show a win beyond noise.
MIN_ITEMS_FOR_A_WIN = 5

Verdict = Literal["better", "undecided", "failed"]


def gate(held_out: dict[str, Any], general: tuple[list[float], list[float]]) -> tuple[Verdict, str]:
    """The promotion gate, on the candidate's held-out pairs against the active version and
    both versions' general-set scores. `failed` on evidence of harm (held-out losses beyond
    noise, or more than 2 points of mean general score lost), when the held-out set could
    show a win and shows none, or when a set too small to show one has more losses than
    wins; `better` for a held-out win beyond noise (one-sided sign test, p < 0.05);
    otherwise `undecided`: the version serves as a candidate and live results decide.
    Returns the verdict and its one-line reason."""
    wins, losses, ties = held_out["wins"], held_out["losses"], held_out["ties"]
    n = wins + losses + ties
    p = one_sided_p(wins, losses)
    held = f"held-out: {wins} wins, {losses} losses, {ties} ties (p = {p:.3f})"
    mine, theirs = (sum(s) / max(len(s), 1) for s in general)
    drop = mine - theirs
    general_text = f"general: {mine:.3f} vs {theirs:.3f} ({drop * 100:+.1f} points)"
    if drop < -MAX_GENERAL_DROP:
        lost = f"more than {MAX_GENERAL_DROP * 100:.0f} points lost"
        return "failed", f"failed the gate: {general_text}, {lost}; {held}"
    if one_sided_p(losses, wins) < 0.05:
        return "failed", f"failed the gate: {held}, worse beyond noise; {general_text}"
    if n < MIN_ITEMS_FOR_A_WIN:
        if losses > wins:
            worse = "fewer right than the active version"
            return "failed", f"failed the gate: {held}, {worse}; {general_text}"
        return "undecided", (f"{n} held-out items cannot show a win: serving as a candidate, "
                             f"live results decide ({held}; {general_text})")  # fmt: skip
    if wins <= losses:
        return "failed", f"failed the gate: {held}, no win; {general_text}"
    if p >= 0.05:
        return "undecided", (f"{held}: a win not yet beyond noise: serving as a candidate, "
                             f"live results decide; {general_text}")  # fmt: skip
    return "better", f"passed the gate: {held}; {general_text}"


def stored_run(store: Store, version: str, suite: str, digest: str) -> SuiteRun | None:
    """The newest earlier run of `version` on the same items (same answering protocol)."""
    row = store.one(
        "SELECT metrics, items FROM eval_runs WHERE version = ? AND suite = ? AND items_hash = ? "
        "ORDER BY created_at DESC LIMIT 1",
        (version, suite, digest),
    )
    if row is None:
        return None
    scores = json.loads(row[1])
    return SuiteRun(version, suite, digest, json.loads(row[0]), list(scores.values()),
                    list(scores))  # fmt: skip


_VERDICT = {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["yes", "no"]}},
            "required": ["verdict"]}  # fmt: skip


class Judge:
    """A model that says whether a text answer is right given the reference: any model an
    OpenAI-compatible endpoint serves (this gateway, with a version pinned as `model@vN`, or
    an upstream). Its verdict is constrained to yes/no by a response schema."""

    def __init__(self, model: str, base_url: str, api_key: str | None = None) -> None:
        import openai

        self.model = model
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=1)

    def check(self) -> None:
        """Fail before any answer is generated if the judge's endpoint does not answer."""
        import openai

        try:
            self.client.models.list()
        except openai.OpenAIError as exc:
            raise EvalError(f"the judge {self.model} at {self.client.base_url}: {exc}") from exc

    def __call__(self, item: Item, answer: str) -> bool:
        import openai

        question = next((m.get("content") for m in reversed(item.messages)
                         if m["role"] == "user"), "")  # fmt: skip
        prompt = (
            f"Question: {question}\nReference answer: {item.reference.get('content') or ''}\n"
            f"Answer to judge: {answer}\n\nDoes the answer say what the reference says? "
            'Reply with {"verdict": "yes"} or {"verdict": "no"}.'
        )
        try:
            reply = self.client.chat.completions.create(
                model=self.model, temperature=0, max_tokens=16,
                messages=[{"role": "user", "content": prompt}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "verdict", "schema": _VERDICT}},
            )  # fmt: skip
        except openai.OpenAIError as exc:
            raise EvalError(f"the judge {self.model} at {self.client.base_url}: {exc}") from exc
        try:
            return json.loads(reply.choices[0].message.content or "")["verdict"] == "yes"
        except (json.JSONDecodeError, KeyError, TypeError):
            return False  # an unreadable verdict is not a yes


def judged(items: list[Item], answers: list[Assembled], judge: Judge) -> dict[str, Any] | None:
    """The judge's accuracy on the text items (those without tools or a schema)."""
    verdicts = [judge(item, answer.text) for item, answer in zip(items, answers, strict=True)
                if not item.tools and item.json_schema is None]  # fmt: skip
    if not verdicts:
        return None
    low, high = wilson(sum(verdicts), len(verdicts))
    return {"rate": sum(verdicts) / len(verdicts), "n": len(verdicts), "interval": [low, high]}


@dataclass
class SuiteRun:
    version: str
    suite: str
    items_hash: str
    metrics: dict[str, Any]
    scores: list[float]
    ids: list[str]


def fresh_process() -> Executor:
    """A worker in a fresh interpreter, for answering from a process that has trained with
    torch: torch ships its own `libgomp.so.1`, which llama.cpp then shares, and after torch has
    computed, llama.cpp answers ~60 % slower in that process (the general suite in 50 s instead
    of 31 s on 2 cores). The worker prints its own progress lines to stderr."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def run_suite(
    name: str, gguf: Path, suite: str, items: list[Item],
    *, judge: Judge | None = None, say: Callable[[str], None] | None = None,
    worker: Executor | None = None,
) -> SuiteRun:  # fmt: skip
    """Answer and score one suite with the GGUF (not stored: see `store_run`), in `worker`
    when given (`fresh_process`)."""
    label = f"{name} {suite}"
    answers = (worker.submit(answer_all, gguf, items, label=label).result() if worker
               else answer_all(gguf, items, label=label, say=say))  # fmt: skip
    metrics, scores = score_items(items, answers)
    if judge is not None and (accuracy := judged(items, answers, judge)) is not None:
        metrics["judge_accuracy"] = accuracy
    return SuiteRun(name, suite, items_hash(items), metrics, scores, [i.id for i in items])


def evaluate(
    registry: Registry, version: Version, suite: str, items: list[Item],
    *, judge: Judge | None = None, say: Callable[[str], None] | None = None,
) -> SuiteRun:  # fmt: skip
    """Answer and score one suite, store the run, and return it."""
    run = run_suite(version.name, version.gguf, suite, items, judge=judge, say=say)
    store_run(registry.store, run)
    return run


def store_run(store: Store, run: SuiteRun) -> None:
    scores = json.dumps(dict(zip(run.ids, run.scores, strict=True)))
    store.execute(
        "INSERT INTO eval_runs (id, created_at, version, suite, items_hash, n, metrics, items) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ("ev_" + uuid.uuid4().hex, time.time(), run.version, run.suite, run.items_hash,
         len(run.scores), json.dumps(run.metrics), scores),
    )  # fmt: skip


def compare(
    registry: Registry, version: Version, against: Version | None, suites: list[str],
    *, workload: str | None = None, judge: Judge | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every suite on `version` (and `against`, on the same items), with the paired result;
    held-out items of `workload` only, when given. A suite with no items is skipped, with
    the reason in `skipped`, unless it is the only one asked for."""
    report: dict[str, Any] = {
        "version": version.name, "against": against.name if against else None, "suites": {},
        "skipped": {},
    }  # fmt: skip
    for suite in suites:
        try:
            items = suite_items(registry.home, suite, version, workload)
            if not items:
                raise EvalError(f"no held-out items of the workload {workload!r}")
        except EvalError as exc:
            if len(suites) == 1:
                raise
            report["skipped"][suite] = exc.message
            continue
        mine = evaluate(registry, version, suite, items, judge=judge, say=say)
        entry: dict[str, Any] = {"n": len(items), "items_hash": mine.items_hash,
                                 version.name: mine.metrics}  # fmt: skip
        if against is not None:
            earlier = stored_run(registry.store, against.name, suite, mine.items_hash)
            if earlier is not None and judge is None:
                (say or _stderr)(f"  {against.name} {suite}: its earlier run on these items")
                theirs = earlier
            else:
                theirs = evaluate(registry, against, suite, items, judge=judge, say=say)
            entry[against.name] = theirs.metrics
            entry["paired"] = paired(mine.scores, theirs.scores)
        report["suites"][suite] = entry
    return report


def render(report: dict[str, Any]) -> str:
    lines = []
    names = [report["version"], *([report["against"]] if report["against"] else [])]
    for suite, entry in report["suites"].items():
        lines.append(f"{suite} ({entry['n']} items)")
        metrics = sorted({m for name in names for m in entry[name]})
        lines.append(f"  {'METRIC':<30}" + "".join(f"{name:>34}" for name in names))
        for metric in metrics:
            cells = []
            for name in names:
                value = entry[name].get(metric)
                if value is None:
                    cells.append(f"{'-':>34}")
                elif "rate" in value:
                    low, high = value["interval"]
                    cells.append(f"{value['rate']:.3f} ({low:.3f}-{high:.3f}) n={value['n']}"
                                 .rjust(34))  # fmt: skip
                else:
                    cells.append(f"{value['value']:.3f} n={value['n']}".rjust(34))
            target = SEED_TARGETS.get(metric)
            label = f"{metric} (target > {target:.0%})" if target else metric
            lines.append(f"  {label:<30}" + "".join(cells))
        if "paired" in entry:
            p = entry["paired"]
            verdict = "significant" if p["significant"] else "not significant"
            lines.append(f"  paired: {p['wins']} wins, {p['losses']} losses, {p['ties']} ties; "
                         f"difference {p['difference'] * 100:+.1f} points, p = {p['p_value']:.3f}"
                         f" ({verdict})")  # fmt: skip
    lines += [f"{suite}: skipped: {why}" for suite, why in report.get("skipped", {}).items()]
    return "\n".join(lines)
