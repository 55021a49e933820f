"""A project's documentation and code as plain text blocks, for `loragate collect docs`.

Which files: documentation (`.md`, `.rst`, `.txt`, `docs/` and `docs/source/` first) anywhere in
the tree, code (`.py`, `.rs`, `.c`, `.cpp`, `.h`, `.hpp`, `.go`, `.ts`, `.js`) at the root and
under `src/` and `examples/`; what git ignores (or, outside a git checkout, the root
`.gitignore`) and binary files are skipped. Markup is removed with real parsers (docutils for
reStructuredText, markdown-it-py for Markdown): headings are kept as the section path of the
text under them, badges, images, raw HTML, toctrees and other directives' markup are dropped;
code keeps its text without a leading licence header. Each skipped file has a reason.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DOC_EXTENSIONS = (".md", ".rst", ".txt")
CODE_EXTENSIONS = (".py", ".rs", ".c", ".cpp", ".h", ".hpp", ".go", ".ts", ".js")
CODE_PLACES = ("", "src", "examples")  # "": the root folder itself, not the folders below
DOC_FIRST = ("docs/source", "docs")
MAX_FILE_BYTES = 20_000_000
MAX_LINE = 20_000  # characters: a longer line is generated or minified, not prose or code
ALWAYS_SKIPPED = {".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", "target"}
_SPACES = re.compile(r"[ \t\r\f\v]+")
_LICENCE = re.compile(r"licen[cs]e|copyright|spdx-license", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """A paragraph, list item or code block, with the headings above it."""

    section: tuple[str, ...]
    text: str
    code: bool = False


@dataclass
class Document:
    path: Path  # relative to the project
    kind: str  # "docs" or "code"
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def find(root: Path, doc_extensions: tuple[str, ...] = DOC_EXTENSIONS,
         code_extensions: tuple[str, ...] = CODE_EXTENSIONS) -> list[tuple[Path, str]]:  # fmt: skip
    """(path relative to `root`, "docs" or "code") of the files to read, docs first."""
    candidates = _listed(root)
    docs = [p for p in candidates if p.suffix.lower() in doc_extensions]
    docs.sort(key=lambda p: (_doc_rank(p), str(p)))
    code = [p for p in candidates if p.suffix.lower() in code_extensions and _code_place(p)]
    return [(p, "docs") for p in docs] + [(p, "code") for p in sorted(code)]


def _code_place(path: Path) -> bool:
    """Code at the root, or anywhere under `src/` or `examples/`."""
    return len(path.parts) == 1 or path.parts[0] in CODE_PLACES[1:]


def _doc_rank(path: Path) -> int:
    text = path.as_posix()
    for rank, place in enumerate(DOC_FIRST):
        if text.startswith(place + "/"):
            return rank
    return len(DOC_FIRST)


def _listed(root: Path) -> list[Path]:
    """Files git would track (tracked, or untracked and not ignored); outside a checkout,
    every file not matched by the root `.gitignore`."""
    try:
        listing = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        done = subprocess.run(["git", "-C", str(root), *listing], capture_output=True, timeout=60)
    except OSError:  # no git on this machine
        done = None
    if done is not None and done.returncode == 0:
        names = done.stdout.decode("utf-8", "replace").split("\0")
        paths = [Path(n) for n in names if n]
    else:  # not a git checkout
        paths = list(_walk(root))
    return [p for p in paths if not ALWAYS_SKIPPED.intersection(p.parts) and (root / p).is_file()]


def _walk(root: Path) -> Iterator[Path]:
    import pathspec

    ignore = root / ".gitignore"
    lines = ignore.read_text("utf-8", "replace").splitlines() if ignore.exists() else []
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not spec.match_file(relative.as_posix()):
            yield relative


def read(root: Path, path: Path, kind: str) -> Document | Skipped:
    """A file's blocks, or why it is skipped."""
    full = root / path
    size = full.stat().st_size
    if size > MAX_FILE_BYTES:
        return Skipped(path, f"{size:,} bytes: larger than {MAX_FILE_BYTES:,}")
    data = full.read_bytes()
    if b"\0" in data[:8192]:
        return Skipped(path, "binary")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Skipped(path, "not UTF-8 text")
    longest = max((len(line) for line in text.splitlines()), default=0)
    if longest > MAX_LINE:
        return Skipped(path, f"a line of {longest:,} characters: generated or minified")
    suffix = path.suffix.lower()
    if kind == "code":
        blocks = [Block((), _without_licence(text).strip(), code=True)]
    elif suffix == ".md":
        blocks = markdown_blocks(text)
    elif suffix == ".rst":
        blocks = rst_blocks(text)
    else:
        blocks = [Block((), _clean(p)) for p in re.split(r"\n\s*\n", text)]
    blocks = [b for b in blocks if b.text]
    if not blocks:
        return Skipped(path, "no text (only headings, markup or nothing)")
    return Document(path, kind, blocks)


