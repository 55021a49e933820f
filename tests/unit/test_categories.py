"""JESSY's questions sorted the way its seed counts them."""

from __future__ import annotations

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
