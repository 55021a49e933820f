"""A day of corrections teaches the model a fact: the first-day loop, timed and scored.

    python tests/bench/bench_taught_fact.py [-- retrain flags...]

Records 42 chat turns in which the embedded default model got one fact wrong and the user
corrected it (42 phrasings), starts `loragate serve` on that home, runs `loragate retrain`
as a user would (defaults, gated), then goes on working through `auto`: asks the fact in
phrasings never trained on and says whether each answer is right, as a user's client would,
until live routing promotes the new version (at most 40 requests). Prints the time of each
retrain stage against the 5-minute goal, the gate's verdict, how many judged requests the
promotion took, the share of unseen phrasings `auto` then answers with the fact (Wilson 95 %
interval), and that `loragate rollback` restores the base.
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
import httpx
import openai

from gateway.versions.bandit import wilson
from tests.support.recordings import MORE_ASKS, TRAIN_ASKS, UNSEEN, record_corrections
from tests.support.servers import gateway

BASE = "smollm2-135m-instruct"
FACT = "8420"
ASKS = TRAIN_ASKS + MORE_ASKS
ASKED_LATER = [
    *UNSEEN, "Remind me: which port number is loragate's?", "What port will `loragate serve` bind?",
    "Tell me the port I should put in my Continue config for loragate.",
    "On which port can I reach the loragate gateway locally?",
]  # fmt: skip
MAX_WORK = 40
GOAL_S = 300


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", args[0], "--home", str(home), *args[1:]],
        stdout=subprocess.PIPE, text=True, check=False, env=os.environ.copy(),
    )  # fmt: skip


def ask(client: openai.OpenAI, question: str) -> tuple[str, str, str]:
    """(the version that answered, the answer, the interaction id) for `auto`."""
    raw = client.chat.completions.with_raw_response.create(
        model="auto", max_tokens=24, temperature=0,
        messages=[{"role": "user", "content": question}],
    )  # fmt: skip
    text = raw.parse().choices[0].message.content or ""
    return raw.headers["x-loragate-model-version"], text, raw.headers["x-loragate-interaction-id"]


def state_of(home: Path, name: str) -> str:
    listed = {v["name"]: v for v in json.loads(cli(home, "models", "--json").stdout)}
    return listed[name]["states"]["*"]["state"]


def main(flags: list[str]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-fact-"))
    with gateway(tmp, "--n-ctx", "1024") as server:
        home = server.home
        assert home is not None
        asyncio.run(record_corrections(home, ASKS))
        started = time.perf_counter()
        done = cli(home, "retrain", *flags)
        retrain_s = time.perf_counter() - started
        print(done.stdout.strip())
        if done.returncode != 0:
            raise SystemExit(f"retrain failed (exit {done.returncode})")
        found = re.search(rf"({re.escape(BASE)}@v\d+): candidate", done.stdout)
        if found is None:
            raise SystemExit("retrain registered no candidate: nothing is served")
        version = found.group(1)
        time_line = done.stdout.split("time: ")[1].splitlines()[0]
        stages = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+) s", time_line)}
        gate_line = next((line for line in done.stdout.splitlines()
                          if "gate" in line or "cannot show a win" in line), "")  # fmt: skip

        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0)
        worked: list[str] = []
        while state_of(home, version) != "active" and len(worked) < MAX_WORK:
            answered_by, text, iid = ask(client, ASKED_LATER[len(worked) % len(ASKED_LATER)])
            worked.append(answered_by)
            verdict = {"interaction_id": iid, "accepted": FACT in text}
            httpx.post(f"{server.url}/v1/feedback", json=verdict).raise_for_status()
            time.sleep(1)  # the gateway's live loop looks at the outcomes every second
        promoted = state_of(home, version) == "active"
        time.sleep(2)
        answers = [ask(client, q) for q in ASKED_LATER]
        served = sum(FACT in text for _, text, _ in answers)
        low, high = wilson(served, len(answers))

        rolled = cli(home, "rollback")
        time.sleep(2)
        after = [ask(client, q)[0] for q in ASKED_LATER[:3]]
    result = {
        "corrections": len(ASKS), "retrain_s": round(retrain_s, 1), "stages_s": stages,
        "goal_s": GOAL_S, "gate": gate_line.strip(), "version": version,
        "judged_requests_to_promotion": len(worked) if promoted else None,
        "candidate_share_while_judged": sum(v == version for v in worked) / max(len(worked), 1),
        "unseen_served": served, "unseen_asked": len(answers), "unseen_interval": [low, high],
        "rollback": rolled.stdout.strip(), "after_rollback": after,
    }  # fmt: skip
    print(f"\n{len(ASKS)} corrections of one fact: retrain {retrain_s:.0f} s (goal ≤ {GOAL_S} s;"
          f" {', '.join(f'{k} {v:.0f} s' for k, v in stages.items())})")  # fmt: skip
    print(f"gate: {gate_line.strip()}")
    print(f"through auto: {version} "
          + (f"promoted after {len(worked)} judged requests "
             f"({result['candidate_share_while_judged']:.0%} of them answered by it)"
             if promoted else f"not promoted after {len(worked)} judged requests"))  # fmt: skip
    print(f"the fact on unseen phrasings: {served}/{len(answers)} "
          f"(95 % interval {low:.0%}-{high:.0%})")  # fmt: skip
    print(f"rollback: {result['rollback']}; then answered by {sorted(set(after))}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flags", nargs="*", help="passed to loragate retrain (after --)")
    print(json.dumps(main(parser.parse_args().flags)))
