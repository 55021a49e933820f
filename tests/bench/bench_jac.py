"""Jac MTLLM end to end: does training on a Jac corpus's call sites make the model answer `by llm()`
calls in other files with values of the declared type?

One run, as a user does it, in a fresh home with the real client (`jac` from jaclang 0.7.18 +
mtllm 0.3.2):
1. `loragate serve` (the embedded default model; its engine keeps MTLLM answers to the declared
   type) and `loragate collect jac CORPUS` (checked values, else the served model's answers);
2. `loragate retrain --workload jac --eval-fraction F` (a share of the files held out whole);
3. `loragate eval --version <new> --against <base> --workload jac`: parse rate, type
   correctness and field match on the held-out call sites, with Wilson intervals;
4. the held-out Jac programs run with `jac run` against a gateway that does not constrain
   answers (`LORAGATE_CONSTRAIN_TYPES=0`: the model's own ability), once with the base and once
   with the new version: the share of their first asks whose answer has the declared type (the
   gateway judges each one), and how many calls raised in the program; then once more with
   each behind the constraining gateway, as users get them by default.

    python tests/bench/bench_jac.py [--corpus DIR] [--epochs N] [--recipe F] [--no-programs]
        [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gateway.generation import GenerationRequest
from gateway.prompts import mtllm
from tests.support.cli import bench_folder, with_interval
from tests.support.cli import loragate_step as run
from tests.support.jac import jac_cli, jac_run
from tests.support.servers import gateway

CORPUS = Path(__file__).parents[1] / "fixtures" / "jac" / "corpus"


def held_out_files(home: Path, corpus: Path) -> list[Path]:
    """The corpus files whose call sites the dataset held out (a file is a conversation:
    `jac:<project>:<file>`)."""
    [eval_file] = sorted((home / "datasets").glob("*/eval.jsonl"),
                         key=lambda p: p.stat().st_mtime)[-1:]  # fmt: skip
    rows = map(json.loads, eval_file.read_text().splitlines())
    files = {r["conversation_id"].split(":", 2)[2] for r in rows if r["workload"] == "jac"}
    return [corpus / f for f in sorted(files)]


def programs(home: Path, url: str, files: list[Path], version: str) -> tuple[int, int, int, int]:
    """Run the programs with `version`; (asks of the declared type, asks, calls that raised,
    calls)."""
    since = time.time()
    raised = calls = 0
    for program in files:
        done = jac_run(program, url + "/v1", version)
        raised += sum(line.startswith("failed:") for line in done.stdout.splitlines())
        calls += program.read_text().count("try {")  # each call is wrapped in one
        if done.returncode:
            print(f"    {program.name} exited {done.returncode}: {done.stderr[-300:]}")
    time.sleep(1.5)  # the recorder's batch
    db = sqlite3.connect(home / "store.db")
    rows = db.execute(
        "SELECT i.request, o.value FROM interactions i JOIN outcomes o ON o.interaction_id = "
        "i.id WHERE o.kind = 'type_valid' AND i.version = ? AND i.created_at >= ?",
        (version, since),
    ).fetchall()
    db.close()
    asks = [value for request, value in rows if _is_ask(request)]  # not MTLLM's follow-ups
    return int(sum(asks)), len(asks), raised, calls


def _is_ask(request: str) -> bool:
    call = mtllm.read_call(GenerationRequest.model_validate_json(request))
    return call is not None and call.kind == "ask"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--epochs", help="passed to retrain [its default]")
    parser.add_argument("--eval-fraction", default="0.25")
    parser.add_argument("--recipe", type=Path, help="passed to retrain: a TOML recipe file")
    parser.add_argument("--no-programs", dest="programs", action="store_false",
                        help="stop after `loragate eval` (to compare recipes quickly)")  # fmt: skip
    parser.add_argument("--workdir", type=Path,
                        help="an empty folder for the corpus and the home, kept afterwards "
                             "[a temporary one]")  # fmt: skip
    args = parser.parse_args()
    jac_cli()
    with bench_folder(args.workdir) as root:
        corpus = root / "corpus"
        shutil.copytree(args.corpus, corpus)
        with gateway(root) as server:
            home = server.home
            print(run(home, "collect", "jac", str(corpus), "--timeout", "600").strip())
        flags = ["--epochs", args.epochs] if args.epochs else []
        flags += ["--recipe", str(args.recipe.resolve())] if args.recipe else []
        retrain = ["retrain", "--workload", "jac", "--no-gate", "--eval-fraction",
                   args.eval_fraction, *flags]  # fmt: skip
        print(run(home, *retrain))
        versions = json.loads(run(home, "models", "--json"))
        base, new = versions[0]["name"], versions[-1]["name"]
        report = json.loads(run(home, "eval", "--version", new, "--against", base,
                                "--workload", "jac", "--suite", "held-out", "--json"))  # fmt: skip
        files = held_out_files(home, corpus)
        entry = report["suites"]["held-out"]
        print(f"held-out: {entry['n']} call sites in {len(files)} files not trained on "
              f"({', '.join(f.name for f in files)})")  # fmt: skip
        for metric in ("jac_parse_rate", "jac_type_correct_rate", "jac_field_match"):
            before, after = entry[base].get(metric, {}), entry[new].get(metric, {})
            print(f"  loragate eval {metric}: {with_interval(before)} -> {with_interval(after)}")
        if not args.programs:
            return
        with gateway(root, env={"LORAGATE_CONSTRAIN_TYPES": "0"}) as server:
            for version in (base, new):
                ran = programs(home, server.url, files, version)
                print(f"  jac run, unconstrained, {version}: {_ran(*ran)}")
        with gateway(root) as server:
            for version in (base, new):
                ran = programs(home, server.url, files, version)
                print(f"  jac run, constrained (the default), {version}: {_ran(*ran)}")


def _ran(typed: int, asks: int, raised: int, calls: int) -> str:
    return (f"{typed}/{asks} first asks of the declared type ({typed / max(asks, 1):.3f}); "
            f"{raised}/{calls} calls raised")  # fmt: skip


if __name__ == "__main__":
    main()
