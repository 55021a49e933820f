"""Docs Q&A end to end: does training on a project's generated pairs raise the model's answers
to held-out questions about it (files not trained on)?

One run, as a user does it, in a fresh home: `loragate serve` (the embedded default model),
`loragate collect docs PROJECT` (every chunk), `loragate retrain --workload docs
--eval-fraction F` (a share of the files held out whole), then
`loragate eval --version <new> --against <base> --workload docs --suite held-out`. Prints the
pairs kept, the stage times, and token F1 and exact match before and after with the paired sign
test.

    python tests/bench/bench_docs_lift.py [--project tests/fixtures/docs_project] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.cli import loragate_step as run
from tests.support.servers import gateway

FIXTURE = Path(__file__).parents[1] / "fixtures" / "docs_project"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=FIXTURE)
    parser.add_argument("--epochs", help="passed to retrain [its default]")
    parser.add_argument("--eval-fraction", default="0.25",
                        help="share of the files held out [0.25]")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = root / args.project.resolve().name
        shutil.copytree(args.project, project)
        with gateway(root) as server:
            home = server.home
            print(run(home, "collect", "docs", str(project), "--concurrency", "4",
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
        value = "rate" if "rate" in before else "value"
        print(f"held-out {metric} ({entry['n']} questions on files not trained on): "
              f"{before.get(value, 0):.3f} -> {after.get(value, 0):.3f}")  # fmt: skip
    p = entry["paired"]
    print(f"paired: {p['wins']} wins, {p['losses']} losses, {p['ties']} ties, "
          f"p = {p['p_value']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
