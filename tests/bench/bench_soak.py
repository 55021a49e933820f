"""Minutes of mixed traffic against two gateways, with a hot swap, a rollback and a kill -9.

    python tests/bench/bench_soak.py [--minutes 10]

Two gateways run side by side: one on the embedded engine (SmolLM2-135M), one in front of an
instant OpenAI-compatible upstream. Clients send what real ones send, and what they should not:
whole answers and streams (OpenAI and Ollama APIs), streams dropped after two chunks, whole
answers given up after half a second, malformed bodies, unknown models, feedback on earlier
answers and Continue dev-data events. A quarter of the way in a copy of the base GGUF is
registered on the embedded gateway and hot-swapped in; at half way `loragate rollback` brings
v0 back; at two thirds the proxy gateway is killed with SIGKILL and restarted on its home.

Prints: requests sent and answered, server errors (5xx or dropped connections outside the
kill; goal 0), records expected (every answer that carried an interaction id, every accepted
feedback) against stored (goal: equal, except answers given within 200 ms of the kill, which
were still in the recorder's queue), p50/p99 latency of whole answers per minute for each
gateway, and RSS and open file descriptors from 30 s after each gateway process last changed
the version it serves (its start, the hot swap, the rollback, the restart: the prompt caches
fill meanwhile, up to `prompt_cache_mb` per loaded version) to the end (goal: less than 10 %
growth), with the RSS timeline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import httpx

from gateway.backends.embedded import default_model_path
from tests.support.servers import REPO, Server, free_port, gateway, running

ASK = [{"role": "user", "content": "Name one colour."}]
KILL_WINDOW = 0.2  # answers this close before the kill may still be queued, not stored
SETTLE = 30  # seconds after a version change (start, swap, rollback, restart) before comparing


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    refused: int = 0  # 4xx, as the request deserved
    server_errors: list[str] = field(default_factory=list)
    records: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    feedback: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class Gateway:
    name: str
    server: Server
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (time, rss, fds)
    down: bool = False
    killed_at: float | None = None
    loaded_at: float = 0.0  # when it last changed what it serves: prompt caches fill after that


def usage(pid: int) -> tuple[int, int]:
    """(RSS in bytes, open file descriptors) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) * 1024 for line in status.splitlines()
               if line.startswith("VmRSS:"))  # fmt: skip
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def one(http: httpx.AsyncClient, gw: Gateway, tally: Tally, started: float) -> None:
    """One request of a kind drawn at random, tallied."""
    url = gw.server.url
    model = "auto" if gw.name == "embedded" else "instant"
    kind = random.choices(
        ["whole", "stream", "ollama", "dropped", "given_up", "malformed", "unknown", "feedback",
         "devdata"], weights=[30, 20, 10, 8, 5, 8, 5, 10, 4],
    )[0]  # fmt: skip
    body = {"model": model, "messages": ASK, "max_tokens": 8}
    tally.sent += 1
    at = time.monotonic()
    try:
        if kind == "whole":
            reply = await http.post(f"{url}/v1/chat/completions", json=body)
            _expect(reply, 200, gw, tally, kind)
            tally.latency[gw.name].append((at - started, time.monotonic() - at))
        elif kind == "ollama":
            ollama_body = {"model": model, "messages": ASK, "stream": False,
                           "options": {"num_predict": 8}}  # fmt: skip
            reply = await http.post(f"{url}/api/chat", json=ollama_body)
            _expect(reply, 200, gw, tally, kind)
        elif kind in ("stream", "dropped"):
            streamed = {**body, "stream": True, "max_tokens": 32}
            async with http.stream("POST", f"{url}/v1/chat/completions", json=streamed) as reply:
                chunks = 0
                async for _ in reply.aiter_lines():
                    chunks += 1
                    if kind == "dropped" and chunks == 2:
                        break
            _expect(reply, 200, gw, tally, kind)
        elif kind == "given_up":
            with contextlib.suppress(httpx.TimeoutException):
                await http.post(f"{url}/v1/chat/completions", timeout=0.5,
                                json={**body, "max_tokens": 200})  # fmt: skip
            tally.answered += 1
        elif kind == "malformed":
            reply = await http.post(f"{url}/v1/chat/completions", content=b'{"model": [',
                                    headers={"content-type": "application/json"})  # fmt: skip
            _expect(reply, 400, gw, tally, kind)
        elif kind == "unknown":
            reply = await http.post(f"{url}/v1/chat/completions",
                                    json={**body, "model": "nope-9000"})  # fmt: skip
            _expect(reply, 404, gw, tally, kind)
        elif kind == "feedback":
            earlier = tally.records[gw.name]
            if not earlier:
                return
            iid = random.choice(earlier)[0]
            reply = await http.post(f"{url}/v1/feedback",
                                    json={"interaction_id": iid, "accepted": True})  # fmt: skip
            if reply.status_code == 200:
                tally.feedback[gw.name].append(iid)
            _expect(reply, (200, 404), gw, tally, kind)  # 404: its record died in the kill
        else:
            event = {"name": "chatFeedback", "data": {"feedback": True, "completionOptions": {}}}
            reply = await http.post(f"{url}/devdata", json=event)
            _expect(reply, 200, gw, tally, kind)
    except httpx.TransportError as exc:
        if not gw.down:
            tally.server_errors.append(f"{gw.name} {kind}: {type(exc).__name__}: {exc}")


