"""`loragate models`, `rollback` and `status`: model versions, kept in step with an Ollama
when `ollama_deploy` names one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli import address
from gateway.cli.common import (
    add_command,
    add_verb,
    ollama_of,
    registry_of,
    settings_of,
)
from gateway.errors import LoragateError

if TYPE_CHECKING:
    from gateway.versions.registry import Registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    _versions_parser(sub)
    _rollback_parser(sub)
    _status_parser(sub)


def _versions_parser(sub: argparse._SubParsersAction) -> None:
    models = add_command(sub, "models", help="model versions: list, show, register, promote, rm")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(func=cmd_models)
    verbs = models.add_subparsers(dest="verb")
    show = add_verb(verbs, "show", help="one version: files, lineage, metrics, states")
    show.add_argument("version", help="e.g. smollm2-135m-instruct@v2")
    show.set_defaults(func=cmd_models_show)
    register = add_verb(verbs, "register", help="add a GGUF made elsewhere (checked first)")
    register.add_argument("path", help="the .gguf file")
    register.add_argument("--workload", default="*", help="the workload it serves [* = all]")
    register.add_argument(
        "--candidate", action="store_true", help="share traffic as a candidate, not become active"
    )
    register.set_defaults(func=cmd_models_register)
    promote = add_verb(verbs, "promote", help="make a version the active one")
    promote.add_argument("version")
    promote.add_argument("--workload", default="*", help="[* = all]")
    promote.set_defaults(func=cmd_models_promote)
    rm = add_verb(verbs, "rm", help="remove a version that is not active, with its files")
    rm.add_argument("version")
    rm.set_defaults(func=cmd_models_rm)


def _rollback_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "rollback",
        help="undo the last change: withdraw the candidate, else the last promotion",
    )
    p.add_argument("--workload", default="*", help="[* = all]")
    p.add_argument("--to", help="make this version active instead")
    p.set_defaults(func=cmd_rollback)


def _status_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "status", help="per workload: versions, traffic shares, live rewards, last change"
    )
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.set_defaults(func=cmd_status)


def _sync_ollama(args: argparse.Namespace, registry: Registry, base: str, then: str) -> None:
    """After a registry change: make the Ollama deployment match it, or say how to retry."""
    ollama = ollama_of(args, base)
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

    registry, base = registry_of(args)
    versions = registry.versions(base)
    print(json.dumps([as_dict(v) for v in versions], indent=2) if args.json else table(versions))


def cmd_models_show(args: argparse.Namespace) -> None:
    from gateway.versions.registry import as_dict

    registry, _ = registry_of(args)
    print(json.dumps(as_dict(registry.get(args.version)), indent=2))


def cmd_models_register(args: argparse.Namespace) -> None:
    from trainer.export.gguf import check

    registry, base = registry_of(args)
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
    registry, base = registry_of(args)
    registry.promote(args.version, args.workload)
    print(f"{args.version} is active for {args.workload}")
    _sync_ollama(args, registry, base, "run this command again once it is reachable")


def cmd_models_rm(args: argparse.Namespace) -> None:
    registry, base = registry_of(args)
    registry.remove(args.version)
    print(f"removed {args.version}")
    ollama = ollama_of(args, base)
    if ollama is not None:
        ollama.remove(args.version)


def cmd_rollback(args: argparse.Namespace) -> None:
    registry, base = registry_of(args)
    print(registry.rollback(base, args.workload, to=args.to))
    active = registry.active(base, args.workload)
    _sync_ollama(
        args, registry, base, f"run `loragate models promote {active.name if active else base}`"
    )


def cmd_status(args: argparse.Namespace) -> None:
    from gateway.cli.status import render
    from gateway.versions.live import policy_of
    from gateway.versions.overview import status

    registry, base = registry_of(args)
    settings = settings_of(args)
    report = status(registry, base, policy_of(settings), settings, address.running(settings.home))
    print(json.dumps(report, indent=2) if args.json else render(report))
