"""`loragate collect continue|libcst`: what clients wrote outside the gateway, taken into the
store."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from gateway.cli.common import add_command, add_verb, settings_of
from gateway.errors import ConfigError
from gateway.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    collect = add_command(sub, "collect", help="take what clients wrote elsewhere into the store")
    sources = collect.add_subparsers(dest="source", required=True)
    cont = add_verb(
        sources,
        "continue",
        help="Continue's dev data (judged autocompletes, edits, tool calls, chat feedback)",
        description="Read the new lines of Continue's dev-data files once and say what became "
        "of them. `loragate serve` follows the same files while it runs.",
    )
    cont.add_argument("--folder", help="the dev-data folder [$CONTINUE_GLOBAL_DIR/dev_data/0.2.0, "
                      "~/.continue/dev_data/0.2.0]")  # fmt: skip
    cont.set_defaults(func=cmd_collect_continue)
    libcst = add_verb(
        sources,
        "libcst",
        help="the LibCST repair agent's success memory (validated scripts, repair cycles)",
        description="Read the new lines of PROJECT/.agent_data/success_memory.jsonl once: find "
        "each validated script by its hash among the recorded answers and PROJECT/.autopatches/, "
        "mark the answer that wrote it a success (and the failed attempts before it), add a "
        "scaffolding example per line, and say what was found where.",
    )
    libcst.add_argument("project", help="the project folder the agent works in")
    libcst.set_defaults(func=cmd_collect_libcst)


def cmd_collect_continue(args: argparse.Namespace) -> None:
    from collectors.continue_devdata import DevDataFiles, collect, dev_data_dir

    settings = settings_of(args)
    folder = Path(args.folder).expanduser() if args.folder else dev_data_dir()
    if not folder.is_dir():
        raise ConfigError(f"no Continue dev data at {folder}: has Continue run on this machine?")
    _collect(args, lambda store: collect(store, DevDataFiles.open(folder, settings.home)))


def cmd_collect_libcst(args: argparse.Namespace) -> None:
    from collectors.libcst_agent import MEMORY_DIR, MemoryFiles, collect

    settings = settings_of(args)
    project = Path(args.project).expanduser()
    if not (project / MEMORY_DIR).is_dir():
        raise ConfigError(f"no {MEMORY_DIR}/ in {project}: is it the folder the agent works in?")
    _collect(args, lambda store: collect(store, MemoryFiles.open(project, settings.home)))


def _collect(args: argparse.Namespace, run: Callable[[Store], object]) -> None:
    """Run a collector against the store (made on first use: collecting may come before
    anything was served) and print its report."""
    settings = settings_of(args)
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_target)
    try:
        print(run(store))
    finally:
        store.close()
