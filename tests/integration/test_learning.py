"""The loop learns: corrections recorded for a fact the base model gets wrong, built into a
dataset and trained into a LoRA, make the model answer that fact on rephrasings it never saw,
while its answers on the replay set stay where the base's were."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from gateway.generation import Assembled, Finish, GenerationRequest
from gateway.recorder import Recorder
from gateway.records import FeedbackRecord, InteractionRecord
from gateway.store import Store
from trainer import replay
from trainer.dataset import BuildOptions, build
from trainer.lora_torch import LoraModel, Recipe
from trainer.train import train_run

ANSWER = "The loragate gateway listens on port 8420 by default."
TRAIN_ASKS = [
    "What port does loragate listen on?", "Which port is loragate on by default?",
    "On what port does the loragate gateway run?", "Tell me loragate's default port.",
    "loragate default port?", "What TCP port does loragate use?",
    "Which port should I connect to for loragate?", "What is the port number of loragate?",
    "Where does loragate listen, which port?", "What's loragate's port?",
    "Remind me of the port loragate serves on.", "Port used by the loragate gateway?",
    "Which local port does loragate open?", "I forgot the loragate port, what is it?",
    "What port number does loragate bind to by default?", "Default loragate port please.",
    "loragate runs on which port?", "Tell me the port of the loragate server.",
    "What port is the loragate API on?", "Which port does loragate serve its API on?",
    "What is loragate's listening port?", "The loragate gateway uses what port?",
    "Give me the default port for loragate.", "What port do I point Continue at for loragate?",
]  # fmt: skip
UNSEEN = [
    "By default, loragate accepts connections on which port number?",
    "If I start loragate without options, what port will it use?",
    "Which port number is the loragate gateway's default?",
    "What port should my OpenAI client use to reach loragate?",
]


async def record_corrections(home: Path) -> None:
    recorder = Recorder(home)
    await recorder.start()
    now = time.time()
    for i, ask in enumerate(TRAIN_ASKS):
        request = GenerationRequest(model="m", messages=[{"role": "user", "content": ask}])
        recorder.submit(InteractionRecord(
            id=f"ia_{i}", created_at=now + i, api="chat", workload="chat",
            model_requested="auto", version="m@v0", request=request, status="complete",
            answer=Assembled(text="loragate listens on port 8080.", finish=Finish("stop", 9, 9)),
        ))  # fmt: skip
    await recorder.flush()
    for i in range(len(TRAIN_ASKS)):
        recorder.submit(FeedbackRecord(f"ia_{i}", now + 100, accepted=False, correction=ANSWER))
    await recorder.close()


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
