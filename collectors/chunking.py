"""Documentation and code cut into chunks three ways, as the docs Q&A seed does, with budgets
in the served model's tokens:

- `heading`: one chunk per section (its heading path, then its text), small neighbouring
  sections merged up to `minimum` tokens, large ones cut as `fixed` does;
- `paragraph`: one chunk per paragraph, small neighbours merged, large ones cut;
- `fixed`: windows of at most `size` tokens that end at sentence ends and overlap by about
  `overlap` tokens;
- code (`code`): windows of at most `size` tokens over lines, cut at the start of a definition
  when one falls in the window's second half, overlapping by about `overlap` tokens.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from collectors.docs_text import Document

STRATEGIES = ("heading", "paragraph", "fixed")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=\S)|\n{2,}")
_DEFINITION = re.compile(
    r"^\s*(?:pub(?:\([a-z]+\))?\s+|export\s+|async\s+|static\s+)*"
    r"(?:def|class|fn|impl|struct|enum|trait|func|function|interface|type|namespace|template)\b"
)


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


class Chunker:
    """`count` is the served model's token count of a text."""

    def __init__(self, count: Callable[[str], int], size: int = 256, minimum: int = 48,
                 overlap: int = 32) -> None:  # fmt: skip
        if not 0 <= overlap < size or minimum > size:
            raise ValueError("chunk sizes: need 0 <= overlap < size and minimum <= size")
        self.count, self.size, self.minimum, self.overlap = count, size, minimum, overlap

    def chunks(self, document: Document, strategies: tuple[str, ...] = STRATEGIES) -> list[Chunk]:
        file = document.path.as_posix()
        if document.kind == "code":
            texts = self._code("\n\n".join(b.text for b in document.blocks))
            return [Chunk(file, "code", t) for t in texts]
        out = []
        for strategy in strategies:
            texts = getattr(self, f"_{strategy}")(document)
            out += [Chunk(file, strategy, t) for t in texts if t.strip()]
        return out

    def _heading(self, document: Document) -> list[str]:
        sections: list[tuple[tuple[str, ...], list[str]]] = []
        for block in document.blocks:
            if not sections or sections[-1][0] != block.section:
                sections.append((block.section, []))
            sections[-1][1].append(block.text)
        texts: list[str] = []
        for section, parts in sections:
            heading = " / ".join(section)
            whole = "\n\n".join(([heading] if heading else []) + parts)
            if self.count(whole) <= self.size:
                texts.append(whole)
                continue
            # a long section is cut into windows that each keep its heading
            room = self.size - (self.count(heading) + 1 if heading else 0)
            for window in self._windows(_sentences("\n\n".join(parts)), " ", size=room):
                texts.append(f"{heading}\n\n{window}" if heading else window)
        return self._merged(texts)

    def _paragraph(self, document: Document) -> list[str]:
        return self._merged([b.text for b in document.blocks])

    def _fixed(self, document: Document) -> list[str]:
        return self._windows(_sentences("\n\n".join(b.text for b in document.blocks)), " ")

    def _merged(self, texts: list[str]) -> list[str]:
        """Neighbours joined until `minimum` tokens (never past `size`); a text over `size`
        is cut into sentence windows."""
        out: list[str] = []
        current: list[str] = []
        tokens = 0
        for text in texts:
            n = self.count(text)
            if n > self.size:
                if current:
                    out.append("\n\n".join(current))
                    current, tokens = [], 0
                out += self._windows(_sentences(text), " ")
                continue
            if current and tokens + n > self.size:
                out.append("\n\n".join(current))
                current, tokens = [], 0
            current.append(text)
            tokens += n
            if tokens >= self.minimum:
                out.append("\n\n".join(current))
                current, tokens = [], 0
        if current:
            out.append("\n\n".join(current))
        return out

    def _windows(
        self,
        units: list[str],
        joiner: str,
        cut_at: Callable[[str], bool] | None = None,
        size: int | None = None,
    ) -> list[str]:
        """Consecutive units (sentences, lines) in windows of at most `size` tokens, each next
        window starting about `overlap` tokens before the last one ended."""
        size = max(1, size or self.size)
        pieces = [piece for unit in units for piece in self._fitting(unit, size)]
        counts = [self.count(piece) for piece in pieces]
        out = []
        start = 0
        while start < len(pieces):
            end, total = start, 0
            while end < len(pieces) and total + counts[end] <= size:
                total += counts[end]
                end += 1
            end = max(end, start + 1)
            if cut_at is not None and end < len(pieces):
                half = start + (end - start) // 2
                cuts = [i for i in range(half, end) if i > start and cut_at(pieces[i])]
                end = cuts[-1] if cuts else end
            out.append(joiner.join(pieces[start:end]))
            if end >= len(pieces):
                break
            back, kept = end, 0
            while back - 1 > start and kept + counts[back - 1] <= min(self.overlap, size // 2):
                back -= 1
                kept += counts[back]
            start = back
        return out

    def _fitting(self, unit: str, size: int) -> Iterator[str]:
        """A unit over `size` tokens cut into pieces that fit, at spaces where it can."""
        n = self.count(unit)
        if n <= size:
            yield unit
            return
        width = max(1, len(unit) * size // (n + 1))
        while unit:
            piece = unit[:width]
            space = piece.rfind(" ")
            if len(unit) > width and space > width // 2:
                piece = piece[:space]
            yield piece
            unit = unit[len(piece) :].lstrip(" ")

    def _code(self, code: str) -> list[str]:
        lines = code.splitlines()
        return self._windows(lines, "\n", cut_at=lambda line: bool(_DEFINITION.match(line)))


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