def _expect(
    reply: httpx.Response, status: int | tuple[int, ...], gw: Gateway, tally: Tally, kind: str
) -> None:
    wanted = status if isinstance(status, tuple) else (status,)
    if reply.status_code in wanted:
        if reply.status_code < 400:
            tally.answered += 1
        else:
            tally.refused += 1
    elif reply.status_code >= 500 or not gw.down:
        tally.server_errors.append(f"{gw.name} {kind}: HTTP {reply.status_code}")
    iid = reply.headers.get("x-loragate-interaction-id")
    if reply.status_code == 200 and kind in ("whole", "ollama", "stream", "dropped") and iid:
        tally.records[gw.name].append((iid, time.monotonic()))


async def clients(gateways: list[Gateway], tally: Tally, seconds: float, started: float) -> None:
    async with httpx.AsyncClient(timeout=60) as http:

        async def worker(gw: Gateway) -> None:
            while time.monotonic() - started < seconds:
                if gw.down:
                    await asyncio.sleep(0.05)
                    continue
                await one(http, gw, tally, started)

        # the embedded engine answers one request at a time: two clients keep it busy
        await asyncio.gather(*[worker(gateways[0]) for _ in range(2)],
                             *[worker(gateways[1]) for _ in range(6)])  # fmt: skip


def cli(home: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", args[0], "--home", str(home),
                           *args[1:]], capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


async def events(embedded: Gateway, proxy: Gateway, restart: callable, seconds: float,
                 started: float, tmp: Path) -> list[str]:  # fmt: skip
    """The hot swap, the rollback, the kill -9 and restart, at their moments."""
    said = []
    home = embedded.server.home
    assert home is not None
    copy = tmp / "swapped.gguf"
    shutil.copy(default_model_path(), copy)
    await _until(started, seconds / 4)
    said.append(f"{time.monotonic() - started:.0f} s: hot swap: " + await asyncio.to_thread(
        cli, home, "models", "register", str(copy)))  # fmt: skip
    embedded.loaded_at = time.monotonic()
    await _until(started, seconds / 2)
    said.append(f"{time.monotonic() - started:.0f} s: rollback: "
                + await asyncio.to_thread(cli, home, "rollback"))  # fmt: skip
    embedded.loaded_at = time.monotonic()  # another version's caches fill from here
    await _until(started, seconds * 2 / 3)
    proxy.down = True
    proxy.killed_at = time.monotonic()
    proxy.server.process.send_signal(signal.SIGKILL)
    proxy.server.process.wait()
    said.append(f"{time.monotonic() - started:.0f} s: kill -9 of the proxy gateway")
    proxy.server = await asyncio.to_thread(restart)
    proxy.loaded_at = time.monotonic()
    proxy.samples.append((time.monotonic(), *usage(proxy.server.process.pid)))
    proxy.down = False
    said.append(f"{time.monotonic() - started:.0f} s: proxy gateway restarted on its home")
    return said


async def _until(started: float, at: float) -> None:
    await asyncio.sleep(max(0.0, started + at - time.monotonic()))


async def monitor(gateways: list[Gateway], seconds: float, started: float) -> None:
    while time.monotonic() - started < seconds:
        for gw in gateways:
            if not gw.down and gw.server.process.poll() is None:
                gw.samples.append((time.monotonic(), *usage(gw.server.process.pid)))
        await asyncio.sleep(5)


def stored(home: Path, table: str, column: str, ids: list[str]) -> set[str]:
    with sqlite3.connect(home / "store.db") as db:
        marks = ",".join("?" * len(ids))
        rows = db.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", ids)
        return {row[0] for row in rows}


