"""Docs Q&A: how fast documentation is chunked, and how many requests generation keeps in flight.

Prints, measured in one run:
  - reading, cleaning and chunking 10 MB of documentation (Markdown and reStructuredText, made
    up from the fixture's files) three ways, token budgets counted by the default model's
    tokenizer: seconds and MB/s (the issue's bar: under 10 s);
  - `collect docs` generation against a local upstream that answers each request with a valid
    pair after 50 ms (as a model would take time): requests/s and the most requests in flight,
    with 1 and with 8 allowed (8 is the default).

    python tests/bench/bench_docs.py [--megabytes 10] [--chunks 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from aiohttp import web

from collectors import docs_qa
from collectors.chunking import GgufTokens
from gateway.backends.embedded import default_model_path
from gateway.store import Store
from tests.support.servers import free_port

FIXTURE = Path(__file__).parents[1] / "fixtures" / "docs_project"
DELAY = 0.05


def documentation(root: Path, megabytes: float) -> int:
    """Copies of the fixture's documentation, numbered, until `megabytes` are written."""
    sources = [p for p in FIXTURE.rglob("*") if p.suffix in (".md", ".rst")]
    texts = [(p.suffix, p.read_text(encoding="utf-8")) for p in sources]
    written, n = 0, 0
    (root / "docs").mkdir(parents=True)
    while written < megabytes * 1_000_000:
        suffix, text = texts[n % len(texts)]
        body = (text + "\n\n") * 20
        (root / "docs" / f"page{n}{suffix}").write_text(body, encoding="utf-8")
        written += len(body.encode())
        n += 1
    return written


def chunking(megabytes: float) -> None:
    count = GgufTokens(default_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        size = documentation(root, megabytes)
        report = docs_qa.Report(root)
        started = time.perf_counter()
        chunks = docs_qa.chunks_of(root, docs_qa.Options(), count, report)
        seconds = time.perf_counter() - started
    print(f"chunking {size / 1e6:.1f} MB of docs three ways ({report.files} files): "
          f"{seconds:.2f} s ({size / 1e6 / seconds:.1f} MB/s, {len(chunks):,} chunks; target: "
          "under 10 s)")  # fmt: skip


async def generation(chunks: int) -> None:
    state = {"now": 0, "most": 0}

    async def answer(request: web.Request) -> web.Response:
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        await asyncio.sleep(DELAY)
        state["now"] -= 1
        pair = {"question": "How is a queue opened?", "answer": "A queue is opened with Queue."}
        return web.json_response({
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(pair)}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })  # fmt: skip

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    import openai

    try:
        for concurrency in (1, 8):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                project = root / "tinyq"
                shutil.copytree(FIXTURE, project)
                for n in range(chunks // 20):  # enough text for `chunks` chunks
                    shutil.copy(FIXTURE / "docs" / "usage.md", project / "docs" / f"u{n}.md")
                client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x")
                options = docs_qa.Options(concurrency=concurrency, max_chunks=chunks)
                store = Store(root / "store.db")
                state["most"] = 0
                words = lambda text: len(text.split())  # noqa: E731
                report = await docs_qa.collect(
                    store, root / "home", project, options, words, client, progress=False
                )
                store.close()
                asked = sum(report.statuses.values())
                print(f"generation, {concurrency} allowed: {asked} requests in "
                      f"{report.seconds:.2f} s = {asked / report.seconds:.1f} requests/s, at "
                      f"most {state['most']} in flight ({DELAY * 1000:.0f} ms each)")  # fmt: skip
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=10.0)
    parser.add_argument("--chunks", type=int, default=400)
    args = parser.parse_args()
    chunking(args.megabytes)
    asyncio.run(generation(args.chunks))


if __name__ == "__main__":
    main()
