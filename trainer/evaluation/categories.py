"""Kinds of question a workload's held-out items are counted by, where its users' seed has
them: JESSY's conversational, technical and deep questions. A question is technical when it
names code, tools or systems; deep when it asks why, what something means, or what to choose,
or runs long; conversational otherwise. Only the question is read (the last user turn)."""

from __future__ import annotations

import re
from collections.abc import Callable

from trainer.evaluation.items import Item

_TECHNICAL = re.compile(
    r"\b(code|coding|program\w*|python|javascript|typescript|java|rust|golang|c\+\+|sql|regex|"
    r"function|class|method|variable|error|exception|bug|debug\w*|compile\w*|install\w*|linux|"
    r"windows|macos|terminal|shell|bash|command|git|docker|kubernetes|server|api|http\w*|json|"
    r"yaml|database|cpu|gpu|memory|ram|disk|network\w*|router|wifi|algorithm|library|package|"
    r"framework|laptop|computer|software|hardware|browser|excel|spreadsheet)\b|`|\.\w{1,4}\b",
    re.IGNORECASE,
)
_DEEP = re.compile(
    r"\b(why|meaning|purpose|philosoph\w*|ethic\w*|moral\w*|should i|what if|consciousness|"
    r"explain|compare|difference between|trade-?offs?|pros and cons|in depth|deeply|believe|"
    r"society|history of|future of)\b",
    re.IGNORECASE,
)
JESSY = ("conversational", "technical", "deep")


def jessy(item: Item) -> str:
    question = next((m.get("content") or "" for m in reversed(item.messages)
                     if m.get("role") == "user"), "")  # fmt: skip
    if _TECHNICAL.search(question):
        return "technical"
    if _DEEP.search(question) or len(question.split()) > 25:
        return "deep"
    return "conversational"


# Per workload: how its held-out items are sorted into categories.
CATEGORIES: dict[str, Callable[[Item], str]] = {"jessy": jessy}
