"""LoRA training with mlx-lm (Apple Silicon), sharing everything else with the torch engine.

The dataset already holds mlx-lm's chat layout (`mlx/train.jsonl`, `mlx/valid.jsonl`: one line
per target turn, cut after it, so `mask_prompt` puts the loss on exactly that turn). We write a
YAML config from the same recipe (`mlx_lm lora --config <run>/mlx/lora.yaml` runs it by hand),
run it through `trainer.lora.mlx_driver` (mlx-lm's `lora.run` with a callback that reports each step
as a JSON line), follow those with a progress bar, and convert the adapter (`lora_a` [in, r],
`lora_b` [r, out], `scale`) to PEFT's layout (`lora_A.weight` [r, in], `lora_B.weight`
[out, r], `lora_alpha = scale * r`) so export and serving treat both engines' adapters alike.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gateway.errors import TrainingError, TrainingInterrupted
from gateway.store import Store
from trainer.lora.base_model import count_parameters
from trainer.lora.recipe import Recipe, call_share, load_recipe, typed_share
from trainer.lora.runs import Run

PREFIX = "LORAGATE "  # the driver's report lines
_LAYER_KEY = re.compile(r"^(?:model\.)?(.*)\.(lora_a|lora_b)$")


def mlx_config(recipe: Recipe, base: Path, data: Path, adapter: Path, lines: int) -> dict:
    """mlx-lm's `lora` config for this recipe; every linear layer of every block is adapted
    (embeddings and the LM head are outside the blocks)."""
    iters = math.ceil(lines * recipe.epochs / recipe.batch_size)
    if recipe.max_steps:
        iters = min(iters, recipe.max_steps)
    return {
        "model": str(base), "train": True, "fine_tune_type": "lora", "data": str(data),
        "adapter_path": str(adapter), "seed": recipe.seed, "num_layers": -1,
        "batch_size": recipe.batch_size, "iters": max(iters, 1),
        "learning_rate": recipe.learning_rate, "max_seq_length": recipe.max_len,
        "mask_prompt": True, "steps_per_report": 1, "steps_per_eval": max(iters, 1),
        "save_every": recipe.checkpoint_every, "val_batches": -1,
        "grad_accumulation_steps": recipe.grad_accum,
        "lora_parameters": {"rank": recipe.r, "scale": recipe.alpha / recipe.r,
                            "dropout": recipe.dropout},
    }  # fmt: skip


def to_peft(mlx_adapter: Path, peft_adapter: Path, base: Path) -> None:
    """Write mlx-lm's adapter as a PEFT LoRA adapter."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    config = json.loads((mlx_adapter / "adapter_config.json").read_text(encoding="utf-8"))
    lora = config["lora_parameters"]
    rank, scale = int(lora["rank"]), float(lora["scale"])
    tensors: dict[str, np.ndarray] = {}
    modules: set[str] = set()
    for key, value in load_file(mlx_adapter / "adapters.safetensors").items():
        match = _LAYER_KEY.match(key)
        if match is None:
            continue
        path, which = match.groups()
        modules.add(path.rsplit(".", 1)[-1])
        name = "lora_A" if which == "lora_a" else "lora_B"
        tensors[f"base_model.model.model.{path}.{name}.weight"] = np.ascontiguousarray(
            value.T.astype(np.float32)
        )
    if not tensors:
        raise TrainingError(f"{mlx_adapter}: no LoRA weights in adapters.safetensors")
    peft_adapter.mkdir(parents=True, exist_ok=True)
    save_file(tensors, peft_adapter / "adapter_model.safetensors")
    peft_config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": str(base),
        "r": rank, "lora_alpha": scale * rank, "lora_dropout": float(lora.get("dropout", 0.0)),
        "target_modules": sorted(modules), "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "use_rslora": False, "modules_to_save": None,
    }  # fmt: skip
    (peft_adapter / "adapter_config.json").write_text(json.dumps(peft_config, indent=2))


