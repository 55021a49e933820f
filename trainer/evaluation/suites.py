"""`loragate eval`: a model version answers fixed items; each answer is scored; rates come
with Wilson 95 % intervals, and two versions are compared on the same items, paired.

Suites:
- `held-out`: the eval split of the version's training dataset (else the newest dataset built):
  each example's last target turn is the reference, the conversation before it the prompt.
- `general`: `evalsets/general.jsonl`, shipped and never trained on (chat, instructions, tools
  unrelated to the user's, including turns where no call is right): it catches forgetting.
With `--judge MODEL`, a model on an OpenAI-compatible endpoint (this gateway by default) also
says whether each text answer is right given the reference (`judge_accuracy`).
Items with tools are scored as calls (`scoring.py`), items with a response schema as
structured output, the rest as text (exact match, token F1). An item is *right* when its call
is wholly right, its output is schema-valid with every field right, or its token F1 is ≥ 0.5;
pairs of versions are compared on that, with an exact sign test on the items only one got,
and on the scores themselves (items one version scored higher than the other).
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
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import EvalError
from gateway.generation import Assembled, GenerationRequest
from gateway.store import Store
from gateway.versions.registry import Registry, Version
from trainer.evaluation.categories import CATEGORIES
from trainer.evaluation.items import Item, budget, items_hash, prefix_order, suite_items
from trainer.evaluation.judge import Judge, judged
from trainer.evaluation.scoring import right_rate, score_items
from trainer.evaluation.stats import paired
from trainer.progress import to_stderr

SEED_TARGETS = {"name_accuracy": 0.95, "json_parse_rate": 0.99, "full_call_accuracy": 0.90}


def answer_all(
    gguf: Path, items: list[Item], *, label: str = "", say: Callable[[str], None] | None = None
) -> tuple[list[Assembled], list[float]]:
    """Greedy answers from the GGUF in llama.cpp, in `items`' order (answered in prefix order),
    with a status line (rate, ETA), and the seconds each answer took."""
    from gateway.backends.llamacpp import LlamaCppBackend

    say = say or to_stderr
    engine = LlamaCppBackend(gguf, n_ctx=4096, n_threads=None, n_batch=256, cache_mb=64)

    seconds: dict[int, float] = {}

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
                asked = time.monotonic()
                async for event in engine.generate(request):
                    answer.add(event)
                seconds[index] = time.monotonic() - asked
                rate = done / (time.monotonic() - started)
                if done % 10 == 0 or done == len(items):
                    say(f"  {label or gguf.name}: {done}/{len(items)} answered, {rate:.1f}/s, "
                        f"ETA {(len(items) - done) / rate:.0f} s")  # fmt: skip
        finally:
            await engine.close()
        return [answers[i] for i in range(len(items))]

    answers = asyncio.run(run())
    return answers, [seconds[i] for i in range(len(items))]


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
    worker: Executor | None = None, category: Callable[[Item], str] | None = None,
) -> SuiteRun:  # fmt: skip
    """Answer and score one suite with the GGUF (not stored: see `store_run`), in `worker`
    when given (`fresh_process`); with `category`, right rate and answer time per category."""
    label = f"{name} {suite}"
    answers, seconds = (worker.submit(answer_all, gguf, items, label=label).result() if worker
                        else answer_all(gguf, items, label=label, say=say))  # fmt: skip
    metrics, scores = score_items(items, answers)
    metrics["seconds"] = {"value": sum(seconds) / max(len(seconds), 1), "n": len(seconds)}
    if category is not None:
        metrics["by_category"] = by_category([category(i) for i in items], scores, seconds)
    if judge is not None and (accuracy := judged(items, answers, judge)) is not None:
        metrics["judge_accuracy"] = accuracy
    return SuiteRun(name, suite, items_hash(items), metrics, scores, [i.id for i in items])


def by_category(
    categories: list[str], scores: list[float], seconds: list[float]
) -> dict[str, dict[str, float]]:
    """Per category: items, right rate, mean seconds per answer."""
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(categories)):
        mine = [i for i, c in enumerate(categories) if c == name]
        out[name] = {"n": len(mine), "right": right_rate([scores[i] for i in mine]),
                     "seconds": sum(seconds[i] for i in mine) / len(mine)}  # fmt: skip
    return out


def evaluate(
    registry: Registry, version: Version, suite: str, items: list[Item],
    *, judge: Judge | None = None, say: Callable[[str], None] | None = None,
    category: Callable[[Item], str] | None = None,
) -> SuiteRun:  # fmt: skip
    """Answer and score one suite, store the run, and return it."""
    run = run_suite(version.name, version.gguf, suite, items, judge=judge, say=say,
                    category=category)  # fmt: skip
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
        category = CATEGORIES.get(workload or "") if suite == "held-out" else None
        mine = evaluate(registry, version, suite, items, judge=judge, say=say,
                        category=category)  # fmt: skip
        entry: dict[str, Any] = {"n": len(items), "items_hash": mine.items_hash,
                                 version.name: mine.metrics}  # fmt: skip
        if against is not None:
            earlier = stored_run(registry.store, against.name, suite, mine.items_hash)
            # reused unless a judge must see the answers or the run lacks the categories
            if (earlier is not None and judge is None
                    and (category is None or "by_category" in earlier.metrics)):  # fmt: skip
                (say or to_stderr)(f"  {against.name} {suite}: its earlier run on these items")
                theirs = earlier
            else:
                theirs = evaluate(registry, against, suite, items, judge=judge, say=say,
                                  category=category)  # fmt: skip
            entry[against.name] = theirs.metrics
            entry["paired"] = paired(mine.scores, theirs.scores)
        report["suites"][suite] = entry
    return report


def render(report: dict[str, Any]) -> str:
    lines = []
    names = [report["version"], *([report["against"]] if report["against"] else [])]
    for suite, entry in report["suites"].items():
        lines.append(f"{suite} ({entry['n']} items)")
        metrics = sorted({m for name in names for m in entry[name]} - {"by_category"})
        lines.append(f"  {'METRIC':<30}" + "".join(f"{name:>34}" for name in names))
        for metric in metrics:
            cells = []
            for name in names:
                value = entry[name].get(metric)
                if value is None:
                    cells.append(f"{'-':>34}")
                else:
                    number = value["rate"] if "rate" in value else value["value"]
                    low, high = value.get("interval", (None, None))
                    spread = f" ({low:.3f}-{high:.3f})" if low is not None else ""
                    cells.append(f"{number:.3f}{spread} n={value['n']}".rjust(34))
            target = SEED_TARGETS.get(metric)
            label = f"{metric} (target > {target:.0%})" if target else metric
            lines.append(f"  {label:<30}" + "".join(cells))
        lines += _category_lines(entry, names)
        if "paired" in entry:
            p = entry["paired"]
            verdict = "significant" if p["significant"] else "not significant"
            lines.append(f"  paired: {p['wins']} wins, {p['losses']} losses, {p['ties']} ties; "
                         f"difference {p['difference'] * 100:+.1f} points, p = {p['p_value']:.3f}"
                         f" ({verdict})")  # fmt: skip
            if _graded(p):
                s = p["scores"]
                verdict = "significant" if s["significant"] else "not significant"
                lines.append(f"  paired on each item's score: {s['higher']} higher, {s['lower']} "
                             f"lower, {s['equal']} equal; mean {s['mean_difference']:+.3f}, "
                             f"p = {s['p_value']:.3f} ({verdict})")  # fmt: skip
    lines += [f"{suite}: skipped: {why}" for suite, why in report.get("skipped", {}).items()]
    return "\n".join(lines)


def _graded(paired: dict[str, Any]) -> bool:
    """Whether the scores moved in a way being right or not does not show."""
    scores = paired.get("scores")
    return scores is not None and (scores["higher"], scores["lower"]) != (
        paired["wins"], paired["losses"])  # fmt: skip


def _category_lines(entry: dict[str, Any], names: list[str]) -> list[str]:
    """Right rate and seconds per answer, per category, side by side."""
    tables = [entry[name].get("by_category") or {} for name in names]
    categories = sorted({c for table in tables for c in table})
    if not categories:
        return []
    lines = [f"  {'CATEGORY':<30}" + "".join(f"{name:>34}" for name in names)]
    for category in categories:
        cells = []
        for table in tables:
            row = table.get(category)
            cell = (f"right {row['right']:.3f}, {row['seconds']:.2f} s n={row['n']}" if row
                    else "-")  # fmt: skip
            cells.append(cell.rjust(34))
        lines.append(f"  {category:<30}" + "".join(cells))
    return lines
