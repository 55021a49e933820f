"""Documentation and code cut into chunks three ways, as the docs Q&A seed does, with budgets
in the served model's tokens:

- `heading`: one chunk per section (its heading path, then its text), small neighbouring
  sections merged up to `minimum` tokens, large ones cut into windows that keep the heading;
- `paragraph`: one chunk per paragraph, small neighbours merged, large ones cut;
- `fixed`: windows of at most `size` tokens that end at sentence ends and overlap by about
  `overlap` tokens;
- code (`code`): windows of at most `size` tokens over lines, cut at the start of a definition
  when one falls in the window's second half, overlapping by about `overlap` tokens.

Each block is tokenized once, and the three cuts share its count; a sentence or line gets the
share of its block's tokens that its share of the block's characters is (tokenizing every
sentence alone would cost more than all the rest).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from collectors.docs_text import Block, Document

STRATEGIES = ("heading", "paragraph", "fixed")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=\S)|\n{2,}")
_DEFINITION = re.compile(
    r"^\s*(?:pub(?:\([a-z]+\))?\s+|export\s+|async\s+|static\s+)*"
    r"(?:def|class|fn|impl|struct|enum|trait|func|function|interface|type|namespace|template)\b"
)

Counted = tuple[str, int]  # a text and its tokens


@dataclass(frozen=True)
class Chunk:
    file: str  # relative to the project
    strategy: str
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(f"{self.strategy}\0{self.text}".encode()).hexdigest()[:32]

    @property
    def preview(self) -> str:
        return " ".join(self.text.split())[:160]


class GgufTokens:
    """A model's token count from its GGUF's vocabulary (nothing else is loaded); about four
    characters a token without one. Pickles as its path: each process loads its own."""

    def __init__(self, gguf: Path | None) -> None:
        self.gguf = gguf

    def __call__(self, text: str) -> int:
        if self.gguf is None:
            return max(1, len(text) // 4)
        return len(_vocabulary(str(self.gguf)).tokenize(text.encode(), False, False))


@cache
def _vocabulary(gguf: str) -> Any:
    from llama_cpp import Llama

    return Llama(gguf, vocab_only=True, verbose=False)


def shares(text: str, tokens: int, parts: list[str]) -> list[Counted]:
    """`parts` of `text` with its `tokens` shared out by characters (at least 1 each)."""
    length = max(1, sum(len(p) for p in parts))
    return [(p, max(1, round(tokens * len(p) / length))) for p in parts]


class Chunker:
    """`count` is the served model's token count of a text."""

    def __init__(self, count: Callable[[str], int], size: int = 256, minimum: int = 48,
                 overlap: int = 32) -> None:  # fmt: skip
        if not 0 <= overlap < size or minimum > size:
            raise ValueError("chunk sizes: need 0 <= overlap < size and minimum <= size")
        self.count, self.size, self.minimum, self.overlap = count, size, minimum, overlap

    def chunks(self, document: Document, strategies: tuple[str, ...] = STRATEGIES) -> list[Chunk]:
        file = document.path.as_posix()
        counted = [(block, self.count(block.text)) for block in document.blocks]
        if document.kind == "code":
            lines = [
                line
                for block, tokens in counted
                for line in shares(block.text, tokens, block.text.splitlines())
            ]
            texts = self._windows(lines, "\n", cut_at=lambda line: bool(_DEFINITION.match(line)))
            return [Chunk(file, "code", t) for t in texts]
        cuts = {"heading": self._heading, "paragraph": self._paragraph, "fixed": self._fixed}
        out = []
        for strategy in strategies:
            out += [Chunk(file, strategy, t) for t in cuts[strategy](counted) if t.strip()]
        return out

    def _heading(self, counted: list[tuple[Block, int]]) -> list[str]:
        sections: list[tuple[tuple[str, ...], list[tuple[Block, int]]]] = []
        for block, tokens in counted:
            if not sections or sections[-1][0] != block.section:
                sections.append((block.section, []))
            sections[-1][1].append((block, tokens))
        texts: list[Counted] = []
        for section, blocks in sections:
            heading = " / ".join(section)
            head_tokens = self.count(heading) + 1 if heading else 0
            total = head_tokens + sum(tokens for _, tokens in blocks)
            body = [b.text for b, _ in blocks]
            if total <= self.size:
                texts.append(("\n\n".join(([heading] if heading else []) + body), total))
                continue
            # a long section is cut into windows that each keep its heading
            room = self.size - head_tokens
            for window in self._windows(_sentence_units(blocks), " ", size=room):
                text = f"{heading}\n\n{window}" if heading else window
                texts.append((text, self.size))
        return self._merged(texts)

    def _paragraph(self, counted: list[tuple[Block, int]]) -> list[str]:
        return self._merged([(block.text, tokens) for block, tokens in counted])

    def _fixed(self, counted: list[tuple[Block, int]]) -> list[str]:
        return self._windows(_sentence_units(counted), " ")

    def _merged(self, texts: list[Counted]) -> list[str]:
        """Neighbours joined until `minimum` tokens (never past `size`); a text over `size`
        is cut into sentence windows."""
        out: list[str] = []
        current: list[str] = []
        total = 0
        for text, tokens in texts:
            if tokens > self.size:
                if current:
                    out.append("\n\n".join(current))
                    current, total = [], 0
                out += self._windows(shares(text, tokens, _sentences(text)), " ")
                continue
            if current and total + tokens > self.size:
                out.append("\n\n".join(current))
                current, total = [], 0
            current.append(text)
            total += tokens
            if total >= self.minimum:
                out.append("\n\n".join(current))
                current, total = [], 0
        if current:
            out.append("\n\n".join(current))
        return out

    def _windows(
        self,
        units: list[Counted],
        joiner: str,
        cut_at: Callable[[str], bool] | None = None,
        size: int | None = None,
    ) -> list[str]:
        """Consecutive units (sentences, lines) in windows of at most `size` tokens, each next
        window starting about `overlap` tokens before the last one ended."""
        size = max(1, size or self.size)
        pieces = [piece for unit in units for piece in _fitting(unit, size)]
        out = []
        start = 0
        while start < len(pieces):
            end, total = start, 0
            while end < len(pieces) and total + pieces[end][1] <= size:
                total += pieces[end][1]
                end += 1
            end = max(end, start + 1)
            if cut_at is not None and end < len(pieces):
                half = start + (end - start) // 2
                cuts = [i for i in range(half, end) if i > start and cut_at(pieces[i][0])]
                end = cuts[-1] if cuts else end
            out.append(joiner.join(text for text, _ in pieces[start:end]))
            if end >= len(pieces):
                break
            back, kept = end, 0
            while back - 1 > start and kept + pieces[back - 1][1] <= min(self.overlap, size // 2):
                back -= 1
                kept += pieces[back][1]
            start = back
        return out


def _fitting(unit: Counted, size: int) -> Iterator[Counted]:
    """A unit over `size` tokens cut into pieces that fit, at spaces where it can."""
    text, tokens = unit
    if tokens <= size:
        yield unit
        return
    width = max(1, len(text) * size // (tokens + 1))
    while text:
        piece = text[:width]
        space = piece.rfind(" ")
        if len(text) > width and space > width // 2:
            piece = piece[:space]
        yield piece, max(1, tokens * len(piece) // max(1, len(unit[0])))
        text = text[len(piece) :].lstrip(" ")


def _sentence_units(counted: list[tuple[Block, int]]) -> list[Counted]:
    return [unit for block, tokens in counted
            for unit in shares(block.text, tokens, _sentences(block.text))]  # fmt: skip


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
