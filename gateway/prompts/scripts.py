"""Code in a model's answer: the script a code-writing agent (the LibCST repair agent) takes from
it, as such agents do: the first fenced Python block, else the whole answer when it is code."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_ANY_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)
_CODE_START = re.compile(r"^\s*(?:import |from \S+ import |class |def |#)", re.MULTILINE)


def script_in(text: str) -> str | None:
    """The script an answer carries, or None when it carries none."""
    fenced = _FENCE.search(text)
    if fenced is not None:
        return fenced.group(1)
    if _CODE_START.match(text):
        return text
    return None


def fenced_blocks(text: str) -> list[str]:
    """Every fenced code block of a text, in order."""
    return [match.group(1) for match in _ANY_FENCE.finditer(text)]


def fenced(script: str) -> str:
    """A script as an answer that carries it."""
    return f"```python\n{script.rstrip()}\n```"


# Interactions made from a code-writing agent's memory (a spec and the script that did it)
# rather than recorded from traffic have ids that start with this.
SCAFFOLD_PREFIX = "memory-"
