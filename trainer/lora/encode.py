"""Examples → token ids and labels, through the tokenizer's chat template (the one serving
uses) and its assistant-token mask: loss falls only on the assistant turns an example marks as
targets, everything else is -100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.prompts import templates

IGNORE = -100


@dataclass
class Encoded:
    """One example as the model sees it; `prefix` is how many leading tokens it shares with
    the other examples of its group (system prompt and tool schemas), which carry no loss."""

    id: str
    input_ids: list[int]
    labels: list[int]
    prefix_key: str = ""
    prefix_len: int = 0

    @property
    def target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def render(tokenizer: Any, example: dict[str, Any]) -> str:
    """The text the model trains on: the same string the gateway would send to the engine."""
    messages, tools, _ = _prepared(tokenizer, example)
    return tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=False
    )


def encode(tokenizer: Any, example: dict[str, Any]) -> Encoded:
    messages, tools, targets = _prepared(tokenizer, example)
    out = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=True, add_generation_prompt=False, return_dict=True,
        return_assistant_tokens_mask=True,
    )  # fmt: skip
    ids: list[int] = list(out["input_ids"])
    mask: list[int] = list(out["assistant_masks"])
    assistant_turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    wanted = {assistant_turns.index(t) for t in targets}
    labels = [IGNORE] * len(ids)
    run = -1
    for position, marked in enumerate(mask):
        if marked and (position == 0 or not mask[position - 1]):
            run += 1  # the next assistant turn starts here
        if marked and run in wanted:
            labels[position] = ids[position]
    return Encoded(example["id"], ids, labels)


def _prepared(tokenizer: Any, example: dict[str, Any]) -> tuple[Any, Any, list[int]]:
    """Messages and tools as the template gets them (Ollama's view for the shipped tools
    template, the target turns' calls in the order the model is to write them), and the
    example's target turns renumbered to match."""
    targets = set(example["targets"]) if "targets" in example else set()
    messages, tools, sources = templates.prepare(
        tokenizer.chat_template, example["messages"], example.get("tools"), written=targets
    )
    renumbered = [i for i, source in enumerate(sources) if targets.intersection(source)]
    return messages, tools, renumbered


def first_turn_end(tokenizer: Any, ids: list[int]) -> int:
    """Tokens up to and including the end of the first (system) turn: the part agent requests
    repeat verbatim (system prompt and tool schemas)."""
    end = tokenizer.convert_tokens_to_ids(tokenizer.eos_token or "<|im_end|>")
    try:
        return ids.index(end) + 1
    except ValueError:
        return 0
