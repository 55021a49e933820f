"""`loragate train` and `loragate retrain`: the trainer, run from the command line."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, get_args

from gateway.cli.common import (
    EPOCHS_HELP,
    RECIPE_HELP,
    add_command,
    gateway_url,
    ollama_of,
    registry_of,
    served_gguf,
    settings_of,
    store_of,
)
from gateway.config import Quant, Settings
from gateway.errors import ConfigError
from gateway.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    _train_parser(sub)
    _retrain_parser(sub)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", help="train a LoRA adapter on a dataset")
    p.add_argument("--dataset", help="dataset hash (or its start) or folder")
    p.add_argument("--base", help="Hugging Face folder or GGUF [the served GGUF]")
    p.add_argument("--engine", choices=("torch", "mlx"), default="torch",
                   help="peft on CUDA/CPU, or mlx-lm on Apple Silicon [torch]")  # fmt: skip
    p.add_argument("--recipe", help=RECIPE_HELP)
    p.add_argument("--epochs", type=float, help=EPOCHS_HELP)
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument(
        "--no-shared-prefix",
        action="store_true",
        help="train full sequences instead of running shared prefixes once",
    )
    p.add_argument("--resume", help="continue an interrupted run (its folder)")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> None:
    from trainer.lora.train import train_run

    settings = settings_of(args)
    base = Path(args.base).expanduser() if args.base else served_gguf(settings)
    overrides = _recipe_flags(args, shared_prefix=False if args.no_shared_prefix else None)
    try:  # a run is recorded in the store when there is one; training needs none
        store: Store | None = store_of(args)
    except ConfigError:
        store = None
    run = train_run(
        settings.home, store, dataset=args.dataset, base=base, engine=args.engine,
        recipe_file=Path(args.recipe) if args.recipe else None, overrides=overrides,
        resume=Path(args.resume) if args.resume else None,
    )  # fmt: skip
    m = run.metrics
    eval_loss = f", eval loss {m['eval_loss']:.3f}" if m.get("eval_loss") is not None else ""
    print(
        f"{run.id}: {m['steps']} steps in {m['seconds']:.0f} s, {m['tokens_per_s']:.0f} "
        f"tokens/s, train loss {m['train_loss']:.3f}{eval_loss}; adapter at {run.adapter}"
    )


def _retrain_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "retrain",
        help="dataset, training, export, checks, evaluation: a new candidate version",
    )
    p.add_argument("--workload", help="train on and serve this workload only [all]")
    p.add_argument("--engine", choices=("torch", "mlx"), default="torch",
                   help="peft on CUDA/CPU, or mlx-lm on Apple Silicon [torch]")  # fmt: skip
    p.add_argument("--recipe", help=RECIPE_HELP)
    p.add_argument("--epochs", type=float, help=EPOCHS_HELP)
    p.add_argument("--max-steps", type=int, help="stop training after this many steps")
    p.add_argument("--threads", type=int, help="CPU threads for training [all cores]")
    p.add_argument(
        "--quant",
        choices=get_args(Quant),
        help="quantization of the served GGUF [LORAGATE_EXPORT_QUANT, else Q8_0 under 1B "
        "parameters, Q4_K_M above]",
    )
    p.add_argument("--eval-fraction", type=float, default=0.1,
                   help="share of each workload's conversations (a collector's files) held "
                   "out for evaluation [0.1]")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="build the dataset and stop")
    p.add_argument(
        "--no-gate",
        dest="no_gate",
        action="store_true",
        help="make it a candidate even if it fails the promotion gate (live routing decides)",
    )
    p.set_defaults(func=cmd_retrain)


def cmd_retrain(args: argparse.Namespace) -> None:
    from trainer.retrain import RetrainOptions, retrain

    settings = settings_of(args)
    registry, base = registry_of(args)
    options = RetrainOptions(
        workload=args.workload,
        engine=args.engine,
        overrides=_recipe_flags(args, threads=args.threads),
        recipe_file=Path(args.recipe) if args.recipe else None,
        dry_run=args.dry_run,
        gated=not args.no_gate,
        quant=args.quant or settings.export_quant,
        llama_cpp_dir=settings.llama_cpp_dir,
        eval_fraction=args.eval_fraction,
    )
    if not 0 <= args.eval_fraction < 1:
        raise ConfigError("--eval-fraction must be at least 0 and below 1")
    gguf = registry.get(f"{base}@v0").gguf
    result = retrain(registry, gguf, base, options, ollama=ollama_of(args, base))
    print(result.summary())
    if result.version is not None and result.passed:
        print(_wait_until_served(settings, result.version.name))


def _recipe_flags(args: argparse.Namespace, **more: object) -> dict[str, Any]:
    """The recipe fields the command line set (`--epochs`, `--max-steps`, ...)."""
    flags = {"epochs": args.epochs, "max_steps": args.max_steps, **more}
    return {name: value for name, value in flags.items() if value is not None}


def _wait_until_served(settings: Settings, version: str, timeout: float = 60.0) -> str:
    """A gateway running with this home loads the new version by itself; say when it serves it."""
    import urllib.error
    import urllib.request

    url = f"{gateway_url(settings)}/v1/models"
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=5
            ) as r:
                names = [m["id"] for m in json.load(r)["data"]]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return f"no gateway answers at {url}: it will serve {version} when it starts"
        waited = time.monotonic() - started
        if version in names:
            return (
                f"the gateway at {url.removesuffix('/v1/models')} serves {version} ({waited:.1f} s)"
            )
        if waited > timeout:
            return f"the gateway at {url.removesuffix('/v1/models')} has not loaded {version} yet"
        time.sleep(0.25)
