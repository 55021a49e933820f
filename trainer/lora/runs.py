"""Training runs: a folder under `<home>/runs/<id>/` and a row in the store's `training_runs`.

adapter/      the PEFT adapter (adapter_config.json, adapter_model.safetensors)
checkpoint/   the latest resumable state (removed when the run completes)
recipe.json   the hyperparameters used
loss.jsonl    one line per optimizer step: step, loss, learning rate, tokens/s
run.json      dataset hash, base, engine, device and the final metrics
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.store import Store

_UPSERT = (
    "INSERT INTO training_runs (id, created_at, finished_at, dataset_hash, base, engine, device, "
    "recipe, status, path, metrics) VALUES (:id, :created_at, :finished_at, :dataset_hash, "
    ":base, :engine, :device, :recipe, :status, :path, :metrics) ON CONFLICT (id) DO UPDATE SET "
    "finished_at = excluded.finished_at, status = excluded.status, metrics = excluded.metrics, "
    "device = excluded.device"
)


@dataclass
class Run:
    id: str
    path: Path
    dataset_hash: str
    base: str
    engine: str
    recipe: dict[str, Any]
    device: str = "cpu"
    status: str = "running"
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, home: Path, **values: Any) -> Run:
        run_id = time.strftime("run-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        path = home / "runs" / run_id
        path.mkdir(parents=True)
        return cls(id=run_id, path=path, **values)

    @classmethod
    def load(cls, path: Path) -> Run:
        data = json.loads((path / "run.json").read_text(encoding="utf-8"))
        return cls(**{**data, "path": path})

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint"

    def save(self, store: Store | None = None) -> None:
        """Write run.json and recipe.json, and the row in the store when one is given."""
        data = {
            "id": self.id, "dataset_hash": self.dataset_hash, "base": self.base,
            "engine": self.engine, "recipe": self.recipe, "device": self.device,
            "status": self.status, "created_at": self.created_at,
            "finished_at": self.finished_at, "metrics": self.metrics,
        }  # fmt: skip
        (self.path / "run.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        (self.path / "recipe.json").write_text(
            json.dumps(self.recipe, indent=2) + "\n", encoding="utf-8"
        )
        if store is not None:
            store.execute(
                _UPSERT,
                {**data, "recipe": json.dumps(self.recipe), "metrics": json.dumps(self.metrics),
                 "path": str(self.path)},
            )  # fmt: skip

    def log_step(self, entry: dict[str, Any]) -> None:
        with (self.path / "loss.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
