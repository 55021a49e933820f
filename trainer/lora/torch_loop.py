"""LoRA training with peft + transformers: CUDA with bf16 autocast when present; CPU in fp32,
or under bf16 autocast where the recipe asks for it (`cpu_bf16`) and the CPU has native bf16.

Batches. Examples are grouped by the prefix they share (agent requests repeat the same system
prompt and tool schemas, ~95 % of their tokens), sorted by the length of what follows and cut
into micro-batches by a token budget, so padding stays small. A group's prefix is run once per
micro-batch under `no_grad` with the current LoRA weights, and the suffixes are trained
against its KV cache, packed into one row (`_packed`): the prefix is attended once, not copied
per example, which took a step on the flywheel's agent data from ~16 s to ~10 s on 2 cores. The
prefix never carries loss (system turns are never targets), so this changes which gradients
reach the prefix's own keys and values, nothing else; the design notes measured 6.5x less time
with no loss of held-out tool accuracy.

Loss is computed only where a target token is predicted: the LM head runs on those positions
alone (SmolLM2's vocabulary makes the full logits 4x bigger than the rest of a forward pass).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gateway.errors import TrainingError, TrainingInterrupted
from trainer.lora.base_model import serving_template
from trainer.lora.batches import Batch, padding_waste
from trainer.lora.encode import IGNORE
from trainer.lora.recipe import Recipe


class LoraModel:
    """A base model with LoRA adapters, and the one forward pass both training and
    evaluation use."""

    def __init__(self, base: Path, recipe: Recipe, adapter: Path | None = None) -> None:
        try:
            import torch
            from peft import LoraConfig, PeftModel, get_peft_model
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise TrainingError(
                f"training needs the train extra ({exc.name} is missing): pip install -e '.[train]'"
            ) from exc
        self.torch = torch
        torch.manual_seed(recipe.seed)
        if recipe.threads:
            torch.set_num_threads(recipe.threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.bf16 = self.device == "cuda" or (recipe.cpu_bf16 and _cpu_has_bf16(torch))
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        # a base converted by an older loragate keeps that version's copy of the template
        self.tokenizer.chat_template = serving_template(self.tokenizer.chat_template)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model.config.use_cache = False
        if adapter is not None:
            self.model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
        else:
            config = LoraConfig(
                r=recipe.r, lora_alpha=recipe.alpha, lora_dropout=recipe.dropout,
                target_modules=recipe.target_modules, task_type="CAUSAL_LM",
            )  # fmt: skip
            self.model = get_peft_model(model, config)
        self.model.to(self.device)
        self.causal: Any = self.model.get_base_model()  # the transformers model under peft
        self.parameters = sum(p.numel() for p in model.parameters())
        self._prefixes: dict[tuple[int, ...], list[tuple[Any, Any]]] = {}

    def autocast(self) -> Any:
        return self.torch.autocast(self.device, dtype=self.torch.bfloat16, enabled=self.bf16)

    def loss_sum(self, batch: Batch, *, earlier_prefix: bool = False) -> Any:
        """Summed cross-entropy over the batch's target tokens. `earlier_prefix`: attend to
        the prefix's keys and values as last computed (with the adapter of an earlier step),
        where there are any, instead of computing them again."""
        torch = self.torch
        ids, positions, mask, targets = (_packed if batch.prefix else _padded)(torch, batch)
        ids, positions, mask, targets = (t.to(self.device) for t in (ids, positions, mask, targets))
        inner = self.causal.model  # the decoder stack under the LM head
        with self.autocast():
            cache = self._prefix_cache(batch.prefix, earlier_prefix) if batch.prefix else None
            hidden = inner(
                input_ids=ids, attention_mask=mask, cache=cache,
                position_ids=positions, use_cache=cache is not None,
            ).last_hidden_state  # fmt: skip
            predicts = targets != IGNORE
            logits = self.causal.lm_head(hidden[predicts])
        return torch.nn.functional.cross_entropy(logits.float(), targets[predicts], reduction="sum")

    def forget_prefixes(self) -> None:
        """Drop the prefixes' keys and values kept for reuse: a step that computes them afresh
        keeps only its own, so a later step reuses those of the last such step, no older."""
        self._prefixes.clear()

    def _prefix_cache(self, prefix: list[int], earlier: bool) -> Any:
        """A fresh KV cache holding `prefix` (run under `no_grad`), or (`earlier`) one on the
        keys and values kept since the last `forget_prefixes`."""
        from transformers import DynamicCache

        key = tuple(prefix)
        if not earlier or key not in self._prefixes:
            with self.torch.no_grad():
                ids = self.torch.tensor([prefix], device=self.device)
                cache = self.causal.model(input_ids=ids, use_cache=True).cache
            self._prefixes[key] = [(layer.keys, layer.values) for layer in cache.layers]
        # the suffix's forward appends to the cache it is given: a new one each time
        return DynamicCache(self._prefixes[key])


Inputs = tuple[Any, Any, Any, Any]  # ids, position ids, attention mask, next-token targets


def _padded(torch: Any, batch: Batch) -> Inputs:
    """One row per example, right-padded: a 2-D mask of the real tokens."""
    rows, width = len(batch.items), batch.width
    ids = torch.zeros((rows, width), dtype=torch.long)
    targets = torch.full((rows, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    for row, e in enumerate(batch.items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        targets[row, : n - 1] = torch.tensor(e.labels[1:])  # position t predicts token t+1
        mask[row, :n] = 1
    return ids, torch.arange(width).expand(rows, -1), mask, targets


def _packed(torch: Any, batch: Batch) -> Inputs:
    """The suffixes one after another in a single row behind the prefix's cache, each at the
    positions it has in its own sequence and seeing the prefix and its own earlier tokens only
    (a 4-D boolean mask). The prefix's keys and values are computed and attended once, not
    copied per example: a third of a step's time on agent data."""
    p = len(batch.prefix)
    ids: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    segment: list[int] = []
    for k, e in enumerate(batch.items):
        suffix = e.input_ids[p:]
        ids += suffix
        positions += range(p, p + len(suffix))
        targets += [*e.labels[p + 1 :], IGNORE]  # a suffix's last token predicts nothing
        segment += [k] * len(suffix)
    n = len(ids)
    seg = torch.tensor(segment)
    own = (seg[:, None] == seg[None, :]) & torch.ones((n, n), dtype=torch.bool).tril()
    mask = torch.cat([torch.ones((n, p), dtype=torch.bool), own], dim=1)
    return (torch.tensor([ids]), torch.tensor([positions]), mask[None, None],
            torch.tensor([targets]))  # fmt: skip


