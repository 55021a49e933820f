"""What LoRA training costs on this machine, and what the shared-prefix batches buy.

    python tests/bench/bench_train.py throughput [--rounds 2]
        The trainer's step against a bare peft forward/backward loop on the same batches
        (full sequences, HF's own loss), alternated; prints real (non-padding) tokens/s of
        both and their ratio.

    python tests/bench/bench_train.py prefix [--examples 200] [--modes shared,full]
                                             [--epochs 1] [--batch-size 8]
        Continue-CLI-shaped examples (~1,900 tokens, 1,832 of them the same system prompt and
        tools): one epoch per mode, its time, and held-out accuracy (right tool, right call)
        by greedy decoding, the base model's too.

    python tests/bench/bench_train.py compare SHARED_ADAPTER FULL_ADAPTER [--examples 200]
        Two adapters `prefix` trained (in its runs' folders) on more held-out requests, paired
        item by item.

Both train the real SmolLM2-135M-Instruct (converted once from the served GGUF).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gateway.backends.embedded import default_model_path
from tests.support import agent_tasks
from trainer.data import replay
from trainer.lora import base_model as bases
from trainer.lora.batches import Batch, make_batches, prepare_examples
from trainer.lora.encode import IGNORE
from trainer.lora.recipe import Recipe
from trainer.lora.runs import Run
from trainer.lora.torch_loop import LoraModel, train

HOME = Path(tempfile.gettempdir()) / "loragate-bench-home"
_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)


def scratch_run() -> Run:
    """A run folder for a benchmark's training (not registered in any store)."""
    return Run.new(HOME, dataset_hash="bench", base="smollm2", engine="torch", recipe={})


def base_dir() -> Path:
    return bases.resolve(default_model_path(), HOME)


def bare_step(model: LoraModel, batches: list[Batch], optimizer: Any) -> tuple[int, float]:
    """A plain peft loop: whole sequences right-padded, `model(..., labels=)`."""
    torch = model.torch
    tokens, started = 0, time.perf_counter()
    for batch in batches:
        width = max(len(e.input_ids) for e in batch.items)
        ids = torch.zeros((len(batch.items), width), dtype=torch.long)
        labels = torch.full((len(batch.items), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch.items), width), dtype=torch.long)
        for row, e in enumerate(batch.items):
            ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
            labels[row, : len(e.labels)] = torch.tensor(e.labels)
            mask[row, : len(e.input_ids)] = 1
        loss = model.model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch.real_tokens
    return tokens, time.perf_counter() - started


def throughput(rounds: int) -> dict[str, Any]:
    recipe = Recipe(shared_prefix=False, threads=2, learning_rate=1e-4, epochs=1)
    data = [{**r, "id": f"r{i}", "targets": [len(r["messages"]) - 1]}
            for i, r in enumerate(replay.load())]  # fmt: skip
    data += agent_tasks.examples(8, seed=1)
    ours, bare = [], []
    for _ in range(rounds):
        model = LoraModel(base_dir(), recipe)
        encoded, _ = prepare_examples(model.tokenizer, data, recipe)
        batches = make_batches(encoded, recipe)
        metrics = train(model, batches, [], recipe, scratch_run(), progress=False)
        ours.append(metrics["tokens_per_s"])
        model = LoraModel(base_dir(), recipe)
        trainable = [p for p in model.model.parameters() if p.requires_grad]
        tokens, seconds = bare_step(model, batches, model.torch.optim.AdamW(trainable, lr=1e-4))
        bare.append(tokens / seconds)
        print(f"  round: trainer {ours[-1]:.1f} tokens/s, bare peft loop {bare[-1]:.1f}")
    result = {"trainer_tokens_per_s": statistics.median(ours),
              "bare_tokens_per_s": statistics.median(bare)}  # fmt: skip
    result["ratio"] = result["trainer_tokens_per_s"] / result["bare_tokens_per_s"]
    print(f"trainer {result['trainer_tokens_per_s']:.1f} tokens/s, bare peft loop "
          f"{result['bare_tokens_per_s']:.1f} tokens/s: ratio {result['ratio']:.2f}")  # fmt: skip
    return result


def accuracy(model: LoraModel, held_out: list[dict[str, Any]]) -> dict[str, float]:
    hits = calls(model, held_out)
    n = len(held_out)
    return {"right_tool": sum(t for t, _ in hits) / n, "right_call": sum(c for _, c in hits) / n,
            "n": n}  # fmt: skip


