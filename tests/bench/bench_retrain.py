"""`loragate retrain` from the store to a served candidate, timed.

    python tests/bench/bench_retrain.py [--examples 200] [-- retrain flags...]

Records `--examples` accepted Continue-CLI-shaped tool calls (~1,900-token prompts: the
system prompt and 11 tools) into a fresh home, starts `loragate serve` on it, runs the real
`loragate retrain` and waits until the gateway lists and answers the new candidate. Prints
the time of each stage and the total against the 10-minute goal, and the promotion gate's
verdict. The gate is off by default here (`--no-gate`: the figure is the time to a served
candidate; with 8 held-out items the gate rarely sees a difference beyond noise); pass
`-- ` with no flags to run it gated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import openai

from gateway.generation import Assembled, AssembledCall, Finish, GenerationRequest
from gateway.recording.records import FeedbackRecord, InteractionRecord
from tests.support import agent_tasks
from tests.support.recordings import record
from tests.support.servers import gateway

BASE = "smollm2-135m-instruct"


async def record_calls(home: Path, n: int) -> None:
    """`n` accepted tool calls of the Continue CLI's shape."""
    now = time.time() - n
    calls = []
    for i, example in enumerate(agent_tasks.examples(n, seed=0)):
        *asked, answer = example["messages"]
        call = answer["tool_calls"][0]["function"]
        made = AssembledCall(answer["tool_calls"][0]["id"], call["name"], call["arguments"])
        calls.append(InteractionRecord(
            id=f"ia_{i}", created_at=now + i, api="chat", workload="continue",
            model_requested="continue", version=f"{BASE}@v0", status="complete",
            request=GenerationRequest(model="continue", messages=asked, tools=example["tools"]),
            answer=Assembled(text="", calls=[made], finish=Finish("tool_calls", 1900, 20)),
        ))  # fmt: skip
    await record(home, calls, [FeedbackRecord(c.id, now + n, accepted=True) for c in calls])


async def wait_served(url: str, version: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    while version not in [m.id for m in (await client.models.list()).data]:
        await asyncio.sleep(0.1)
    await client.chat.completions.create(
        model=version, max_tokens=4, messages=[{"role": "user", "content": "hi"}]
    )


def main(n: int, flags: list[str]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    with gateway(tmp, "--n-ctx", "4096") as server:
        assert server.home is not None
        asyncio.run(record_calls(server.home, n))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "retrain", "--home", str(server.home), *flags],
            stdout=subprocess.PIPE, text=True, check=False,
            env={**os.environ, "LORAGATE_PORT": str(server.port)},
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"retrain failed (exit {done.returncode})")
        retrained = time.perf_counter() - started
        version = re.search(rf"({re.escape(BASE)}@v\d+): candidate", done.stdout)
        assert version is not None, done.stdout
        asyncio.run(wait_served(server.url, version.group(1)))
        total = time.perf_counter() - started
    stages = dict(re.findall(r"(\w+) (\d+) s", done.stdout.split("time: ")[1].splitlines()[0]))
    result = {"examples": n, "retrain_s": round(retrained, 1), "to_served_s": round(total, 1),
              "stages_s": {k: int(v) for k, v in stages.items()},
              "goal_s": 600, "summary": done.stdout.strip()}  # fmt: skip
    print(done.stdout.strip())
    print(f"{n} recorded examples: retrain {retrained:.0f} s, served {total:.0f} s after the "
          f"command started (goal: under 600 s)")  # fmt: skip
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("flags", nargs="*", help="passed to loragate retrain (after --)")
    args = parser.parse_args()
    flags = args.flags if "--" in sys.argv else ["--no-gate"]
    print(json.dumps(main(args.examples, flags)))
