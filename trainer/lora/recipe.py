"""The training recipe: LoRA and optimizer hyperparameters, scaled to the base model and the
dataset, overridable from a recipe file (TOML or JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.prompts import mtllm


class Recipe(BaseModel):
    """Hyperparameters; defaults suit models up to ~1B parameters. Any field can be set in a
    recipe file (TOML or JSON)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Linear layers to adapt; all-linear skips lm_head/embeddings."
    )
    learning_rate: float = Field(2e-4, gt=0)
    warmup_steps: int = Field(5, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    epochs: float = Field(2.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps.")
    batch_size: int = Field(8, ge=1, description="Examples per micro-batch.")
    batch_tokens: int = Field(
        4096, ge=64, description="Most token positions a micro-batch computes (memory cap)."
    )
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_len: int = Field(8192, ge=16, description="Longer examples are left out (reported).")
    shared_prefix: bool = Field(True, description="Run a shared prefix once per micro-batch.")
    min_prefix: int = Field(32, ge=1, description="Shortest prefix worth sharing, in tokens.")
    prefix_every: int = Field(
        1, ge=1,
        description="Optimizer steps between computing a shared prefix's keys and values again "
        "(1: every step; 2: every other step reuses those of the step before, with the adapter "
        "one step old; a resumed run computes them at its first step).",
    )  # fmt: skip
    checkpoint_every: int = Field(25, ge=1, description="Optimizer steps between checkpoints.")
    threads: int | None = Field(None, ge=1, description="CPU threads (None: all cores).")
    cpu_bf16: bool = Field(
        False,
        description="Train under bf16 autocast on a CPU with native bf16 (AVX512-BF16, "
        "AMX), as on CUDA always; else fp32.",
    )
    seed: int = 0

    @classmethod
    def for_model(
        cls, parameters: int, examples: int | None = None, call_share: float = 0.0,
        typed_share: float = 0.0, **overrides: Any,
    ) -> Recipe:  # fmt: skip
        """Defaults by model size (small models take a higher rate and rank) and by data.

        Chat data: two passes, one from 100 examples on. Agent data (`call_share`, the share
        of examples whose answer is a tool call, at least half): each example repeats an agent's
        system prompt and tool schemas (~2,000 tokens), computed once per micro-batch, so
        micro-batches of 16 cost little more than of 8, and every other step reuses the
        prefix's keys and values of the step before; and the choice of a tool is learnt from
        few examples only with several passes: about 600 example-passes in all (whole passes,
        1 to 6) at 2e-3, under bf16 autocast where the CPU has it, about 5 minutes on 2 CPU
        cores. Measured on a day of 100 corrected Continue CLI turns (`loragate bench
        flywheel`): one pass of micro-batches of 8 gave 0.33 right tool on the next day's
        tasks, 4 passes of 16 at 1e-3 gave 0.63 (full call 0.37) in 357 s, 6 passes at 5e-4
        0.61 in 509 s, 4 passes at 2e-3 0.74 (full call 0.48) in 383 s, at 3e-3 0.83 (full
        call 0.57, no call 0.92, the general set +16 points) in 376 s, at 5e-3 0.70 (full call
        0.48, the general set only +6 points). A sweep trained on a GPU (bf16) and answered
        offline in llama.cpp (Q8_0), on a later recording of the same tasks: 4 passes at
        3e-3 gave 0.83, 0.78 and 0.67 right tool over three seeds (full call 0.59, 0.50,
        0.43); 6 passes at 2e-3 0.91, 0.91 and 0.87 (full call 0.78, 0.74, 0.67); 5 passes
        at 2e-3 or 3e-3 0.78 and 0.80; 8 passes at 3e-3 0.91 and 0.93 (0.74, 0.78) but ~800 s
        on 2 cores; 8 passes of 32 (as many steps as 4 of 16) 0.87 and 0.87, no call 7/12
        and 12/12; dropout 0.1 0.74; rank 4 0.61. bf16 autocast makes a CPU step ~1.25x
        faster. Through cn, six passes at 2e-3: 0.89, full call 0.74, in 523 s of training.
        Then the call grammar was found holding arguments to the schema's order, not the
        sorted order trained: answered again under the sorted grammar, the same adapters gave
        full call 0.83, 0.78 and 0.70 (six passes), 0.87 and 0.83 (eight passes at 3e-3).
        Packing the suffixes behind one prefix cut a CPU step by a third, and reusing the
        prefix every other step by another ~20 %: eight passes at 3e-3 so trained on 2 cores
        in 400 s gave 0.93 right tool, full call 0.89, no call 10/12 offline; through cn
        0.91, 0.87, no call 10/12, but in 475 s of training (the retrain 637 s, over its 10
        minutes) and the held-out split 7/10 (six passes: 10/10), so six passes stay. With the
        trained calls' arguments in the tool schema's order instead of sorted (the grammar
        likewise), six passes gave 0.93 / 0.83 / 11/12 offline and through cn (359 s of
        training), eight at 3e-3 0.91 / 0.85 / 12/12 offline; seed 1 of six passes 0.87 /
        0.80 / 11/12. Not taken: NEFTune (alpha 20) 0.91 / 0.78; the answer's first tokens
        (where the call and the tool are chosen) weighted x4 in the loss 0.96 / 0.78 over two
        seeds: it buys the choice with the arguments.

        Typed data (`typed_share`, the share of examples whose answer is a Jac typed value, at
        least half): the value's shape is read from the prompt's type explanations, learnt
        with about 600 example-passes (whole passes, 1 to 3) at a higher rate. Measured on
        the fixture Jac corpus (`tests/bench/bench_jac.py`, 181 examples, 52 call sites of 9
        files held out), served at Q4_K_M: 3 passes at 5e-4 gave 0.68 type-correct; at 2e-3 0.83
        (the programs' own asks 55/67) in 456 s of training; at 3e-3 also 0.83. At 2e-3 served
        at Q8_0 (the default for small models since): 0.92, the programs' asks 63/67."""
        base: dict[str, Any]
        small = parameters < 500_000_000
        if small:
            # 1e-3 taught SmolLM2-135M a fact as well but moved its replay answers ~5 points
            base = {"learning_rate": 5e-4}
        else:
            base = {"learning_rate": 2e-4, "r": 8, "alpha": 16}
        if examples and call_share >= 0.5:
            base.update(batch_size=16, epochs=_passes(AGENT_PASSES, examples, most=6),
                        cpu_bf16=True, prefix_every=2)  # fmt: skip
            if small:
                base["learning_rate"] = 2e-3
        elif examples and typed_share >= 0.5:
            base["epochs"] = _passes(TYPED_PASSES, examples, most=3)
            if small:
                base["learning_rate"] = 2e-3
        elif examples is not None and examples >= 100:
            base["epochs"] = 1.0
        return cls(**{**base, **overrides})


AGENT_PASSES = 600
TYPED_PASSES = 600


def _passes(example_passes: int, examples: int, most: int) -> float:
    """Whole passes that come nearest `example_passes` in all: at least one, at most `most`."""
    return float(min(max(round(example_passes / examples), 1), most))


def load_recipe(
    path: Path | None, parameters: int, examples: int | None = None, call_share: float = 0.0,
    typed_share: float = 0.0, **overrides: Any,
) -> Recipe:  # fmt: skip
    values: dict[str, Any] = {}
    if path is not None:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            import tomllib

            values = tomllib.loads(text)
        else:
            values = json.loads(text)
    return Recipe.for_model(parameters, examples, call_share, typed_share,
                            **{**values, **overrides})  # fmt: skip


def call_share(counts: dict[str, Any]) -> float:
    """The share of a dataset's examples (manifest `counts`) whose answer is a tool call."""
    per_tool = counts.get("per_tool", {})
    total = sum(per_tool.values())
    return (total - per_tool.get("(text)", 0)) / total if total else 0.0


def typed_share(counts: dict[str, Any]) -> float:
    """The share of a dataset's training examples (manifest `counts`) whose answer is a typed
    value for Jac MTLLM (the `jac` workload)."""
    jac = counts.get("per_workload", {}).get(mtllm.WORKLOAD, {}).get("train", 0)
    return jac / counts["train"] if counts.get("train") else 0.0
