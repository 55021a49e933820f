"""`loragate collect continue`: what clients wrote outside the gateway, taken into the store."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cli.common import add_command, settings_of
from gateway.errors import ConfigError
from gateway.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    collect = add_command(sub, "collect", help="take what clients wrote elsewhere into the store")
    sources = collect.add_subparsers(dest="source", required=True)
    cont = sources.add_parser(
        "continue",
        help="Continue's dev data (judged autocompletes, edits, tool calls, chat feedback)",
        description="Read the new lines of Continue's dev-data files once and say what became "
        "of them. `loragate serve` follows the same files while it runs.",
    )
    cont.add_argument("--home", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    cont.add_argument("--folder", help="the dev-data folder [$CONTINUE_GLOBAL_DIR/dev_data/0.2.0, "
                      "~/.continue/dev_data/0.2.0]")  # fmt: skip
    cont.set_defaults(func=cmd_collect_continue)


def cmd_collect_continue(args: argparse.Namespace) -> None:
    from collectors.continue_devdata import DevDataFiles, collect, dev_data_dir

    settings = settings_of(args)
    folder = Path(args.folder).expanduser() if args.folder else dev_data_dir()
    if not folder.is_dir():
        raise ConfigError(f"no Continue dev data at {folder}: has Continue run on this machine?")
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_target)
    try:
        print(collect(store, DevDataFiles.open(folder, settings.home)))
    finally:
        store.close()
