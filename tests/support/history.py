"""Training and evaluation history for the dashboard to show, written by the trainer's own
code (the numbers are made up: what is tested is showing them)."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.store import Store


def add_history(
    home: Path, store: Store, rights: dict[str, float], *, steps: int = 20,
    suites: tuple[str, ...] = ("held-out",), items: int = 4,
) -> None:  # fmt: skip
    """A finished training run of `steps` logged steps, and for each version its share of
    `items` right on each suite."""
    from trainer.evaluation.suites import SuiteRun, store_run
    from trainer.lora.runs import Run

    run = Run.new(home, dataset_hash="d" * 64, base="smollm2-135m-instruct", engine="torch",
                  recipe={"epochs": 2, "learning_rate": 0.001, "rank": 16})  # fmt: skip
    for step in range(1, steps + 1):
        run.log_step({"step": step, "loss": 2.5 / step**0.5, "lr": 0.001})
    run.status, run.finished_at = "completed", time.time()
    run.metrics = {"steps": steps, "train_loss": 0.56, "eval_loss": 0.61}
    run.save(store)
    ids = [str(i) for i in range(items)]
    for version, right in rights.items():
        for suite in suites:
            metrics = {"right": {"rate": right, "n": items, "interval": [0.05, 0.95]}}
            store_run(store, SuiteRun(version, suite, "h", metrics, [right] * items, ids))
