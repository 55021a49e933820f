"""What recording costs, and how much it can take.

Prints, measured in one run:
  - one client alternating between a gateway recording and one not (both in front of the same
    instant upstream): the latency recording adds, p50 and p99;
  - p50/p99 latency and throughput at 32 connections (wrk, saturating both), off and on;
  - the recorder's sustained write rate: interactions/s from `submit` to committed rows;
  - 10,000 requests sent (32 at a time) → interactions in the store after a SIGTERM.

    python tests/bench/bench_recorder.py [--seconds 8] [--requests 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.bench_proxy import BODY, interleaved_latency, report_added, wrk
from tests.support.databases import fresh_database, postgres_bin, postgres_cluster
from tests.support.servers import REPO, free_port, gateway, running
from tests.unit.test_recorder import record


def wrk_latency(url: str, seconds: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) at 32 connections."""
    out = wrk(url, seconds, 32, "--latency")

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return ms("50"), ms("99"), rps


# An agent-sized request: Continue's ~8 kB system prompt and tool schemas before the turn.
AGENT_PREFIX = (REPO / "gateway" / "backends" / "llamacpp.py").read_text()[:8000]


async def write_rate(n: int, *, agent: bool = False, store_url: str | None = None) -> float:
    """Interactions/s from `submit` to committed rows; `agent`: 8 kB requests, not 20 bytes."""
    from gateway.recording.recorder import Recorder

    home = Path(tempfile.mkdtemp())
    recorder = Recorder(home, store_url=store_url)
    await recorder.start()
    prefix = [{"role": "system", "content": AGENT_PREFIX}] if agent else []
    records = [
        record(f"ia_{i}", messages=[*prefix, {"role": "user", "content": f"request {i}"}])
        for i in range(n)
    ]
    started = time.perf_counter()
    for r in records:
        recorder.submit(r)
        if i_yield(r):
            await asyncio.sleep(0)
    await recorder.flush()
    elapsed = time.perf_counter() - started
    await recorder.close()
    return n / elapsed


def i_yield(r: object) -> bool:
    return hash(id(r)) % 64 == 0  # let the writer run now and then, as requests would


async def send_exactly(url: str, n: int, concurrency: int = 32) -> int:
    body = {**BODY}
    remaining = iter(range(n))
    ok = 0
    async with httpx.AsyncClient(timeout=30) as http:

        async def worker() -> None:
            nonlocal ok
            for _ in remaining:
                reply = await http.post(url + "/v1/chat/completions", json=body)
                ok += reply.status_code == 200

        await asyncio.gather(*[worker() for _ in range(concurrency)])
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/v1"
    results: dict[str, object] = {}
    argv = [sys.executable, str(REPO / "tests" / "support" / "instant_upstream.py"), str(port)]
    with running(argv, port=port, log=tmp / "up.log", ready_path="/v1/models"):
        proxy = ("--backend", "openai", "--upstream", upstream)
        off_env = {"LORAGATE_RECORD": "false"}
        with (
            gateway(tmp / "a-off", *proxy, env=off_env) as off,
            gateway(tmp / "a-on", *proxy) as on,
        ):
            times = interleaved_latency(off.url + "/v1", on.url + "/v1", 2000, False)
            results["single_client"] = report_added("recording on vs off, one client", *times)
        for label, env in (("off", off_env), ("on", {})):
            with gateway(tmp / label, *proxy, env=env) as server:
                wrk_latency(server.url + "/v1/chat/completions", 2)  # warm up
                results[label] = wrk_latency(server.url + "/v1/chat/completions", args.seconds)
            p50, p99, rps = results[label]
            print(f"recording {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {rps:.0f} req/s")
        difference = results["on"][0] - results["off"][0]
        print(f"p50 difference (on - off): {difference:+.2f} ms")
        with gateway(tmp / "count", *proxy) as server:
            ok = asyncio.run(send_exactly(server.url, args.requests))
        conn = sqlite3.connect(tmp / "count" / "home" / "store.db")
        stored = conn.execute(
            "SELECT count(*) FROM interactions WHERE status = 'complete' "
            "AND length(request) > 0 AND response_text = 'ok'"
        ).fetchone()[0]
        conn.close()
        print(f"{args.requests} requests sent, {ok} answered, {stored} interactions stored")
        results["count"] = {"sent": args.requests, "answered": ok, "stored": stored}
    rate = asyncio.run(write_rate(50_000))
    print(f"recorder write rate: {rate:.0f} interactions/s")
    results["write_rate"] = rate
    agent_rate = asyncio.run(write_rate(10_000, agent=True))
    print(f"recorder write rate, 8 kB agent requests: {agent_rate:.0f} interactions/s")
    results["write_rate_agent"] = agent_rate
    if postgres_bin() is not None:
        with postgres_cluster() as cluster:
            pg_rate = asyncio.run(write_rate(20_000, store_url=fresh_database(cluster)))
        print(f"recorder write rate, PostgreSQL: {pg_rate:.0f} interactions/s")
        results["write_rate_postgresql"] = pg_rate
    results["p50_difference_ms"] = difference
    print(json.dumps(results))


if __name__ == "__main__":
    main()
