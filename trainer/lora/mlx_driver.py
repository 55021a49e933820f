"""Runs mlx-lm's LoRA training from a config file and reports each step as one JSON line
(`LORAGATE {...}`) on stdout, for `trainer.lora.mlx_loop` to follow; mlx-lm's own report is a rich
console table meant for people.

    python -m trainer.lora.mlx_driver lora.yaml
"""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import numpy as np
import yaml
from mlx_lm import lora
from mlx_lm.tuner.callbacks import TrainingCallback

from trainer.lora.mlx_loop import PREFIX


class JsonLines(TrainingCallback):
    def on_train_loss_report(self, train_info: dict[str, Any]) -> None:
        print(PREFIX + json.dumps({
            "step": train_info["iteration"], "loss": train_info["train_loss"],
            "tokens_per_s": train_info["tokens_per_second"],
        }), flush=True)  # fmt: skip

    def on_val_loss_report(self, val_info: dict[str, Any]) -> None:
        print(PREFIX + json.dumps({"val_loss": val_info["val_loss"]}), flush=True)


def main(path: str) -> None:
    """What `mlx_lm.lora.run` does for training, with our callback (mlx-lm 0.32's `run`
    replaces the callback it is given by the `report_to` ones)."""
    with open(path, encoding="utf-8") as fh:
        values = yaml.safe_load(fh)
    for key, value in lora.CONFIG_DEFAULTS.items():
        values.setdefault(key, value)
    args = types.SimpleNamespace(**values)
    np.random.seed(args.seed)
    # `load` returns a third value only with return_config=True, which mypy cannot see
    model, tokenizer = lora.load(args.model)  # type: ignore[misc]
    train_set, valid_set, _ = lora.load_dataset(args, tokenizer)  # type: ignore[arg-type]
    lora.train_model(args, model, train_set, valid_set, JsonLines())


if __name__ == "__main__":
    main(sys.argv[1])
