"""How long `loragate dataset build` takes over a big record.

Fills a store with Continue-shaped agent work (an ~8 kB system prompt and 11 tools on every
request, conversations of 5 turns: 3 tool calls with their results, a failed call, a final
answer; feedback on some) and times the whole build, writing included.

    python tests/bench/bench_dataset.py [--interactions 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gateway.generation import Assembled, AssembledCall, Finish, GenerationRequest
from gateway.recording.records import FeedbackRecord, InteractionRecord, prepare
from gateway.store import Store
from tests.support.servers import REPO
from trainer.data.dataset import BuildOptions, build, gguf_token_counter

SYSTEM = (REPO / "gateway" / "backends" / "llamacpp.py").read_text()[:8000]
TOOLS = [
    {"type": "function", "function": {"name": name, "description": f"The {name} tool.",
     "parameters": {"type": "object", "properties": {"arg": {"type": "string"}},
                    "required": ["arg"]}}}
    for name in ("Read", "Write", "List", "Bash", "Fetch", "Checklist", "CheckBackgroundJob",
                 "AskQuestion", "Edit", "Exit", "Skills")
]  # fmt: skip


def conversation(n: int, start: float) -> list[object]:
    """5 interactions (and 1 feedback) of one agent conversation."""
    messages: list[dict] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Task {n}: fix the failing test in module_{n}.py"},
    ]
    out: list[object] = []
    for turn in range(5):
        iid = f"ia_{n}_{turn}"
        if turn < 4:
            name = TOOLS[(n + turn) % len(TOOLS)]["function"]["name"]
            call = AssembledCall(f"call_{n}_{turn}", name, json.dumps({"arg": f"module_{n}.py"}))
            answer = Assembled(text="", calls=[call], finish=Finish("tool_calls", 2000, 20))
        else:
            answer = Assembled(text=f"Fixed module_{n}.py.", finish=Finish("stop", 2000, 8))
        request = GenerationRequest(model="m", messages=list(messages), tools=TOOLS)
        out.append(InteractionRecord(
            id=iid, created_at=start + turn, api="chat", workload="continue",
            model_requested="continue", version="m@v0", request=request, answer=answer,
            status="complete",
        ))  # fmt: skip
        if answer.calls:
            c = answer.calls[0]
            messages.append({"role": "assistant", "content": "", "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}]})  # fmt: skip
            result = "Error: exit code 1" if turn == 2 else f"contents of module_{n}.py"
            messages.append({"role": "tool", "tool_call_id": c.id, "content": result})
    if n % 3 == 0:
        out.append(FeedbackRecord(f"ia_{n}_4", start + 6, accepted=True))
    return out


def fill(store: Store, interactions: int) -> None:
    started = time.monotonic()
    batch: list[dict] = []
    for n in range(interactions // 5):
        batch.extend(prepare(r) for r in conversation(n, 1_790_000_000.0 + 10 * n))
        if len(batch) >= 2000:
            store.write(batch)
            batch = []
    store.write(batch)
    print(f"filled {interactions} interactions in {time.monotonic() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=100_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp())
    store = Store(home / "store.db")
    fill(store, args.interactions)
    from gateway.backends.embedded import default_model_path

    started = time.monotonic()
    dataset = build(
        store, home, BuildOptions(), count_tokens=gguf_token_counter(default_model_path())
    )
    elapsed = time.monotonic() - started
    counts = dataset.manifest["counts"]
    print(
        f"dataset build over {args.interactions} interactions: {elapsed:.1f} s "
        f"({counts['train']} train, {counts['eval']} eval, {counts['negatives']} negatives, "
        f"~{dataset.manifest['tokens']['train']:,} train tokens)"
    )
    print(json.dumps({"interactions": args.interactions, "build_seconds": elapsed}))


if __name__ == "__main__":
    main()
