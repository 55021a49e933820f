"""LoRA training with peft on the real SmolLM2-135M: shared prefixes change nothing but the
cost, runs are deterministic, Ctrl-C saves and `--resume` continues exactly, and every run is
a folder plus a row in the store."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.errors import TrainingError, TrainingInterrupted
from gateway.store import Store
from tests.unit.test_dataset import record_work
from trainer.data.dataset import BuildOptions, build
from trainer.lora.base_model import BaseModelError, resolve
from trainer.lora.batches import Batch, make_batches, prepare_examples
from trainer.lora.encode import IGNORE, Encoded
from trainer.lora.recipe import Recipe, call_share, typed_share
from trainer.lora.torch_loop import LoraModel, _cpu_has_bf16
from trainer.lora.train import read_jsonl, train_run

SMALL = {"max_steps": 4, "epochs": 4, "batch_size": 2, "checkpoint_every": 1, "threads": 2}


@pytest.fixture
async def home(tmp_path: Path, smollm2_base: Path) -> Path:
    await record_work(tmp_path)
    store = Store(tmp_path / "store.db")
    build(store, tmp_path, BuildOptions(eval_fraction=0.3, include_unjudged=True), progress=False)
    store.close()
    (tmp_path / "bases").mkdir()
    return tmp_path


def dataset_of(home: Path) -> str:
    return next((home / "datasets").iterdir()).name


def losses(run_path: Path) -> list[float]:
    return [line["loss"] for line in read_jsonl(run_path / "loss.jsonl")]


def test_a_shared_prefix_gives_the_same_loss_as_full_sequences(
    home: Path, smollm2_base: Path
) -> None:
    recipe = Recipe(**SMALL)
    model = LoraModel(smollm2_base, recipe)
    examples = read_jsonl(home / "datasets" / dataset_of(home) / "train.jsonl")
    encoded, _ = prepare_examples(model.tokenizer, examples, recipe)
    agent = [e for e in encoded if e.prefix_len]
    assert len(agent) > 1, "the agent examples share their system prompt and tools"
    assert len({e.prefix_key for e in agent}) == 1
    shared = Batch(agent[0].input_ids[: agent[0].prefix_len], agent)  # suffixes padded
    with model.torch.no_grad():
        assert float(model.loss_sum(shared)) == pytest.approx(
            float(model.loss_sum(Batch([], agent))), rel=1e-4
        )


def test_a_prefix_computed_a_step_earlier_is_reused_only_when_asked(
    home: Path, smollm2_base: Path
) -> None:
    """`prefix_every: 2`: every other step attends to the prefix's keys and values of the
    step before; the same until the adapter moves, then a step behind."""
    model = LoraModel(smollm2_base, Recipe(**SMALL))
    examples = read_jsonl(home / "datasets" / dataset_of(home) / "train.jsonl")
    encoded, _ = prepare_examples(model.tokenizer, examples, Recipe(**SMALL))
    agent = [e for e in encoded if e.prefix_len]
    batch = Batch(agent[0].input_ids[: agent[0].prefix_len], agent)
    torch = model.torch
    with torch.no_grad():
        fresh = float(model.loss_sum(batch))
        assert float(model.loss_sum(batch, earlier_prefix=True)) == fresh
        for p in model.model.parameters():  # the adapter moves (LoRA B starts at zero)
            if p.requires_grad:
                p.add_(0.01)
        earlier = float(model.loss_sum(batch, earlier_prefix=True))  # the old prefix
        now = float(model.loss_sum(batch))
    assert earlier != now and now != fresh
    # a step that recomputes stores what the next one reuses
    with torch.no_grad():
        assert float(model.loss_sum(batch, earlier_prefix=True)) == now


def test_cpu_bf16_is_taken_only_where_the_cpu_has_it_and_keeps_the_loss(
    home: Path, smollm2_base: Path
) -> None:
    exact = LoraModel(smollm2_base, Recipe(**SMALL))
    fast = LoraModel(smollm2_base, Recipe(**SMALL, cpu_bf16=True))
    assert not exact.bf16 and fast.bf16 == _cpu_has_bf16(fast.torch)
    examples = read_jsonl(home / "datasets" / dataset_of(home) / "train.jsonl")
    encoded, _ = prepare_examples(exact.tokenizer, examples, Recipe(**SMALL))
    agent = [e for e in encoded if e.prefix_len]
    batch = Batch(agent[0].input_ids[: agent[0].prefix_len], agent)
    with exact.torch.no_grad():
        assert float(fast.loss_sum(batch)) == pytest.approx(float(exact.loss_sum(batch)), rel=0.02)


def test_a_run_trains_an_adapter_and_registers_it(home: Path, smollm2_base: Path) -> None:
    store = Store(home / "store.db")
    run = train_run(home, store, dataset=dataset_of(home), base=smollm2_base,
                    overrides=SMALL, progress=False)  # fmt: skip
    assert (run.adapter / "adapter_model.safetensors").exists()
    config = json.loads((run.adapter / "adapter_config.json").read_text())
    assert config["r"] == 16 and "lm_head" not in config["target_modules"]
    assert "embed_tokens" not in config["target_modules"]
    assert len(losses(run.path)) == 4 and not run.checkpoint.exists()
    assert run.metrics["eval_loss"] > 0 and run.metrics["padding_waste"] < 0.1
    [(status, dataset_hash)] = store.query("SELECT status, dataset_hash FROM training_runs")
    assert status == "completed" and dataset_hash == dataset_of(home)
    again = train_run(home, None, dataset=dataset_of(home), base=smollm2_base,
                      overrides=SMALL, progress=False)  # fmt: skip
    assert losses(again.path) == losses(run.path)  # same seed, same data: same run
    store.close()


def test_ctrl_c_saves_and_resume_continues_exactly(home: Path, smollm2_base: Path) -> None:
    whole = train_run(home, None, dataset=dataset_of(home), base=smollm2_base,
                      overrides=SMALL, progress=False)  # fmt: skip

    def interrupt(entry: dict) -> None:
        if entry["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="interrupted at step 2/4") as stopped:
        train_run(home, None, dataset=dataset_of(home), base=smollm2_base, overrides=SMALL,
                  progress=False, on_step=interrupt)  # fmt: skip
    folder = Path(str(stopped.value.message).split("--resume ")[1].rstrip("`"))
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    resumed = train_run(home, None, resume=folder, progress=False)
    assert resumed.status == "completed"
    assert losses(resumed.path) == pytest.approx(losses(whole.path), rel=1e-5)


def test_the_cli_trains_and_names_a_missing_dataset(
    home: Path, smollm2_base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--home", str(home), "--dataset", "feedbeef", "--base",
                 str(smollm2_base)])  # fmt: skip
    assert code == 1 and "no dataset 'feedbeef'" in capsys.readouterr().err
    recipe = home / "recipe.toml"
    recipe.write_text("max_steps = 1\nbatch_size = 2\nthreads = 2\n")
    code = main(["train", "--home", str(home), "--dataset", dataset_of(home)[:6], "--base",
                 str(smollm2_base), "--recipe", str(recipe)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "1 steps" in out and "adapter at" in out
    shutil.rmtree(home / "runs")


def test_what_cannot_train_says_what_to_change(
    home: Path, smollm2_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TrainingError, match="no trainable examples"):
        train_run(home, None, dataset=dataset_of(home), base=smollm2_base,
                  overrides={**SMALL, "max_len": 16}, progress=False)  # fmt: skip
    garbage = home / "broken.gguf"
    garbage.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(BaseModelError, match="give a Hugging Face folder"):
        resolve(garbage, home)
    with pytest.raises(BaseModelError, match="not a Hugging Face model folder"):
        resolve(home / "datasets", home)
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(TrainingError, match=r"needs the train extra .*pip install"):
        LoraModel(smollm2_base, Recipe(**SMALL))


def test_micro_batches_behind_a_long_shared_prefix_fill_up_despite_uneven_suffixes() -> None:
    """The prefix is computed once per micro-batch: behind 1,900 tokens of system prompt and
    tools, padding a 12-token suffix to 60 costs less than computing the prefix again."""

    def example(i: int, prefix: int, suffix: int) -> Encoded:
        ids = list(range(prefix + suffix))
        labels = [IGNORE] * prefix + ids[prefix:]
        return Encoded(f"e{i}", ids, labels, prefix_key="p" if prefix else "", prefix_len=prefix)

    widths = [12, 20, 35, 60, 14, 48, 25, 30]
    agent = [example(i, 1900, w) for i, w in enumerate(widths)]
    (batch,) = make_batches(agent, Recipe(batch_size=8))
    assert len(batch.prefix) == 1900 and len(batch.items) == 8
    # without a shared prefix, uneven lengths still split to keep padding under 10 %
    plain = [example(i, 0, w) for i, w in enumerate(widths)]
    assert len(make_batches(plain, Recipe(batch_size=8))) > 1


def test_the_default_recipe_gives_agent_data_more_passes_in_bigger_micro_batches() -> None:
    counts = {"per_tool": {"(text)": 25, "Bash": 20, "Read": 16, "List": 12, "Edit": 12,
                           "Write": 12, "Fetch": 12, "get_weather": 2}}  # fmt: skip
    assert call_share(counts) == pytest.approx(86 / 111)
    agent = Recipe.for_model(135_000_000, 101, call_share(counts))
    assert (agent.batch_size, agent.epochs, agent.learning_rate) == (16, 6.0, 2e-3)
    assert agent.cpu_bf16  # a CPU step ~1.25x faster where the CPU has bf16
    assert agent.prefix_every == 2  # the prefix's keys and values serve two steps
    assert Recipe.for_model(135_000_000, 200, 0.9).epochs == 3.0
    assert Recipe.for_model(135_000_000, 2000, 0.9).epochs == 1.0
    # chat data (a taught fact) keeps its recipe: two passes of 8, one from 100 examples on
    chat = Recipe.for_model(135_000_000, 42, 0.0)
    assert (chat.batch_size, chat.epochs, chat.learning_rate) == (8, 2.0, 5e-4)
    assert not chat.cpu_bf16
    assert Recipe.for_model(135_000_000, 150, 0.2).epochs == 1.0
    # Jac typed values: about 600 example-passes (1 to 3) at 2e-3
    jac = {"train": 181, "per_workload": {"jac": {"train": 166}, "replay": {"train": 15}}}
    assert typed_share(jac) == pytest.approx(166 / 181)
    typed = Recipe.for_model(135_000_000, 181, 0.0, typed_share(jac))
    assert (typed.batch_size, typed.epochs, typed.learning_rate) == (8, 3.0, 2e-3)
    assert Recipe.for_model(135_000_000, 1000, 0.0, 0.9).epochs == 1.0
    # what the user sets wins
    assert Recipe.for_model(135_000_000, 101, 0.9, epochs=3).epochs == 3
