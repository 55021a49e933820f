"""`loragate dataset build`: recorded work into a training set."""

from __future__ import annotations

import argparse
import json

from gateway.cli.common import (
    add_command,
    add_verb,
    served_gguf,
    settings_of,
    store_of,
)
from gateway.recording import logbook


def add_parser(sub: argparse._SubParsersAction) -> None:
    dataset = add_command(sub, "dataset", help="build training sets from the record")
    verbs = dataset.add_subparsers(dest="verb", required=True)
    build = add_verb(
        verbs, "build", help="select, validate, filter, mix and split recorded work into a dataset"
    )
    build.add_argument("--workload", action="append", default=[], help="only this workload "
                       "(repeat for several; default: all)")  # fmt: skip
    build.add_argument("--since", help="only newer records: 7d, 12h or an ISO date [all]")
    build.add_argument(
        "--include-unjudged",
        action="store_true",
        help="also learn answers nothing judged (default: judged-good only)",
    )
    build.add_argument("--seed", type=int, default=0, help="split and mix seed [0]")
    build.add_argument("--eval-fraction", type=float, default=0.1, help="held out [0.1]")
    build.add_argument(
        "--replay-fraction",
        type=float,
        default=0.1,
        help="share of the trained-on tokens from the shipped replay set [0.1]",
    )
    build.add_argument("--json", action="store_true", help="print the manifest as JSON")
    build.set_defaults(func=cmd_dataset_build)


def cmd_dataset_build(args: argparse.Namespace) -> None:
    from trainer.data.dataset import BuildOptions, build, gguf_token_counter, summary

    settings = settings_of(args)
    options = BuildOptions(
        workloads=args.workload,
        since=logbook.parse_since(args.since) if args.since else None,
        include_unjudged=args.include_unjudged,
        seed=args.seed,
        eval_fraction=args.eval_fraction,
        replay_fraction=args.replay_fraction,
    )
    model = served_gguf(settings)
    counter = gguf_token_counter(model) if model is not None else None
    dataset = build(store_of(args), settings.home, options, count_tokens=counter)
    print(json.dumps(dataset.manifest, indent=2) if args.json else summary(dataset))
