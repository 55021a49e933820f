"""`loragate log stats|tail|export|correct|forget`: what was recorded."""

from __future__ import annotations

import argparse
import json
import time

from gateway.cli.common import (
    add_command,
    add_verb,
    journal_of,
    store_of,
)
from gateway.recording import logbook
from gateway.recording.corrections import Correction


def add_parser(sub: argparse._SubParsersAction) -> None:
    log = add_command(sub, "log", help="read, export or prune what was recorded")
    verbs = log.add_subparsers(dest="verb", required=True)
    stats = add_verb(verbs, "stats", help="counts per workload, outcome rates, corrections")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=cmd_log_stats)
    tail = add_verb(verbs, "tail", help="follow new interactions, one line each (Ctrl-C ends)")
    tail.add_argument("-n", type=int, default=10, help="show this many recent ones first")
    tail.set_defaults(func=cmd_log_tail)
    export = add_verb(verbs, "export", help="interactions as JSON lines on stdout")
    export.add_argument("--format", choices=logbook.EXPORT_FORMATS, default="jsonl")
    export.add_argument("--workload", help="only this workload")
    export.add_argument("--since", help="only newer ones: 7d, 12h, 30m or an ISO date")
    export.set_defaults(func=cmd_log_export)
    correct = add_verb(verbs, "correct", help="say what an answer should have been (training data)")
    correct.add_argument("interaction", help="its id (X-Loragate-Interaction-Id, log tail)")
    wanted = correct.add_mutually_exclusive_group(required=True)
    wanted.add_argument("--tool", help="the tool it should have called")
    wanted.add_argument("--text", help="the text it should have answered")
    correct.add_argument("--args", default="{}", help="the call's arguments, a JSON object [{}]")
    correct.set_defaults(func=cmd_log_correct)
    forget = add_verb(verbs, "forget", help="delete records for good")
    forget.add_argument("--since", help="everything newer: 7d, 12h, 30m or an ISO date")
    forget.add_argument("--conversation", help="one conversation id")
    forget.set_defaults(func=cmd_log_forget)


def cmd_log_stats(args: argparse.Namespace) -> None:
    data = logbook.stats(store_of(args))
    print(json.dumps(data, indent=2) if args.json else logbook.format_stats(data))


def cmd_log_tail(args: argparse.Namespace) -> None:
    store = store_of(args)
    recent = logbook.latest_time(store, skip=max(args.n - 1, 0))
    after = recent - 1e-6 if recent is not None else 0.0
    while True:
        for created_at, line in logbook.tail_lines(store, after):
            print(line, flush=True)
            after = created_at
        time.sleep(0.5)


def cmd_log_export(args: argparse.Namespace) -> None:
    since = logbook.parse_since(args.since) if args.since else None
    for line in logbook.export(store_of(args), args.format, workload=args.workload, since=since):
        print(line)


def cmd_log_correct(args: argparse.Namespace) -> None:
    if args.tool is not None:
        call = {"function": {"name": args.tool, "arguments": args.args}}
        correction = Correction.from_message({"tool_calls": [call]})
    else:
        correction = Correction.from_text(args.text)
    logbook.correct(store_of(args), args.interaction, correction)
    print(f"recorded: {args.interaction} should have been {correction.text()}")


def cmd_log_forget(args: argparse.Namespace) -> None:
    since = logbook.parse_since(args.since) if args.since else None
    stored, journaled = logbook.forget(
        store_of(args), journal_of(args), since=since, conversation=args.conversation
    )
    print(
        f"deleted {stored + journaled} interactions with their outcomes and corrections"
        + (f" ({journaled} of them from the journal)" if journaled else "")
    )
