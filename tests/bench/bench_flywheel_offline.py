"""Day two of the flywheel without the client: a check of a trained version in a minute or two
instead of the full benchmark's ~25 minutes. `loragate bench flywheel_offline` runs this file.

    python tests/bench/bench_flywheel_offline.py HOME [MODEL ...] [--day-two N] [--json FILE]

HOME is a gateway home holding a recorded day one (`bench flywheel --record`, or the `--work`
folder's `home` of a run). The first request the Continue CLI sent there that offered tools
gives cn's system prompt and tool schemas; each day-two task is put in its user turn, as cn
sends a new task, and answered greedily in llama.cpp as evaluation answers (the serving
template and call grammar of the GGUF). MODEL is a version registered in HOME (`model@vN`) or
a GGUF file; by default every registered version. Prints, per model, the figures `bench
flywheel` prints for day two (Wilson 95 % intervals), full calls by kind, and every miss.

On the recorded day these answers repeated the full benchmark's misses through cn one for
one; cn's own part (its prompts, streaming, stopping a rambling step) is the full run's to
check, and the full run gives the figures to report.
"""

from __future__ import annotations

import argparse
import copy
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.bench_flywheel import (
    TARGETS,
    Scores,
    Step,
    _step_row,
    first_task,
    models,
    print_rates,
)
from tests.support.flywheel_tasks import DAY_TWO, Task, take
from trainer.evaluation.items import Item
from trainer.evaluation.suites import answer_all


def client_request(home: Path) -> dict[str, Any]:
    """The first recorded request that offers tools and asks a first task (nothing answered
    yet): the client's system prompt, tools and message layout."""
    with sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT request FROM interactions ORDER BY created_at")
        for (text,) in rows:
            request = json.loads(text)
            if request.get("tools") and first_task(request.get("messages") or []) is not None:
                return request
    raise SystemExit(f"{home}: no recorded request offers tools (record a day one first)")


def as_asked(request: dict[str, Any], task: Task) -> list[dict[str, Any]]:
    """The request's messages with `task` in place of its user turn's text."""
    messages = copy.deepcopy(request["messages"])
    last = messages[-1]
    if isinstance(last["content"], list):  # content parts, as cn sends them
        last["content"] = [{"type": "text", "text": task.prompt}]
    else:
        last["content"] = task.prompt
    return messages


def gguf_of(home: Path, model: str) -> Path:
    if model.endswith(".gguf"):
        return Path(model)
    versions = models(home)
    if model not in versions:
        raise SystemExit(f"{model}: not a version in {home} ({', '.join(versions)}) nor a GGUF")
    return Path(versions[model]["files"]["gguf"]["path"])


def day_two(request: dict[str, Any], gguf: Path, tasks: list[Task], label: str) -> Scores:
    items = [Item(str(k), as_asked(request, task), task.correction(), request["tools"])
             for k, task in enumerate(tasks)]  # fmt: skip
    answers, seconds = answer_all(gguf, items, label=label)
    scores = Scores(label)
    for task, answer, took in zip(tasks, answers, seconds, strict=True):
        calls = [{"name": c.name, "arguments": c.arguments} for c in answer.calls]
        scores.steps.append(Step(task, "", label, answer.text, calls, took))
    return scores


def main(home: Path, names: list[str], n_two: int | None) -> dict[str, Any]:
    request = client_request(home)
    tasks = take(DAY_TWO, n_two)
    result: dict[str, Any] = {"tasks": len(tasks), "targets": TARGETS, "day_two": {}}
    for model in names or list(models(home)):
        scores = day_two(request, gguf_of(home, model), tasks, model)
        missed = [_step_row(s) for s in scores.steps if not s.as_wanted]
        result["day_two"][model] = {**scores.rates(), "by_kind": scores.by_tool(),
                                    "missed": missed}  # fmt: skip
    return result


def _print(result: dict[str, Any]) -> None:
    for model, rates in result["day_two"].items():
        print(f"day two offline on {model} ({result['tasks']} tasks):")
        print_rates(rates)
        for miss in rates["missed"]:
            got = miss["got"][:1] or miss["text"][:60]
            print(f"  missed: {miss['prompt']!r}: wanted {miss['wanted']}, got {got}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path, help="a gateway home with a recorded day one")
    parser.add_argument("models", nargs="*", help="versions (model@vN) or GGUF files [all]")
    parser.add_argument("--day-two", type=int, default=None, help="day-two tasks (all: 58)")
    parser.add_argument("--json", type=Path, help="write the figures and misses here")
    args = parser.parse_args()
    if not (args.home / "store.db").exists():
        parser.error(f"{args.home}: no store.db (a gateway home with a recorded day one)")
    result = main(args.home, args.models, args.day_two)
    _print(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