def train_run(
    home: Path,
    store: Store | None,
    dataset_dir: Path,
    base_dir: Path,
    recipe_file: Path | None,
    overrides: dict[str, Any] | None,
    progress: bool = True,
) -> Run:
    try:
        import mlx_lm  # noqa: F401
    except ImportError as exc:
        raise TrainingError(
            f"the mlx engine needs mlx-lm ({exc.name} is missing): pip install -e '.[mlx]' "
            "(on Linux it installs mlx[cpu], which works but is far slower than --engine torch)"
        ) from exc
    manifest = json.loads((dataset_dir / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    recipe = load_recipe(recipe_file, count_parameters(base_dir), counts["train"],
                         call_share(counts), typed_share(counts), **(overrides or {}))  # fmt: skip
    data = dataset_dir / "mlx"
    lines = sum(1 for _ in (data / "train.jsonl").open(encoding="utf-8"))
    if lines == 0:
        raise TrainingError(f"dataset {manifest['hash']} has no training examples")
    run = Run.new(home, dataset_hash=manifest["hash"], base=str(base_dir), engine="mlx",
                  recipe=recipe.model_dump(), device="mlx")  # fmt: skip
    run.save(store)
    work = run.path / "mlx"
    work.mkdir()
    if not (data / "valid.jsonl").stat().st_size:  # mlx-lm wants a validation file
        shutil.copy(data / "train.jsonl", work / "valid.jsonl")
        shutil.copy(data / "train.jsonl", work / "train.jsonl")
        data = work
    config = mlx_config(recipe, base_dir, data, work / "adapter", lines)
    config_path = work / "lora.yaml"
    config_path.write_text(_yaml(config), encoding="utf-8")
    started = time.monotonic()
    try:
        metrics = _follow([sys.executable, "-m", "trainer.lora.mlx_driver", str(config_path)],
                          config["iters"], run, progress)  # fmt: skip
        to_peft(work / "adapter", run.adapter, base_dir)
    except TrainingInterrupted:
        run.status = "interrupted"
        run.save(store)
        raise
    except BaseException as exc:
        run.status, run.metrics = "failed", {"error": str(exc)[:500]}
        run.save(store)
        raise
    metrics["seconds"] = round(time.monotonic() - started, 2)
    run.status, run.metrics, run.finished_at = "completed", metrics, time.time()
    run.save(store)
    return run


def _follow(argv: list[str], iters: int, run: Run, progress: bool) -> dict[str, Any]:
    """Run mlx-lm, turning its report lines into a progress bar and loss.jsonl."""
    from tqdm import tqdm

    bar = tqdm(total=iters, unit="step", desc="training (mlx)", disable=not progress)
    tail: list[str] = []
    metrics: dict[str, Any] = {"steps": 0, "train_loss": None, "eval_loss": None,
                               "tokens_per_s": 0.0}  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            tail = [*tail[-20:], line.rstrip()]
            if not line.startswith(PREFIX):
                continue
            report = json.loads(line[len(PREFIX) :])
            if "val_loss" in report:
                metrics["eval_loss"] = report["val_loss"]
                continue
            run.log_step(report)
            metrics.update(steps=report["step"], train_loss=report["loss"],
                           tokens_per_s=report["tokens_per_s"])  # fmt: skip
            bar.update(report["step"] - bar.n)
            bar.set_postfix(loss=f"{report['loss']:.3f}", tok_s=f"{report['tokens_per_s']:.0f}")
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        raise TrainingInterrupted(
            f"interrupted; mlx-lm's last saved adapter is in {run.path / 'mlx' / 'adapter'}"
        ) from None
    finally:
        bar.close()
    if code != 0:
        raise TrainingError("mlx-lm lora failed:\n" + "\n".join(tail[-8:]))
    return metrics


def _yaml(config: dict[str, Any]) -> str:
    """YAML is a superset of JSON: one JSON value per key is a valid mlx-lm config."""
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in config.items())
