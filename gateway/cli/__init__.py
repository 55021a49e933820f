"""`loragate` command line: one module per command group, each adding its parser and the
functions its commands call. The only gateway code that imports the trainer.

Exit codes: 0 success, 1 a user-facing error (one clear line), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway.cli import bench, collect, continue_config, dataset, log, models, serve, train
from gateway.cli import eval as evaluation
from gateway.errors import LoragateError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loragate",
        description="A local OpenAI/Ollama gateway that records your work and retrains a LoRA.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_parser(sub)
    log.add_parser(sub)
    collect.add_parser(sub)
    continue_config.add_parser(sub)
    dataset.add_parser(sub)
    train.add_parser(sub)
    models.add_parser(sub)
    evaluation.add_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except LoragateError as exc:
        print(f"loragate: error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0 if args.command == "log" else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
