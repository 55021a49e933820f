"""Docs Q&A end to end: does training on a project's generated pairs raise the model's answers
to held-out questions about it (files not trained on)?

One run, as a user does it, in a fresh home: `loragate serve` (the embedded default model),
`loragate collect docs PROJECT` (every chunk), `loragate retrain --workload docs
--eval-fraction F` (a share of the files held out whole), then
`loragate eval --version <new> --against <base> --workload docs --suite held-out`. Prints the
pairs kept, the stage times, and token F1 and exact match before and after with the paired sign
tests (on being right, and on each question's token F1).

    python tests/bench/bench_docs_lift.py [--project DIR ...] [--epochs N] [--eval-fraction F]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.cli import bench_folder, with_interval
from tests.support.cli import loragate_step as run
from tests.support.servers import gateway

FIXTURES = [Path(__file__).parents[1] / "fixtures" / name
            for name in ("docs_project", "docs_pagemill")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, action="append",
                        help="a project folder; repeat for several [both fixtures]")  # fmt: skip
    parser.add_argument("--epochs", help="passed to retrain [its default]")
    parser.add_argument("--eval-fraction", default="0.25",
                        help="share of the files held out [0.25]")  # fmt: skip
    parser.add_argument("--workdir", type=Path,
                        help="an empty folder for the projects and the home, kept afterwards "
                             "to read the pairs and answers [a temporary one]")  # fmt: skip
    args = parser.parse_args()
    with bench_folder(args.workdir) as root:
        projects = []
        for source in args.project or FIXTURES:
            projects.append(str(root / source.resolve().name))
            shutil.copytree(source, projects[-1])
        with gateway(root) as server:
            home = server.home
            print(run(home, "collect", "docs", *projects, "--concurrency", "4",
                      "--timeout", "600").strip())  # fmt: skip
            retrain = ["retrain", "--workload", "docs", "--no-gate", "--eval-fraction",
                       args.eval_fraction]  # fmt: skip
            print(run(home, *retrain, *(["--epochs", args.epochs] if args.epochs else [])))
        versions = json.loads(run(home, "models", "--json"))
        base, new = versions[0]["name"], versions[-1]["name"]
        report = json.loads(run(home, "eval", "--version", new, "--against", base,
                                "--workload", "docs", "--suite", "held-out", "--json"))  # fmt: skip
    entry = report["suites"]["held-out"]
    for metric in ("token_f1", "exact_match"):
        before, after = entry[base].get(metric, {}), entry[new].get(metric, {})
        print(f"held-out {metric} ({entry['n']} questions on files not trained on): "
              f"{with_interval(before)} -> {with_interval(after)}")  # fmt: skip
    p = entry["paired"]
    print(f"paired on being right (F1 >= 0.5): {p['wins']} wins, {p['losses']} losses, "
          f"{p['ties']} ties, p = {p['p_value']:.3f}")  # fmt: skip
    s = p["scores"]
    verdict = "significant" if s["significant"] else "not significant"
    print(f"paired on token F1: {s['higher']} higher, {s['lower']} lower, {s['equal']} equal, "
          f"p = {s['p_value']:.3f} ({verdict})")  # fmt: skip


if __name__ == "__main__":
    main()
