"""The embedded engine's threads when another program keeps a core busy.

    python tests/bench/bench_threads.py [--runs 3] [--limit 90]

For each llama.cpp thread count (all cores, cores - 1, for decoding and prefill) and OpenMP wait
policy (libgomp's default, which spins, and `passive`), and for the gateway's default (`served`:
decode on cores - 1, prefill on all, passive waits), with 0 and 1 cores kept busy by another
process, a fresh process answers a short agent turn on the default model (a ~900-token prompt
of system text and tools, never cached, then 32 tokens) and reports the time to first token
and the decode rate. Prints the table, the turn's time as a multiple of the idle one, and the
idle decode speed lost against the fastest idle setting. A run longer than `--limit` seconds is
reported as such. The goal: contended within 2x of idle, losing at most 15 % idle speed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SYSTEM = "You are a coding agent. " + " ".join(
    f"Tool {name}: reads, writes or lists files under the workspace root; use it with care."
    for name in ("Read", "Write", "List", "Bash", "Edit", "Fetch", "Exit", "Skills") * 6
)


def one_turn(n_threads: int | None, runs: int) -> dict[str, float]:
    """In this (fresh) process: time to first token and decode tokens/s of an uncached turn;
    `None`: the gateway's default threads and wait policy."""
    import asyncio

    from gateway.backends.embedded import default_model_path, passive_waits
    from gateway.backends.llamacpp import LlamaCppBackend
    from gateway.generation import Finish, GenerationRequest, TextDelta

    if n_threads is None:
        passive_waits()

    engine = LlamaCppBackend(default_model_path(), n_ctx=2048, n_threads=n_threads, n_batch=256,
                             cache_mb=0)  # fmt: skip

    async def turn(i: int) -> tuple[float, float]:
        messages = [{"role": "system", "content": f"Session {i}. {SYSTEM}"},
                    {"role": "user", "content": "Read src/app.py and summarise it."}]  # fmt: skip
        request = GenerationRequest(model="m", messages=messages, max_tokens=32, temperature=0)
        started = time.perf_counter()
        first, tokens = 0.0, 0
        async for event in engine.generate(request):
            if isinstance(event, TextDelta) and not first:
                first = time.perf_counter()
            if isinstance(event, Finish):
                tokens = event.completion_tokens
        ended = time.perf_counter()
        return first - started, max(tokens - 1, 1) / max(ended - first, 1e-9)

    async def main() -> dict[str, float]:
        await engine.start()
        try:
            await turn(-1)  # warm-up
            measured = [await turn(i) for i in range(runs)]
        finally:
            await engine.close()
        return {"ttft_s": statistics.median(t for t, _ in measured),
                "decode_tok_s": statistics.median(r for _, r in measured)}  # fmt: skip

    return asyncio.run(main())


def _spin() -> None:
    while True:
        pass


def measure(n_threads: int | None, policy: str | None, busy: int, runs: int, limit: float) -> dict:
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
    for spinner in spinners:
        spinner.start()
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(n_threads or 0), "--runs", str(runs)],
            capture_output=True, text=True, env=env, timeout=limit,
        )  # fmt: skip
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        result = {"ttft_s": float("inf"), "decode_tok_s": 0.0}
    finally:
        for spinner in spinners:
            spinner.kill()
    if n_threads is None:
        return {"n_threads": "served", "policy": "passive", "busy": busy, **result}
    return {"n_threads": str(n_threads), "policy": policy or "default", "busy": busy, **result}


def main(runs: int, limit: float) -> list[dict]:
    cores = os.cpu_count() or 2
    settings = [(n, policy) for n in (cores, max(cores - 1, 1)) for policy in (None, "passive")]
    rows = [measure(n, policy, busy, runs, limit)
            for n, policy in [*settings, (None, None)] for busy in (0, 1)]  # fmt: skip
    best_idle = max(r["decode_tok_s"] for r in rows if r["busy"] == 0)
    print(f"{'n_threads':>9} {'OMP wait':>8} {'busy':>4} {'TTFT s':>8} {'decode tok/s':>12} "
          f"{'turn vs idle':>12} {'idle speed lost':>15}")  # fmt: skip
    for row in rows:
        idle = next(r for r in rows if r["busy"] == 0 and r["n_threads"] == row["n_threads"]
                    and r["policy"] == row["policy"])  # fmt: skip
        row["turn_vs_idle"] = _turn(row) / _turn(idle)
        row["idle_speed_lost"] = 1 - idle["decode_tok_s"] / best_idle
        print(f"{row['n_threads']:>9} {row['policy']:>8} {row['busy']:>4} {row['ttft_s']:>8.2f} "
              f"{row['decode_tok_s']:>12.1f} {row['turn_vs_idle']:>11.1f}x "
              f"{row['idle_speed_lost']:>14.0%}")  # fmt: skip
    return rows


def _turn(row: dict) -> float:
    """Seconds of the measured turn: prefill then 31 decoded tokens."""
    return row["ttft_s"] + 31 / max(row["decode_tok_s"], 1e-9)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=float, default=90)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_turn(args.child or None, args.runs)))
    else:
        print(json.dumps(main(args.runs, args.limit)))
