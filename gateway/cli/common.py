"""What the commands share: their settings, store, registry and journal, read once per
command, and where the gateway serving a home answers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.cli import address
from gateway.config import Settings, load_settings
from gateway.errors import LoragateError
from gateway.recording import logbook
from gateway.recording.journal import Journal
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.versions.ollama_tags import OllamaDeployer
    from gateway.versions.registry import Registry

HOME_HELP = "data folder [LORAGATE_HOME, ~/.loragate]"

RECIPE_HELP = ("TOML or JSON file of hyperparameters over the defaults (learning_rate, r, "
               "alpha, epochs, batch_size, ...)")  # fmt: skip

EPOCHS_HELP = ("passes over the data [chat: 2, 1 from 100 examples on; tool calls: about 600 "
               "example-passes, 1 to 6; Jac typed values: about 600, 1 to 3]")  # fmt: skip


def add_command(
    sub: argparse._SubParsersAction, name: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A command of `loragate`, with the `--home` every command but `serve` takes first."""
    command = sub.add_parser(name, **kwargs)
    command.add_argument("--home", help=HOME_HELP)
    return command


def add_verb(
    verbs: argparse._SubParsersAction, name: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A verb of `log`, `dataset` or `models`; it takes `--home` too, so that
    `loragate models register X.gguf --home H` works as well as `loragate models --home H ...`."""
    verb = verbs.add_parser(name, **kwargs)
    verb.add_argument("--home", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return verb


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings a command (other than `serve`) runs with, read once per command."""
    if not hasattr(args, "settings"):
        args.settings = load_settings({"home": args.home})
    return args.settings


def store_of(args: argparse.Namespace) -> Store:
    settings = settings_of(args)
    return logbook.open_store(settings.store_target)


def journal_of(args: argparse.Namespace) -> Journal:
    return Journal(settings_of(args).home / "journal")


def served_gguf(settings: Settings) -> Path | None:
    """The GGUF versions are trained from: the embedded engine's, or `train_base`."""
    from gateway.versions.hosts import training_base

    return training_base(settings)


def registry_of(args: argparse.Namespace) -> tuple[Registry, str]:
    """The registry with the served base's v0 in it, and that base's name."""
    from gateway.backends.embedded import model_name_for
    from gateway.versions.registry import Registry

    settings = settings_of(args)
    gguf = served_gguf(settings)
    if gguf is None:
        raise LoragateError(
            "model versions need the embedded engine (backend = llamacpp) or, for an "
            "upstream, train_base"
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_target)
    registry = Registry(store, settings.home)
    base = model_name_for(gguf)
    registry.ensure_base(gguf, base)
    return registry, base


def gateway_url(settings: Settings) -> str:
    """Where the gateway serving this home answers (the address it left there), else where
    these settings say it would, seen from this machine."""
    return address.running(settings.home) or local_url(settings, settings.port)


def local_url(settings: Settings, port: int) -> str:
    """The gateway's URL seen from this machine (a wildcard bind answers on the loopback)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{port}"


def ollama_of(args: argparse.Namespace, base: str) -> OllamaDeployer | None:
    """The Ollama that versions are deployed to, when `ollama_deploy` names one."""
    from gateway.versions.ollama_tags import deployer_of

    return deployer_of(settings_of(args), base)