def calls(model: LoraModel, held_out: list[dict[str, Any]]) -> list[tuple[bool, bool]]:
    """Greedy tool calls for held-out requests, (right tool, right call) for each; the shared
    prefix is computed once."""
    torch = model.torch
    tok = model.tokenizer
    model.model.eval()
    ids = [
        list(tok.apply_chat_template(e["messages"][:2], tools=e["tools"],
                                     add_generation_prompt=True, return_dict=True)["input_ids"])
        for e in held_out
    ]  # fmt: skip
    shared = 0
    while all(len(x) > shared and x[shared] == ids[0][shared] for x in ids):
        shared += 1
    with torch.no_grad():
        prefix = model.causal(input_ids=torch.tensor([ids[0][:shared]]), use_cache=True)
    hits = []
    for example, x in zip(held_out, ids, strict=True):
        cache = copy.deepcopy(prefix.cache)
        with torch.no_grad():
            out = model.causal.generate(
                input_ids=torch.tensor([x]), cache=cache, max_new_tokens=48,
                do_sample=False, pad_token_id=tok.eos_token_id,
            )  # fmt: skip
        text = tok.decode(out[0][len(x) :], skip_special_tokens=False)
        want = example["messages"][2]["tool_calls"][0]["function"]
        match = _CALL.search(text)
        try:
            got = json.loads(match.group(1)) if match else {}
        except ValueError:
            got = {}
        tool = got.get("name") == want["name"]
        hits.append((tool, tool and got.get("arguments") == json.loads(want["arguments"])))
    model.model.train()
    return hits


def compare(adapters: list[Path], n: int) -> dict[str, Any]:
    """Adapters trained by `prefix` (their run folders' `adapter/`), on `n` held-out requests,
    paired item by item: rates, and where the first and the second differ."""
    held_out = agent_tasks.examples(n, seed=99)
    hits = {}
    for adapter in adapters:
        model = LoraModel(base_dir(), Recipe(threads=2), adapter=adapter)
        hits[str(adapter)] = calls(model, held_out)
        right = hits[str(adapter)]
        print(f"{adapter}: right tool {sum(t for t, _ in right) / n:.3f}, right call "
              f"{sum(c for _, c in right) / n:.3f} (n={n})", flush=True)  # fmt: skip
    first, second = (hits[str(a)] for a in adapters[:2])
    paired = {
        kind: {"first_only": sum(a[i] and not b[i] for a, b in zip(first, second, strict=True)),
               "second_only": sum(b[i] and not a[i] for a, b in zip(first, second, strict=True))}
        for i, kind in enumerate(("right_tool", "right_call"))
    }  # fmt: skip
    print(f"paired (first vs second): {paired}")
    rates = {
        name: {"right_tool": sum(t for t, _ in v) / n, "right_call": sum(c for _, c in v) / n}
        for name, v in hits.items()
    }
    return {"n": n, "adapters": [str(a) for a in adapters], "paired": paired, "rates": rates}


def prefix(n: int, modes: list[str], epochs: float, batch_size: int) -> dict[str, Any]:
    data = agent_tasks.examples(n, seed=0)
    held_out = agent_tasks.examples(max(n // 5, 20), seed=99)
    results: dict[str, Any] = {}
    base_model = LoraModel(base_dir(), Recipe(threads=2))
    results["base"] = accuracy(base_model, held_out)
    print(f"base model: {results['base']}")
    for mode in modes:
        # Same examples per optimizer step in both modes: whole sequences fit two to a
        # micro-batch (4,096 positions), so full training accumulates gradients over several.
        per_micro = batch_size if mode == "shared" else min(2, batch_size)
        recipe = Recipe.for_model(
            base_model.parameters, shared_prefix=mode == "shared", threads=2, epochs=epochs,
            batch_size=per_micro, grad_accum=batch_size // per_micro,
        )  # fmt: skip
        model = LoraModel(base_dir(), recipe)
        encoded, _ = prepare_examples(model.tokenizer, data, recipe)
        batches = make_batches(encoded, recipe)
        started = time.perf_counter()
        metrics = train(model, batches, [], recipe, scratch_run(), progress=True)
        elapsed = time.perf_counter() - started
        scores = accuracy(model, held_out)
        results[mode] = {"seconds": round(elapsed, 1), "steps": metrics["steps"],
                         "tokens_per_s": metrics["tokens_per_s"], **scores}  # fmt: skip
        print(f"{mode}: {epochs:g} epoch(s) of {n} examples in {elapsed:.0f} s "
              f"({metrics['tokens_per_s']:.0f} tokens/s); held-out {scores}")  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--rounds", type=int, default=2)
    p = sub.add_parser("prefix")
    p.add_argument("--examples", type=int, default=200)
    p.add_argument("--modes", default="shared,full")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    c = sub.add_parser("compare")
    c.add_argument("adapters", nargs=2, type=Path, help="two adapter folders (prefix's runs)")
    c.add_argument("--examples", type=int, default=200)
    args = parser.parse_args()
    if args.part == "throughput":
        result = throughput(args.rounds)
    elif args.part == "compare":
        result = compare(args.adapters, args.examples)
    else:
        result = prefix(args.examples, args.modes.split(","), args.epochs, args.batch_size)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
