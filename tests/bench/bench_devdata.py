"""Continue's dev data, collected: how fast, and what it costs serving.

Prints, measured in one run:
  - `loragate collect continue` over 100,000 dev-data lines (a day's autocompletes, tool
    uses, edits and chat events; 2,000 of them judge recorded answers) into a fresh SQLite
    store: seconds and lines/s (the issue's bar: under 10 s);
  - one client alternating between two gateways in front of the same instant upstream, one
    following a dev-data folder that grows by 100,000 lines while it is measured, one with the
    collector off: the latency the collector adds, p50 and p99.

    python tests/bench/bench_devdata.py [--lines 100000] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from collectors.continue_devdata import DevDataFiles, collect
from gateway.store import Store
from tests.bench.bench_proxy import interleaved_latency, report_added
from tests.support.recordings import chat, record
from tests.support.servers import REPO, free_port, gateway, running

JUDGED = 2_000  # lines that name a recorded answer


def day_of_dev_data(folder: Path, lines: int, start: int = 0) -> None:
    """`lines` events as Continue writes them, spread over the four files it writes most."""
    stamp = datetime.now(UTC).isoformat()
    names = ("autocomplete", "toolUsage", "editOutcome", "chatInteraction")
    files = {name: (folder / f"{name}.jsonl").open("a", encoding="utf-8") for name in names}
    try:
        for i in range(start, start + lines):
            base = {"schema": "0.2.0", "timestamp": stamp, "userId": "u", "userAgent": "bench"}
            if i % 4 == 0:
                completion = f"answer {i}" if i < JUDGED * 4 else f"never served {i}"
                event = {"eventName": "autocomplete", "accepted": i % 8 == 0,
                         "completion": completion, "prefix": "def f():\n    " * 20,
                         "completionId": f"c{i}", "modelName": "auto"}  # fmt: skip
            elif i % 4 == 1:
                event = {"eventName": "toolUsage", "toolCallId": f"call_{i}", "accepted": True,
                         "succeeded": True, "functionName": "read_file"}  # fmt: skip
            elif i % 4 == 2:
                event = {"eventName": "editOutcome", "accepted": False, "completion": f"x{i}",
                         "previousCode": "a = 1\n" * 10, "newCode": "a = 2\n" * 10}  # fmt: skip
            else:
                event = {"eventName": "chatInteraction", "prompt": f"hi {i}", "completion": "hello"}
            files[event["eventName"]].write(json.dumps({**base, **event}) + "\n")
    finally:
        for fh in files.values():
            fh.close()


def collect_rate(lines: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp())
    home, folder = tmp / "home", tmp / "dev_data"
    folder.mkdir()
    now = time.time()
    answered = [chat(f"ia_{i}", f"ask {i}", f"answer {i * 4}", now - 60) for i in range(JUDGED)]
    asyncio.run(record(home, answered, []))
    day_of_dev_data(folder, lines)
    store = Store(home / "store.db")
    started = time.perf_counter()
    report = collect(store, DevDataFiles.open(folder, home))
    seconds = time.perf_counter() - started
    store.close()
    print(f"collect: {report.read.lines:,} lines in {seconds:.1f} s "
          f"({report.read.lines / seconds:,.0f} lines/s); {report}")  # fmt: skip
    return {"lines": report.read.lines, "seconds": seconds, "joined": report.statuses["joined"]}


def serving_cost(lines: int, requests: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp())
    root = tmp / "continue"
    folder = root / "dev_data" / "0.2.0"
    folder.mkdir(parents=True)
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/v1"
    argv = [sys.executable, str(REPO / "tests" / "support" / "instant_upstream.py"), str(port)]
    proxy = ("--backend", "openai", "--upstream", upstream)
    following = {"CONTINUE_GLOBAL_DIR": str(root), "LORAGATE_COLLECT_CONTINUE": "true"}
    with (
        running(argv, port=port, log=tmp / "up.log", ready_path="/v1/models"),
        gateway(tmp / "off", *proxy, env={"LORAGATE_COLLECT_CONTINUE": "false"}) as off,
        gateway(tmp / "on", *proxy, env=following) as on,
    ):
        stop = threading.Event()

        def keep_writing() -> None:  # Continue at work: bursts of events while we measure
            written = 0
            while not stop.is_set() and written < lines:
                day_of_dev_data(folder, 1_000, start=written)
                written += 1_000
                time.sleep(0.05)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            times = interleaved_latency(off.url + "/v1", on.url + "/v1", requests, False)
        finally:
            stop.set()
            writer.join()
        return report_added("collector following a growing folder vs off, one client", *times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()
    results = {"collect": collect_rate(args.lines),
               "serving": serving_cost(args.lines, args.requests)}  # fmt: skip
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