def _cpu_has_bf16(torch: Any) -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX); emulated, it is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def train(
    model: LoraModel,
    batches: list[Batch],
    eval_batches: list[Batch],
    recipe: Recipe,
    run: Any,
    *,
    progress: bool = True,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The optimizer loop: resumes from `run.checkpoint` when present, checkpoints every
    `checkpoint_every` steps, and on Ctrl-C saves and raises `TrainingInterrupted`."""
    torch = model.torch
    from tqdm import tqdm

    if not batches:
        raise TrainingError("the dataset has no trainable examples (all empty or too long)")
    total_steps = _total_steps(len(batches), recipe)
    trainable = [p for p in model.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.learning_rate,
                                  weight_decay=recipe.weight_decay)  # fmt: skip
    scheduler = _lr_schedule(torch, optimizer, recipe, total_steps)
    step, stats = 0, {"real_tokens": 0, "computed_tokens": 0, "seconds": 0.0}
    if (run.checkpoint / "state.pt").exists():
        step, stats = _restore(model, optimizer, scheduler, run.checkpoint)
    elif eval_batches:  # the adapter starts as a no-op: this is the base model's eval loss
        stats["base_eval_loss"] = evaluate(model, eval_batches)
    model.model.train()
    bar = tqdm(total=total_steps, initial=step, unit="step", disable=not progress,
               dynamic_ncols=True, desc="training")  # fmt: skip
    smoothed = None
    try:
        for group in _steps(batches, recipe, start=step, total=total_steps):
            started = time.perf_counter()
            earlier = step % recipe.prefix_every != 0  # step: the ones taken before this
            loss_total = _optimizer_step(model, group, trainable, optimizer, scheduler, earlier)
            step += 1
            _count(stats, group, time.perf_counter() - started)
            smoothed = loss_total if smoothed is None else 0.9 * smoothed + 0.1 * loss_total
            rate = stats["real_tokens"] / max(stats["seconds"], 1e-9)
            entry = {"step": step, "loss": round(loss_total, 5),
                     "lr": scheduler.get_last_lr()[0], "tokens_per_s": round(rate, 1)}  # fmt: skip
            run.log_step(entry)
            if on_step is not None:
                on_step(entry)
            bar.set_postfix(loss=f"{smoothed:.3f}", tok_s=f"{rate:.0f}")
            bar.update(1)
            if step % recipe.checkpoint_every == 0 and step < total_steps:
                _save(model, optimizer, scheduler, run.checkpoint, step, stats)
    except KeyboardInterrupt:
        bar.close()
        _save(model, optimizer, scheduler, run.checkpoint, step, stats)
        raise TrainingInterrupted(
            f"interrupted at step {step}/{total_steps}; state saved, continue with "
            f"`loragate train --resume {run.path}`"
        ) from None
    bar.close()
    model.model.save_pretrained(run.adapter)
    shutil.rmtree(run.checkpoint, ignore_errors=True)
    eval_loss = evaluate(model, eval_batches) if eval_batches else None
    return _metrics(step, smoothed, eval_loss, stats, batches)


def _count(stats: dict[str, Any], group: list[Batch], seconds: float) -> None:
    stats["seconds"] += seconds
    stats["real_tokens"] += sum(b.real_tokens for b in group)
    stats["computed_tokens"] += sum(b.computed_tokens for b in group)


def _total_steps(batches: int, recipe: Recipe) -> int:
    steps = math.ceil(math.ceil(batches / recipe.grad_accum) * recipe.epochs)
    return min(steps, recipe.max_steps) if recipe.max_steps else steps


def _lr_schedule(torch: Any, optimizer: Any, recipe: Recipe, total_steps: int) -> Any:
    """Linear warm-up, then linear decay to 10 % of the learning rate."""

    def lr_at(step: int) -> float:
        if step < recipe.warmup_steps:
            return (step + 1) / (recipe.warmup_steps + 1)
        left = (total_steps - step) / max(total_steps - recipe.warmup_steps, 1)
        return 0.1 + 0.9 * max(left, 0.0)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)


def _optimizer_step(
    model: LoraModel, group: list[Batch], trainable: list[Any], optimizer: Any, scheduler: Any,
    earlier_prefix: bool = False,
) -> float:  # fmt: skip
    """One optimizer step over a group of micro-batches (gradient accumulation); returns the
    loss per target token."""
    targets = sum(b.target_tokens for b in group)
    loss_total = 0.0
    if not earlier_prefix:
        model.forget_prefixes()
    for batch in group:
        loss = model.loss_sum(batch, earlier_prefix=earlier_prefix) / targets
        loss.backward()
        loss_total += float(loss.detach())
    model.torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_total


def _metrics(steps: int, train_loss: float | None, eval_loss: float | None,
             stats: dict[str, Any], batches: list[Batch]) -> dict[str, Any]:  # fmt: skip
    return {
        "steps": steps,
        "train_loss": train_loss,
        "eval_loss": eval_loss,
        "base_eval_loss": stats.get("base_eval_loss"),
        "real_tokens": stats["real_tokens"],
        "seconds": round(stats["seconds"], 2),
        "tokens_per_s": round(stats["real_tokens"] / max(stats["seconds"], 1e-9), 1),
        "padding_waste": round(padding_waste(batches), 4),
    }


def evaluate(model: LoraModel, batches: list[Batch]) -> float:
    """Mean loss per target token."""
    torch = model.torch
    model.model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            total += float(model.loss_sum(batch))
            count += batch.target_tokens
    model.model.train()
    return round(total / max(count, 1), 5)


def _steps(
    batches: list[Batch], recipe: Recipe, *, start: int, total: int
) -> Iterator[list[Batch]]:
    """Micro-batches grouped by optimizer step, in a seeded order per epoch; skips the first
    `start` steps (after a resume) without touching the others."""
    per_epoch = math.ceil(len(batches) / recipe.grad_accum)
    step = 0
    epoch = 0
    while step < total:
        order = list(range(len(batches)))
        random.Random(f"{recipe.seed}:{epoch}").shuffle(order)
        for i in range(per_epoch):
            if step >= total:
                return
            if step >= start:
                chunk = order[i * recipe.grad_accum : (i + 1) * recipe.grad_accum]
                yield [batches[j] for j in chunk]
            step += 1
        epoch += 1


def _save(model: LoraModel, optimizer: Any, scheduler: Any, folder: Path, step: int,
          stats: dict[str, Any]) -> None:  # fmt: skip
    """Write the resumable state next to the old one, then swap it in."""
    torch = model.torch
    staging = folder.with_name(folder.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    model.model.save_pretrained(str(staging / "adapter"))
    torch.save(
        {"step": step, "stats": stats, "optimizer": optimizer.state_dict(),
         "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()},
        staging / "state.pt",
    )  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)


def _restore(model: LoraModel, optimizer: Any, scheduler: Any,
             folder: Path) -> tuple[int, dict[str, Any]]:  # fmt: skip
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    torch = model.torch
    set_peft_model_state_dict(
        model.model, load_file(folder / "adapter" / "adapter_model.safetensors")
    )
    state = torch.load(folder / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state["step"], state["stats"]
