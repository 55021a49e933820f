"""A hot swap and a rollback under 32-client load on the embedded engine.

    python tests/bench/bench_swap.py [--clients 32] [--seconds 20]

Starts `loragate serve` on the default model, registers a second GGUF (the base file copied: a
real model that llama.cpp loads), then with every client sending short chats back to back:
normal load for `--seconds`, `loragate models promote` (the gateway loads the new version
beside the old one and switches), load again, `loragate rollback`, load again. Prints failed
requests, p50/p99 latency in normal load and around the swap, and how long after each
command's change was committed the first request was routed to the new version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import openai

from gateway.backends.embedded import default_model_path
from tests.support.servers import gateway

BASE = "smollm2-135m-instruct"


def loragate(home: Path, *args: str) -> float:
    """Runs the CLI; returns the time its change was committed (the deployment row's)."""
    command, *rest = args
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", command, "--home", str(home), *rest],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"loragate {' '.join(args)} failed: {done.stderr.strip()}")
    with sqlite3.connect(home / "store.db") as db:
        return float(db.execute("SELECT max(at) FROM deployments").fetchone()[0])


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def load(url: str, clients: int, stop: asyncio.Event, log: list[tuple]) -> None:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0,
                                timeout=120)  # fmt: skip

    async def one_client(i: int) -> None:
        n = 0
        while not stop.is_set():
            started = time.time()
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model=BASE, max_tokens=8,
                    messages=[{"role": "user", "content": f"Say a word ({i}.{n})."}],
                )  # fmt: skip
                version = raw.headers["x-loragate-model-version"]
                log.append((started, time.time(), version, None))
            except Exception as exc:
                log.append((started, time.time(), None, repr(exc)))
            n += 1

    await asyncio.gather(*(one_client(i) for i in range(clients)))


def first_routed(log: list[tuple], version: str, after: float) -> float:
    started = [s for s, _, v, _ in log if v == version and s >= after]
    return min(started) - after if started else float("nan")


async def main(clients: int, seconds: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    copy = tmp / "retrained.gguf"
    shutil.copyfile(default_model_path(), copy)
    try:
        with gateway(tmp, "--n-ctx", "1024") as server:
            assert server.home is not None
            loragate(server.home, "models", "register", str(copy), "--candidate")
            loragate(server.home, "rollback")  # withdrawn: v1 exists, nothing routes to it
            log: list[tuple] = []
            stop = asyncio.Event()
            task = asyncio.create_task(load(server.url, clients, stop, log))
            await asyncio.sleep(seconds)
            t_swap_start = time.time()
            t_swap = await asyncio.to_thread(loragate, server.home, "models", "promote",
                                             f"{BASE}@v1")  # fmt: skip
            await asyncio.sleep(seconds)
            t_back_start = time.time()
            t_back = await asyncio.to_thread(loragate, server.home, "rollback")
            await asyncio.sleep(seconds)
            stop.set()
            await task
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = [(s, e, v) for s, e, v, err in log if err is None]
    failed = [err for *_, err in log if err is not None]
    warm = t_swap_start - seconds / 2  # the first half is the clients' ramp-up
    normal = [e - s for s, e, _ in ok if warm <= s and e <= t_swap_start]
    # requests in flight at any time between a command's start and 5 s after its commit
    windows = [(t_swap_start, t_swap + 5), (t_back_start, t_back + 5)]
    around = [e - s for s, e, _ in ok if any(e >= a and s <= b for a, b in windows)]
    result = {
        "clients": clients,
        "requests": len(log),
        "failed": len(failed),
        "failures": failed[:3],
        "normal_p50_s": round(statistics.median(normal), 3) if normal else None,
        "normal_p99_s": round(p(normal, 0.99), 3),
        "swap_p99_s": round(p(around, 0.99), 3),
        "swap_p99_ratio": round(p(around, 0.99) / p(normal, 0.99), 2),
        "promote_routed_after_s": round(first_routed(log, f"{BASE}@v1", t_swap), 3),
        "rollback_routed_after_s": round(first_routed(log, f"{BASE}@v0", t_back), 3),
        "served": {v: sum(1 for *_, x in ok if x == v) for v in {x for *_, x in ok}},
    }
    print(f"{clients} clients, {len(log)} requests, {len(failed)} failed; p99 normal "
          f"{result['normal_p99_s']} s, around the swaps {result['swap_p99_s']} s "
          f"({result['swap_p99_ratio']}x); first request on the promoted version "
          f"{result['promote_routed_after_s']} s after the commit, on the rolled-back-to "
          f"version {result['rollback_routed_after_s']} s after")  # fmt: skip
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.clients, args.seconds))))
