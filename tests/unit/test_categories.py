"""JESSY's questions sorted the way its seed counts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.evaluation.categories import jessy
from trainer.evaluation.items import Item


def asked(question: str) -> Item:
    return Item("x", [{"role": "system", "content": "You are JESSY."},
                      {"role": "user", "content": question}], {"content": ""}, [])  # fmt: skip


@pytest.mark.parametrize(("question", "category"), [
    ("How are you today?", "conversational"),
    ("Tell me a joke!", "conversational"),
    ("How do I install numpy on Linux?", "technical"),
    ("What does `git rebase` do?", "technical"),
    ("My Python script raises a KeyError, why?", "technical"),
    ("Why do we dream?", "deep"),
    ("Should I change careers at forty?", "deep"),
    ("What is the difference between knowledge and wisdom?", "deep"),
])  # fmt: skip
def test_questions_fall_in_the_seeds_categories(question: str, category: str) -> None:
    assert jessy(asked(question)) == category


def test_a_plot_that_cannot_be_written_is_an_eval_error(tmp_path: Path) -> None:
    from gateway.errors import EvalError
    from trainer.evaluation.plot import plot

    metrics = {"right": {"rate": 0.5}, "seconds": {"value": 0.1}}
    report = {"version": "m@v1", "against": None, "suites": {"general": {"m@v1": metrics}}}
    with pytest.raises(EvalError, match="cannot write the plot to"):
        plot(report, tmp_path / "missing-folder" / "plot.png")
    plot(report, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
