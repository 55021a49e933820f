"""Examples into micro-batches: encoded, grouped by the prefix they share (an agent's system
prompt and tools), sorted by what follows and cut so that padding stays small."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from trainer.lora.encode import IGNORE, Encoded, encode, first_turn_end
from trainer.lora.recipe import Recipe


@dataclass
class Batch:
    """Examples sharing `prefix` (possibly empty), their suffixes right-padded to one length."""

    prefix: list[int]
    items: list[Encoded]

    @property
    def width(self) -> int:
        return max(len(e.input_ids) - len(self.prefix) for e in self.items)

    @property
    def real_tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.items)

    @property
    def computed_tokens(self) -> int:
        """Token positions the forward passes run over: the prefix once, padded suffixes."""
        return len(self.prefix) + self.width * len(self.items)

    @property
    def target_tokens(self) -> int:
        return sum(e.target_tokens for e in self.items)


MAX_PADDING = 0.1


def make_batches(encoded: list[Encoded], recipe: Recipe) -> list[Batch]:
    """Group by shared prefix, sort by suffix length, and fill micro-batches of up to
    `batch_size` examples and `batch_tokens` positions, starting a new one where the next
    example would make padding exceed 10 % of the positions computed. The shared prefix
    counts: it is computed once per micro-batch, so behind a long prefix (an agent's system
    prompt and tools) a few padded suffix positions cost less than another micro-batch."""
    groups: dict[str, list[Encoded]] = defaultdict(list)
    for e in encoded:
        groups[e.prefix_key].append(e)
    batches: list[Batch] = []
    for key, members in sorted(groups.items()):
        shared = recipe.shared_prefix and key != "" and len(members) > 1
        prefix = members[0].input_ids[: members[0].prefix_len] if shared else []
        members.sort(key=lambda e: len(e.input_ids))
        current: list[Encoded] = []
        used = 0
        for e in members:
            width = len(e.input_ids) - len(prefix)  # the widest so far: members are sorted
            padded = (len(current) + 1) * width
            full = len(current) >= recipe.batch_size or len(prefix) + padded > recipe.batch_tokens
            waste = (padded - used - width) / (len(prefix) + padded)
            if current and (full or waste > MAX_PADDING):
                batches.append(Batch(prefix, current))
                current, used = [], 0
            current.append(e)
            used += width
        if current:
            batches.append(Batch(prefix, current))
    return batches


def prepare_examples(
    tokenizer: Any, examples: list[dict[str, Any]], recipe: Recipe
) -> tuple[list[Encoded], list[str]]:
    """Encode, mark shared prefixes, and leave out what is too long or has no target."""
    kept, left_out = [], []
    for example in examples:
        e = encode(tokenizer, example)
        if len(e.input_ids) > recipe.max_len or e.target_tokens == 0:
            left_out.append(example["id"])
            continue
        cut = first_turn_end(tokenizer, e.input_ids)
        if cut >= recipe.min_prefix and all(label == IGNORE for label in e.labels[:cut]):
            digest = hashlib.sha256(json.dumps(e.input_ids[:cut]).encode()).hexdigest()
            e.prefix_key, e.prefix_len = digest[:16], cut
        kept.append(e)
    return kept, left_out


def padding_waste(batches: list[Batch]) -> float:
    """Share of computed positions that are padding (the shared prefix counted once)."""
    computed = sum(b.computed_tokens for b in batches)
    useful = sum(len(b.prefix) + sum(len(e.input_ids) - len(b.prefix) for e in b.items)
                 for b in batches)  # fmt: skip
    return 1 - useful / max(computed, 1)
