"""What the gateway adds in front of an instant OpenAI-compatible upstream.

Prints, measured in one run on this machine:
  - added latency for one client, direct and proxied calls interleaved (p50, p99);
  - added time to first byte of a streamed answer (p50);
  - throughput at 32 connections with wrk (Debian package `wrk`), gateway vs upstream alone,
    and vs LiteLLM's proxy (one worker) in front of the same upstream when `litellm[proxy]`
    is installed (its dependencies clash with ours: give it a venv of its own).

    python -m venv /tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]'
    python tests/bench/bench_proxy.py [--requests 2000] [--seconds 10] \
        [--litellm /tmp/litellm/bin/litellm]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.servers import free_port, gateway, running

BODY = {"model": "instant", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
HERE = Path(__file__).parent
# Every load request carries it; only LiteLLM checks it (it refuses to start without one).
LITELLM_KEY = "sk-" + "loragate-bench-" + "7f3a9c2e5b8d41f6a0c9e2b7d4f8a1c3"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def interleaved_latency(direct: str, proxied: str, n: int, stream: bool) -> tuple[list, list]:
    body = {**BODY, "stream": stream}
    times: dict[str, list[float]] = {direct: [], proxied: []}
    with httpx.Client(timeout=30) as client:
        for _ in range(50):  # warm both paths
            for base in (direct, proxied):
                client.post(base + "/chat/completions", json=body).read()
        for _ in range(n):
            for base in (direct, proxied):
                started = time.perf_counter()
                with client.stream("POST", base + "/chat/completions", json=body) as reply:
                    chunks = reply.iter_raw()
                    next(chunks)
                    first = time.perf_counter()
                    for _ in chunks:
                        pass
                times[base].append((first if stream else time.perf_counter()) - started)
    return times[direct], times[proxied]


def report_added(label: str, direct: list[float], proxied: list[float]) -> dict[str, float]:
    added = [(p - d) * 1000 for d, p in zip(direct, proxied, strict=True)]
    out = {
        "p50_ms": statistics.median(added),
        "p99_ms": percentile(added, 0.99),
        "direct_p50_ms": statistics.median(direct) * 1000,
    }
    print(
        f"{label}: added p50 {out['p50_ms']:.2f} ms, p99 {out['p99_ms']:.2f} ms "
        f"(baseline p50 {out['direct_p50_ms']:.2f} ms)"
    )
    return out


def wrk(url: str, seconds: int, connections: int = 32, *extra: str) -> str:
    """wrk's report for POSTing `BODY` to `url` for `seconds`."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {LITELLM_KEY}"\n'
        f"wrk.body = [[{json.dumps(BODY)}]]\n"
    )
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", *extra, "-s", str(script), url]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def wrk_rps(url: str, seconds: int, connections: int = 32) -> tuple[float, int]:
    out = wrk(url, seconds, connections)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    bad = int(errors.group(1)) if errors else 0
    if socket_errors:
        bad += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))
    return rps, bad


def litellm_proxy(exe: Path, upstream: str, tmp: Path):
    if not exe.exists():
        return None
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: instant\n    litellm_params:\n"
        f"      model: openai/instant\n      api_base: {upstream}\n      api_key: none\n"
        f"general_settings:\n  master_key: {LITELLM_KEY}\n"
    )
    port = free_port()
    return running(
        [str(exe), "--config", str(config), "--port", str(port), "--num_workers", "1"],
        port=port,
        log=tmp / "litellm.log",
        ready_path="/health/liveliness",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--litellm", type=Path, default=Path(sys.executable).parent / "litellm")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    upstream_cmd = [sys.executable, str(HERE.parent / "support" / "instant_upstream.py"), str(port)]
    upstream = f"http://127.0.0.1:{port}/v1"
    results: dict[str, object] = {}
    with (
        running(upstream_cmd, port=port, log=tmp / "up.log", ready_path="/v1/models"),
        gateway(tmp, "--backend", "openai", "--upstream", upstream) as proxy,
    ):
        proxied = proxy.url + "/v1"
        results["latency"] = report_added(
            "non-streaming", *interleaved_latency(upstream, proxied, args.requests, False)
        )
        results["ttfb"] = report_added(
            "streaming TTFB", *interleaved_latency(upstream, proxied, args.requests // 2, True)
        )
        base_rps, _ = wrk_rps(upstream + "/chat/completions", args.seconds)
        rps, errors = wrk_rps(proxied + "/chat/completions", args.seconds)
        print(
            f"throughput at 32 connections: gateway {rps:.0f} req/s ({errors} errors), "
            f"upstream alone {base_rps:.0f} req/s"
        )
        results["throughput"] = {"gateway_rps": rps, "errors": errors, "upstream_rps": base_rps}
        lite = litellm_proxy(args.litellm, upstream, tmp)
        if lite is None:
            print("LiteLLM comparison skipped: pip install 'litellm[proxy]' to run it")
        else:
            with lite as server:
                lite_rps, lite_errors = wrk_rps(server.url + "/v1/chat/completions", args.seconds)
            print(
                f"LiteLLM proxy {lite_rps:.0f} req/s ({lite_errors} errors): gateway is "
                f"{rps / lite_rps:.1f}x"
            )
            results["litellm_rps"] = lite_rps
    print(json.dumps(results))


if __name__ == "__main__":
    main()
