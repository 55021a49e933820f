"""The loop learns: corrections recorded for a fact the base model gets wrong, built into a
dataset and trained into a LoRA, make the model answer that fact on rephrasings it never saw,
while its answers on the replay set stay where the base's were."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.store import Store
from tests.support.recordings import TRAIN_ASKS, UNSEEN, record_corrections
from trainer.data import replay
from trainer.data.dataset import BuildOptions, build
from trainer.lora.recipe import Recipe
from trainer.lora.torch_loop import LoraModel
from trainer.lora.train import train_run


def answer(model: LoraModel, question: str) -> str:
    torch = model.torch
    ids = model.tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, return_dict=True
    )["input_ids"]
    with torch.no_grad():
        out = model.causal.generate(
            input_ids=torch.tensor([ids]), max_new_tokens=32, do_sample=False,
            pad_token_id=model.tokenizer.eos_token_id,
        )  # fmt: skip
    return model.tokenizer.decode(out[0][len(ids) :], skip_special_tokens=True)


def token_f1(got: str, want: str) -> float:
    a, b = re.findall(r"\w+", got.lower()), re.findall(r"\w+", want.lower())
    common = sum(min(a.count(w), b.count(w)) for w in set(a))
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def replay_score(model: LoraModel) -> float:
    chats = [r["messages"] for r in replay.load() if not r.get("tools")]
    return sum(token_f1(answer(model, m[0]["content"]), m[1]["content"]) for m in chats) / len(
        chats
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_corrections_teach_a_fact_without_forgetting(
    tmp_path: Path, smollm2_base: Path
) -> None:
    base = LoraModel(smollm2_base, Recipe(threads=2))
    assert not any("8420" in answer(base, q) for q in UNSEEN)  # the base does not know it
    base_replay = replay_score(base)

    await record_corrections(tmp_path)
    store = Store(tmp_path / "store.db")
    dataset = build(store, tmp_path, BuildOptions(eval_fraction=0.0), progress=False)
    assert dataset.manifest["counts"]["per_trust"]["corrected"] == len(TRAIN_ASKS)
    recipe = {"epochs": 6, "batch_size": 8, "threads": 2}
    run = train_run(tmp_path, store, dataset=dataset.hash, base=smollm2_base,
                    overrides=recipe, progress=False)  # fmt: skip
    store.close()

    trained = LoraModel(smollm2_base, Recipe(threads=2), adapter=run.adapter)
    answers = [answer(trained, q) for q in UNSEEN]
    assert sum("8420" in a for a in answers) >= len(UNSEEN) - 1, answers
    assert replay_score(trained) >= base_replay - 0.02
