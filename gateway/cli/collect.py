"""`loragate collect continue|libcst|docs|jac`: what clients wrote outside the gateway, and what
a project's documentation and Jac code teach, taken into the store."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collectors.chunking import STRATEGIES
from gateway.cli.common import add_command, add_verb, gateway_url, served_gguf, settings_of
from gateway.config import Settings
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
    docs = add_verb(
        sources,
        "docs",
        help="question/answer pairs about a project's documentation and code",
        description="Read each PATH's documentation and code (what git ignores and binary "
        "files skipped), cut them by heading, by paragraph and in fixed windows, ask a served "
        "model for one question and answer per chunk, keep the pairs their chunk supports, and "
        "store them as the `docs` workload. Ctrl-C keeps what is done; a second run asks only "
        "about chunks not done yet.",
    )
    docs.add_argument("paths", nargs="+", metavar="PATH", help="a project folder")
    _asking(docs, "writes the pairs", concurrency=8)
    docs.add_argument("--strategies", default=",".join(STRATEGIES),
                      help="how documentation is cut [heading,paragraph,fixed]")  # fmt: skip
    docs.add_argument("--ext", action="append", default=[], metavar=".EXT",
                      help="also read files with this extension as documentation")  # fmt: skip
    docs.add_argument("--max-chunks", type=int, help="ask about at most this many chunks "
                      "per project this run [all]")  # fmt: skip
    docs.add_argument("--system", help="the system prompt users will ask with [You answer "
                      "questions about PROJECT, from its documentation and code.]")  # fmt: skip
    docs.add_argument("--judge", metavar="MODEL", help="also keep only the pairs this model "
                      "(at the same endpoint) finds stated by their chunk")  # fmt: skip
    docs.set_defaults(func=cmd_collect_docs)
    jac = add_verb(
        sources,
        "jac",
        help="training pairs from a Jac codebase's by llm() call sites",
        description="Read each PATH's .jac files, render the prompt MTLLM sends for every call "
        "of a `by llm()` ability with literal arguments, and pair it with `[Output] <value>`: "
        "the value a `check f(...) == value` gives, else what the served model answers (the "
        "gateway's engine keeps it to the declared type). Pairs whose value has the declared "
        "type are stored as the `jac` workload, but for a model's values that loop or paste a "
        "whole argument sentence. Ctrl-C keeps what is done; a second run asks "
        "only for call sites not done yet.",
    )
    jac.add_argument("paths", nargs="+", metavar="PATH", help="a folder of .jac files, or one")
    _asking(jac, "answers the call sites", concurrency=4)
    jac.add_argument(
        "--checks-only",
        action="store_true",
        help="pair only the calls whose value a check gives; ask no model",
    )
    jac.set_defaults(func=cmd_collect_jac)


def _asking(parser: argparse.ArgumentParser, what: str, *, concurrency: int) -> None:
    """The options of a collector that asks a served model (see `_client`)."""
    parser.add_argument("--url", help=f"OpenAI-compatible endpoint that {what} "
                        "[the running gateway's /v1]")  # fmt: skip
    parser.add_argument("--model", default="auto", help="the model (or version) asked [auto]")
    parser.add_argument("--concurrency", type=int, default=concurrency,
                        help=f"requests in flight [{concurrency}]")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per request before it is retried [120]")  # fmt: skip


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


def cmd_collect_docs(args: argparse.Namespace) -> None:
    import asyncio

    from collectors import docs_qa
    from collectors.chunking import GgufTokens
    from collectors.docs_text import DOC_EXTENSIONS

    settings = settings_of(args)
    projects = [Path(p).expanduser() for p in args.paths]
    for project in projects:
        if not project.is_dir():
            raise ConfigError(f"{project} is not a folder")
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    unknown = set(strategies) - set(STRATEGIES)
    if unknown or not strategies:
        raise ConfigError(f"--strategies: choose from {', '.join(STRATEGIES)}")
    if args.concurrency < 1 or args.timeout <= 0 or (args.max_chunks or 1) < 1:
        raise ConfigError("--concurrency and --max-chunks must be 1 or more, --timeout above 0")
    extra = tuple(e if e.startswith(".") else f".{e}" for e in args.ext)
    options = docs_qa.Options(
        model=args.model, concurrency=args.concurrency, timeout=args.timeout,
        strategies=strategies, doc_extensions=DOC_EXTENSIONS + extra,
        max_chunks=args.max_chunks, system=args.system, judge=args.judge,
    )  # fmt: skip
    client = _client(args, settings, options.retries)
    count = GgufTokens(served_gguf(settings))  # the served model's; ~4 characters a token

    async def every_project(store: Store) -> str:  # one event loop: the client is bound to it
        reports = [await docs_qa.collect(store, settings.home, project, options, count, client)
                   for project in projects]  # fmt: skip
        return "\n".join(map(str, reports))

    _collect(args, lambda store: asyncio.run(every_project(store)))


def cmd_collect_jac(args: argparse.Namespace) -> None:
    import asyncio

    from collectors import jac_corpus

    settings = settings_of(args)
    paths = [Path(p).expanduser() for p in args.paths]
    for path in paths:
        if not path.is_dir() and not (path.is_file() and path.suffix == ".jac"):
            raise ConfigError(f"{path} is neither a folder nor a .jac file")
    if args.concurrency < 1 or args.timeout <= 0:
        raise ConfigError("--concurrency must be 1 or more, --timeout above 0")
    options = jac_corpus.Options(model=args.model, concurrency=args.concurrency,
                                 timeout=args.timeout, generate=not args.checks_only)  # fmt: skip
    client = None if args.checks_only else _client(args, settings, options.retries)

    async def every_path(store: Store) -> str:  # one event loop: the client is bound to it
        reports = [await jac_corpus.collect(store, settings.home, path, options, client)
                   for path in paths]  # fmt: skip
        return "\n".join(map(str, reports))

    _collect(args, lambda store: asyncio.run(every_path(store)))


def _client(args: argparse.Namespace, settings: Settings, retries: int) -> Any:
    """An async OpenAI client for `--url` (else the running gateway), after checking that
    something answers there: one clear line, before any file is read, when nothing does."""
    import openai

    url = args.url or f"{gateway_url(settings)}/v1"
    try:
        openai.OpenAI(base_url=url, api_key=settings.api_key or "none", max_retries=0,
                      timeout=10).models.list()  # fmt: skip
    except openai.APIError as exc:
        raise ConfigError(
            f"nothing answers at {url} ({exc.message}): start `loragate serve`, or give --url"
        ) from None
    return openai.AsyncOpenAI(base_url=url, api_key=settings.api_key or "none",
                              timeout=args.timeout, max_retries=retries)  # fmt: skip


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
