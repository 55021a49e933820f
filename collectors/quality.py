"""Whether a small model's generated text makes a poor training example, whatever it says."""

from __future__ import annotations

import re
from collections import Counter

_LOOP = re.compile(r"(.{2,40}?)\1{3,}", re.DOTALL)  # a short piece four times in a row
_WORDS = re.compile(r"\w+")
RUN = 4  # words in a run that, said three times, is a loop in prose


def repeats_itself(text: str) -> bool:
    """A model at temperature 0 that loops: one short piece of text four times in a row
    (`xxxx`, `1, 1, 1, 1`), or the same run of four words three times (a sentence that keeps
    coming back with a clause added)."""
    if _LOOP.search(text):
        return True
    words = _WORDS.findall(text.lower())
    runs = Counter(tuple(words[i : i + RUN]) for i in range(len(words) - RUN + 1))
    return any(n >= 3 for n in runs.values())