def _clean(text: str) -> str:
    return " ".join(_SPACES.sub(" ", line).strip() for line in text.splitlines()).strip()


def _without_licence(code: str) -> str:
    """Code without its leading comment lines when they are a licence or copyright notice."""
    lines = code.splitlines(keepends=True)
    end = 0
    in_block = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if in_block or stripped.startswith(("#!", "#", "//", "/*")) or not stripped:
            in_block = (in_block or stripped.startswith("/*")) and "*/" not in stripped
            end = i + 1
        else:
            break
    header = "".join(lines[:end])
    return "".join(lines[end:]) if _LICENCE.search(header) else code


def markdown_blocks(text: str) -> list[Block]:
    """Markdown through markdown-it-py: headings become sections; paragraphs, list items,
    table cells and fenced code become blocks; images (badges), raw HTML and front matter go."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    section: list[tuple[int, str]] = []
    blocks: list[Block] = []
    heading_level = 0
    row: list[str] | None = None  # the cells of a table row, read as one block
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            if any(row):
                blocks.append(Block(tuple(s[1] for s in section), " | ".join(row)))
            row = None
        elif token.type == "inline" and row is not None:
            row.append(_inline_text(token))
        elif token.type == "heading_open":
            heading_level = int(token.tag[1:])
        elif token.type == "inline" and heading_level:
            section = [s for s in section if s[0] < heading_level] + [
                (heading_level, _inline_text(token))
            ]
            heading_level = 0
        elif token.type == "inline":
            words = _inline_text(token)
            if words:
                blocks.append(Block(tuple(s[1] for s in section), words))
        elif token.type in ("fence", "code_block"):
            blocks.append(Block(tuple(s[1] for s in section), token.content.strip(), code=True))
    return blocks


def _inline_text(token: object) -> str:
    parts = []
    for child in getattr(token, "children", None) or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return _clean("".join(parts))


def rst_blocks(text: str) -> list[Block]:
    """reStructuredText through docutils: sections by title; paragraphs and literal blocks;
    directives it does not know (Sphinx's toctree, ...) and their error messages dropped."""
    from docutils import nodes
    from docutils.core import publish_doctree

    settings = {"report_level": 5, "halt_level": 5, "file_insertion_enabled": False,
                "raw_enabled": False, "warning_stream": False}  # fmt: skip
    tree = publish_doctree(text, settings_overrides=settings)
    for message in list(tree.findall(nodes.system_message)):
        message.parent.remove(message)
    for problem in list(tree.findall(nodes.problematic)):
        problem.parent.remove(problem)
    blocks: list[Block] = []
    for node in tree.findall(lambda n: isinstance(n, nodes.paragraph | nodes.literal_block)):
        if node.next_node(nodes.image) is not None and not node.astext().strip():
            continue
        titles = tuple(
            s[0].astext() for s in _ancestors(node) if isinstance(s, nodes.section) and len(s)
        )
        code = isinstance(node, nodes.literal_block)
        content = node.astext().strip() if code else _clean(node.astext())
        blocks.append(Block(titles, content, code=code))
    return blocks


def _ancestors(node: object) -> list[object]:
    chain = []
    parent = getattr(node, "parent", None)
    while parent is not None:
        chain.append(parent)
        parent = getattr(parent, "parent", None)
    return list(reversed(chain))
