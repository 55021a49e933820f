"""`loragate train`: a dataset and a base → a trained adapter in a run folder, registered in
the store. The torch engine trains here; the mlx engine hands the same data to mlx-lm."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import (
    DatasetNotFound,
    LoragateError,
    TrainingError,
    TrainingInterrupted,
)
from gateway.store import Store
from trainer.lora import base_model as bases
from trainer.lora.batches import make_batches, prepare_examples
from trainer.lora.recipe import Recipe, call_share, load_recipe, typed_share
from trainer.lora.runs import Run

if TYPE_CHECKING:
    from trainer.lora.torch_loop import LoraModel

ENGINES = ("torch", "mlx")


def find_dataset(home: Path, name: str) -> Path:
    """A dataset by path, by hash, or by the start of its hash."""
    path = Path(name).expanduser()
    if (path / "train.jsonl").exists():
        return path
    root = home / "datasets"
    matches = sorted(root.glob(f"{name}*")) if root.exists() else []
    matches = [m for m in matches if (m / "manifest.json").exists()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DatasetNotFound(
            f"dataset {name!r} is ambiguous: {', '.join(m.name for m in matches)}"
        )
    raise DatasetNotFound(f"no dataset {name!r} in {root}: build one with `loragate dataset build`")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def train_run(
    home: Path,
    store: Store | None,
    *,
    dataset: str | None = None,
    base: Path | None = None,
    engine: str = "torch",
    recipe_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    resume: Path | None = None,
    progress: bool = True,
    on_step: Any = None,
) -> Run:
    """Train, or continue an interrupted run; returns the finished run."""
    run: Run | None = None
    if resume is not None:
        run = resumed = Run.load(resume.expanduser())
        dataset_dir = find_dataset(home, resumed.dataset_hash)
        base_dir = bases.resolve(Path(resumed.base), home)
    elif dataset is None or base is None:
        raise LoragateError("train needs --dataset and a base (or --resume RUN)")
    else:
        dataset_dir = find_dataset(home, dataset)
        base_dir = bases.resolve(base, home)
    if engine == "mlx":
        from trainer.lora import mlx_loop

        return mlx_loop.train_run(home, store, dataset_dir, base_dir, recipe_file, overrides)
    manifest = json.loads((dataset_dir / "manifest.json").read_text(encoding="utf-8"))
    if run is None:
        recipe = _recipe(manifest, base_dir, recipe_file, overrides)
        model = _model(base_dir, recipe)
        run = Run.new(
            home, dataset_hash=manifest["hash"], base=str(base if base else base_dir),
            engine="torch", recipe=recipe.model_dump(), device=model.device,
        )  # fmt: skip
    else:
        recipe = Recipe(**run.recipe)
        model = _model(base_dir, recipe)
        run.status = "running"
    run.save(store)
    _say(f"{run.id}: {model.parameters / 1e6:.1f} M parameters on {model.device}"
         f"{' (bf16)' if model.bf16 else ''}, "
         f"dataset {manifest['hash']}", progress)  # fmt: skip
    return _fit(run, store, model, recipe, dataset_dir, progress=progress, on_step=on_step)


def _recipe(manifest: dict[str, Any], base_dir: Path, recipe_file: Path | None = None,
            overrides: dict[str, Any] | None = None) -> Recipe:  # fmt: skip
    """The recipe for a dataset (its manifest's counts) and a base, as training uses it."""
    counts = manifest["counts"]
    return load_recipe(recipe_file, bases.count_parameters(base_dir), counts["train"],
                       call_share(counts), typed_share(counts), **(overrides or {}))  # fmt: skip


def _model(base_dir: Path, recipe: Recipe, adapter: Path | None = None) -> LoraModel:
    from trainer.lora.torch_loop import LoraModel

    return LoraModel(base_dir, recipe, adapter=adapter)


def _fit(
    run: Run, store: Store | None, model: LoraModel, recipe: Recipe, dataset_dir: Path,
    *, progress: bool, on_step: Any,
) -> Run:  # fmt: skip
    """Encode the dataset, train `model` on it, and record how the run ended."""
    from trainer.lora.torch_loop import train

    started = time.monotonic()
    train_examples, left_out = prepare_examples(
        model.tokenizer, read_jsonl(dataset_dir / "train.jsonl"), recipe
    )
    eval_examples, _ = prepare_examples(
        model.tokenizer, read_jsonl(dataset_dir / "eval.jsonl"), recipe
    )
    batches = make_batches(train_examples, recipe)
    eval_batches = make_batches(eval_examples, recipe)
    shared = sum(1 for b in batches if b.prefix)
    _say(f"{len(train_examples)} examples in {len(batches)} batches ({shared} with a shared "
         f"prefix), {len(eval_examples)} held out; {len(left_out)} left out (too long or no "
         f"target); encoded in {time.monotonic() - started:.1f} s", progress)  # fmt: skip
    try:
        metrics = train(model, batches, eval_batches, recipe, run, progress=progress,
                        on_step=on_step)  # fmt: skip
    except TrainingInterrupted:
        run.status = "interrupted"
        run.save(store)
        raise
    except BaseException as exc:
        run.status = "failed"
        run.metrics = {"error": str(exc)[:500]}
        run.save(store)
        if type(exc).__name__ == "OutOfMemoryError":
            raise TrainingError(
                f"out of memory with micro-batches of {recipe.batch_size} examples / "
                f"{recipe.batch_tokens} tokens: lower batch_size or batch_tokens (and raise "
                "grad_accum) in a recipe file, --recipe FILE"
            ) from exc
        raise
    metrics["left_out"] = left_out
    run.status, run.metrics, run.finished_at = "completed", metrics, time.time()
    run.save(store)
    return run


def _say(line: str, progress: bool) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)


def eval_loss(home: Path, dataset_hash: str, base: Path, adapter: Path | None) -> float | None:
    """Mean loss per target token of base + `adapter` (None: the base alone) on a dataset's
    eval split: how a version that is already serving does on the data a new one is judged on
    (at the precision a version trained on that data is judged at)."""
    from trainer.lora.torch_loop import evaluate

    dataset_dir = find_dataset(home, dataset_hash)
    base_dir = bases.resolve(base, home)
    manifest = json.loads((dataset_dir / "manifest.json").read_text(encoding="utf-8"))
    recipe = _recipe(manifest, base_dir)
    model = _model(base_dir, recipe, adapter)
    examples, _ = prepare_examples(model.tokenizer, read_jsonl(dataset_dir / "eval.jsonl"), recipe)
    if not examples:
        return None
    return evaluate(model, make_batches(examples, recipe))
