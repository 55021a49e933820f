"""The mlx engine end to end on a tiny randomly initialised llama (mlx on a Linux CPU is far
too slow for the real model): mlx-lm trains on the dataset's mlx layout, and the adapter it
writes, converted to PEFT's layout, gives torch the same outputs mlx computes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gateway.store import Store
from tests.unit.test_dataset import record_work
from trainer.data.dataset import BuildOptions, build
from trainer.lora.train import train_run


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, smollm2_base: Path) -> Path:
    """A 2-layer llama with SmolLM2's tokenizer and chat template, random weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(smollm2_base / name, folder / name)
    return folder


async def test_mlx_trains_and_its_adapter_works_in_peft(tmp_path: Path, tiny_llama: Path) -> None:
    await record_work(tmp_path)
    store = Store(tmp_path / "store.db")
    dataset = build(store, tmp_path, BuildOptions(eval_fraction=0.3), progress=False)
    overrides = {"max_steps": 3, "batch_size": 1, "learning_rate": 1e-2, "checkpoint_every": 3}
    run = train_run(tmp_path, store, dataset=dataset.hash, base=tiny_llama, engine="mlx",
                    overrides=overrides, progress=False)  # fmt: skip
    assert run.status == "completed" and run.metrics["steps"] == 3
    assert len([json.loads(x) for x in (run.path / "loss.jsonl").read_text().splitlines()]) == 3
    [(status, engine)] = store.query("SELECT status, engine FROM training_runs")
    assert (status, engine) == ("completed", "mlx")
    store.close()

    import mlx.core as mx
    import torch
    from mlx_lm import load
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = [1, 9690, 198, 30, 40, 50, 60, 2]
    mlx_model, _ = load(str(tiny_llama), adapter_path=str(run.path / "mlx" / "adapter"))
    from_mlx = np.array(mlx_model(mx.array([ids])).astype(mx.float32))
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    peft = PeftModel.from_pretrained(base, run.adapter)
    with torch.no_grad():
        from_torch = peft(input_ids=torch.tensor([ids])).logits.numpy()
    assert np.allclose(from_mlx, from_torch, atol=2e-4)
    with torch.no_grad(), peft.disable_adapter():
        without = peft(input_ids=torch.tensor([ids])).logits.numpy()
    assert not np.allclose(without, from_torch, atol=1e-3)  # the adapter changed something
