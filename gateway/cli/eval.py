"""`loragate eval`: a version scored on the held-out and general suites, paired."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway.cli.common import (
    add_command,
    gateway_url,
    registry_of,
    settings_of,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "eval", help="score a model version on the held-out and general suites, paired"
    )
    p.add_argument("--version", required=True, help="the version to evaluate (<model>@vN)")
    p.add_argument("--against", help="compare with this version on the same items "
                   "(its stored run on them is reused)")  # fmt: skip
    p.add_argument("--workload", help="held-out items of this workload only [all]")
    p.add_argument("--judge", metavar="MODEL",
                   help="also have MODEL judge text answers against the reference")  # fmt: skip
    p.add_argument("--judge-url", dest="judge_url", metavar="URL",
                   help="OpenAI-compatible endpoint of the judge [this gateway's /v1]")  # fmt: skip
    p.add_argument("--suite", choices=("held-out", "general", "all"), default="all",
                   help="which suites [all: one with no items is skipped, said so]")  # fmt: skip
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw the comparison (per category for jessy, per suite)")  # fmt: skip
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> None:
    from trainer.evaluation import SUITES, compare, render

    registry, _ = registry_of(args)
    version = registry.get(args.version)
    against = registry.get(args.against) if args.against else None
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    judge = None
    if args.judge:
        from trainer.evaluation import Judge

        settings = settings_of(args)
        url = args.judge_url or f"{gateway_url(settings)}/v1"
        judge = Judge(args.judge, url, settings.api_key)
        judge.check()
    report = compare(registry, version, against, suites, workload=args.workload, judge=judge)
    print(json.dumps(report, indent=2) if args.json else render(report))
    if args.plot:
        from trainer.evaluation.plot import plot

        plot(report, Path(args.plot).expanduser())
        print(f"plot: {args.plot}", file=sys.stderr)