def main(minutes: float) -> dict:
    seconds = minutes * 60
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    with ExitStack() as stack:
        port = free_port()
        upstream_argv = [sys.executable, str(REPO / "tests/support/instant_upstream.py"), str(port)]
        stack.enter_context(running(upstream_argv, port=port, log=tmp / "upstream.log",
                                    ready_path="/v1/models"))  # fmt: skip
        upstream = f"http://127.0.0.1:{port}/v1"
        embedded = Gateway("embedded", stack.enter_context(gateway(tmp / "e", "--n-ctx", "1024")))
        proxy_port = free_port()
        proxy_args = ("--backend", "openai", "--upstream", upstream)
        proxy = Gateway("proxy", stack.enter_context(
            gateway(tmp / "p", *proxy_args, port=proxy_port)))  # fmt: skip

        def restart() -> Server:
            return stack.enter_context(gateway(tmp / "p", *proxy_args, port=proxy_port))

        gateways = [embedded, proxy]
        for gw in gateways:
            gw.samples.append((time.monotonic(), *usage(gw.server.process.pid)))
        tally = Tally()

        async def run() -> list[str]:
            started = time.monotonic()
            said, *_ = await asyncio.gather(
                events(embedded, proxy, restart, seconds, started, tmp),
                clients(gateways, tally, seconds, started), monitor(gateways, seconds, started),
            )  # fmt: skip
            return said

        said = asyncio.run(run())
        for gw in gateways:
            gw.samples.append((time.monotonic(), *usage(gw.server.process.pid)))
        homes = {gw.name: gw.server.home for gw in gateways}
    # the gateways were stopped with SIGTERM: their queues are written
    report: dict = {"minutes": minutes, "events": said, "sent": tally.sent,
                    "answered": tally.answered, "refused_as_deserved": tally.refused,
                    "server_errors": tally.server_errors, "gateways": {}}  # fmt: skip
    for gw in gateways:
        expected = tally.records[gw.name]
        home = homes[gw.name]
        assert home is not None
        have = stored(home, "interactions", "id", [iid for iid, _ in expected])
        missing = [(iid, at) for iid, at in expected if iid not in have]
        # answered within 200 ms before the kill, or while the signal was on its way
        near_kill = [m for m in missing if gw.killed_at and gw.killed_at - m[1] <= KILL_WINDOW]
        judged = tally.feedback[gw.name]
        feedback_stored = stored(home, "outcomes", "interaction_id", judged)
        per_minute = defaultdict(list)
        for at, took in tally.latency[gw.name]:
            per_minute[int(at // 60)].append(took)
        life = [s for s in gw.samples if gw.killed_at is None or s[0] > gw.killed_at]
        settled = [s for s in life if s[0] >= max(life[0][0], gw.loaded_at) + SETTLE]
        (_, rss0, fd0), (_, rss1, fd1) = (settled or life)[0], life[-1]
        report["gateways"][gw.name] = {
            "records_expected": len(expected),
            "records_stored": len(expected) - len(missing),
            "missing_within_200ms_of_kill": len(near_kill),
            "missing_otherwise": len(missing) - len(near_kill),
            "missing_s_before_kill": [
                round(gw.killed_at - at, 3) for _, at in missing if gw.killed_at
            ],
            "feedback_expected": len(set(judged)),
            "feedback_stored": len(feedback_stored),
            "latency_p50_p99_s": {
                m: (statistics.median(v), _p99(v)) for m, v in sorted(per_minute.items())
            },
            "rss_mb": (rss0 / 1e6, rss1 / 1e6),
            "fds": (fd0, fd1),
            "rss_timeline_mb": [round(rss / 1e6) for _, rss, _ in gw.samples[::6]],
        }
    _print(report)
    return report


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _print(report: dict) -> None:
    print(*report["events"], sep="\n")
    print(f"{report['minutes']:g} minutes: {report['sent']} requests sent, {report['answered']} "
          f"answered, {report['refused_as_deserved']} refused as they deserved; server errors: "
          f"{len(report['server_errors'])} (goal 0)")  # fmt: skip
    for error in report["server_errors"][:10]:
        print("  ", error)
    for name, g in report["gateways"].items():
        print(f"{name}: records {g['records_stored']}/{g['records_expected']} stored "
              f"({g['missing_within_200ms_of_kill']} missing within 200 ms of the kill, "
              f"{g['missing_otherwise']} otherwise; goal 0); feedback "
              f"{g['feedback_stored']}/{g['feedback_expected']}")  # fmt: skip
        for minute, (p50, p99) in g["latency_p50_p99_s"].items():
            print(f"  minute {minute + 1}: whole answers p50 {p50 * 1000:.0f} ms, "
                  f"p99 {p99 * 1000:.0f} ms")  # fmt: skip
        (rss0, rss1), (fd0, fd1) = g["rss_mb"], g["fds"]
        print(f"  RSS {rss0:.0f} → {rss1:.0f} MB ({(rss1 / rss0 - 1):+.0%}), open files "
              f"{fd0} → {fd1} ({(fd1 / fd0 - 1):+.0%}) from "
              + (f"{SETTLE} s after it last changed versions" if g["settled"]
                 else "its start (the run is too short to settle)")
              + " to the end; goal: < +10 %")  # fmt: skip
        print(f"  RSS every 30 s: {' '.join(map(str, g['rss_timeline_mb']))} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    print(json.dumps(main(parser.parse_args().minutes), default=str))
