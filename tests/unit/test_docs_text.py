"""A project's documentation and code, found, cleaned and chunked for docs Q&A."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from collectors.chunking import Chunker
from collectors.docs_qa import supported
from collectors.docs_text import Document, Skipped, find, read

FIXTURE = Path(__file__).parents[1] / "fixtures" / "docs_project"


def words(text: str) -> int:
    """A stand-in token count: one token a word."""
    return max(1, len(text.split()))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "tinyq"
    shutil.copytree(FIXTURE, root)
    (root / "build").mkdir()
    (root / "build" / "generated.md").write_text("# ignored\n\nbuilt output\n")
    (root / "run.log").write_text("ignored too\n")
    (root / "docs" / "logo.txt").write_bytes(b"\x89PNG\0\0 not text")
    (root / "docs" / "minified.md").write_text("x" * 30_000)
    (root / "docs" / "only-headings.md").write_text("# One\n\n## Two\n\n### Three\n")
    (root / "lib").mkdir()
    (root / "lib" / "deep.py").write_text("def not_read(): pass\n")
    return root


def test_docs_come_first_then_code_at_the_root_src_and_examples(project: Path) -> None:
    found = [(p.as_posix(), kind) for p, kind in find(project)]
    names = [name for name, _ in found]
    assert names[:3] == ["docs/source/configuration.rst", "docs/source/guide.rst",
                         "docs/source/hooks.rst"]  # fmt: skip
    assert ("src/tinyq/__init__.py", "code") in found and ("examples/mail.py", "code") in found
    assert "lib/deep.py" not in names  # code only at the root, src/ and examples/
    assert not any(n.startswith("build/") or n.endswith(".log") for n in names)  # .gitignore


def test_a_git_checkout_is_listed_by_git(project: Path) -> None:
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "scratch.md").write_text("# Scratch\n\nuntracked but not ignored\n")
    names = [p.as_posix() for p, _ in find(project)]
    assert "scratch.md" in names and "build/generated.md" not in names


def test_bad_files_are_skipped_with_a_reason(project: Path) -> None:
    reasons = {
        name: read(project, Path(name), "docs")
        for name in ("docs/logo.txt", "docs/minified.md", "docs/only-headings.md")
    }
    assert all(isinstance(r, Skipped) for r in reasons.values())
    assert [r.reason for r in reasons.values() if isinstance(r, Skipped)] == [
        "binary", "a line of 30,000 characters: generated or minified",
        "no text (only headings, markup or nothing)",
    ]  # fmt: skip


def test_markup_goes_and_headings_become_sections(project: Path) -> None:
    readme = read(project, Path("README.md"), "docs")
    assert isinstance(readme, Document)
    text = "\n".join(b.text for b in readme.blocks)
    assert "shields.io" not in text and "<img" not in text and "build passing" not in text
    assert readme.blocks[1].section == ("tinyq", "Installing")
    assert any(b.code and "Queue(" in b.text for b in readme.blocks)
    index = read(project, Path("docs/source/index.rst"), "docs")
    assert isinstance(index, Document)
    assert "toctree" not in " ".join(b.text for b in index.blocks)
    guide = read(project, Path("docs/source/guide.rst"), "docs")
    assert isinstance(guide, Document) and guide.blocks[0].section == ("Queues",)
    usage = read(project, Path("docs/usage.md"), "docs")
    assert isinstance(usage, Document)
    assert "--json | print the counts as JSON" in [b.text for b in usage.blocks]


def test_a_licence_header_is_dropped_from_code_and_the_docstring_kept(project: Path) -> None:
    code = read(project, Path("src/tinyq/__init__.py"), "code")
    assert isinstance(code, Document)
    assert "Copyright" not in code.blocks[0].text
    assert code.blocks[0].text.startswith('"""tinyq: a small task queue')


def test_three_cuts_of_a_document_and_windows_over_code(project: Path) -> None:
    chunker = Chunker(words, size=40, minimum=12, overlap=8)
    guide = read(project, Path("docs/source/guide.rst"), "docs")
    assert isinstance(guide, Document)
    chunks = chunker.chunks(guide)
    by = {s: [c.text for c in chunks if c.strategy == s] for s in ("heading", "paragraph", "fixed")}
    assert all(by.values())
    assert by["heading"][0].startswith("Queues\n\n")
    assert all(words(t) <= 40 for texts in by.values() for t in texts)
    assert all(t.rstrip().endswith((".", ":", ";", "!", "?")) for t in by["fixed"])
    first, second = by["fixed"][:2]
    assert first.split()[-3:] == second.split()[:3] or set(first.split()) & set(second.split())
    code = read(project, Path("src/tinyq/__init__.py"), "code")
    assert isinstance(code, Document)
    windows = [c.text for c in chunker.chunks(code)]
    assert all(words(w) <= 40 for w in windows) and len(windows) > 3
    assert any(w.lstrip().startswith("def ") for w in windows[1:])  # cut at a definition


def test_one_huge_line_of_prose_is_cut_into_windows_that_fit() -> None:
    chunker = Chunker(words, size=50, minimum=10, overlap=5)
    document = Document(Path("a.md"), "docs")
    from collectors.docs_text import Block

    document.blocks = [Block((), " ".join(["word"] * 1000))]
    assert all(words(c.text) <= 50 for c in chunker.chunks(document))


def test_an_answer_must_come_from_its_chunk() -> None:
    chunk = "The delay before each retry doubles, starting at ten seconds."
    assert supported("It doubles, starting at ten seconds.", chunk)
    assert not supported("Workers run on Kubernetes clusters.", chunk)
    assert not supported("Yes.", chunk)  # no content word to check


def test_a_looping_answer_is_cut_to_its_first_sentence_and_one_that_still_loops_is_poor() -> None:
    from collectors.docs_qa import poor, tidied

    assert poor("How long is the delay?", "It doubles, starting at ten seconds.") is None
    assert tidied("How long is the delay?", "It doubles. Then it stops.") == (
        "How long is the delay?", "It doubles. Then it stops.", "")  # fmt: skip
    rambling = ("The maximum priority is 9. The priority of a job is 10. The priority of a job "
                "is 10. The priority of a job is 10.")  # fmt: skip
    assert tidied("What is the maximum priority?", rambling) == (
        "What is the maximum priority?", "The maximum priority is 9.",
        "the answer to its first sentence")  # fmt: skip
    assert tidied("Where is the queue? How do workers start? Why?", "In a file. Workers run.") == (
        "Where is the queue?", "In a file.", "the question to its first")  # fmt: skip
    assert poor("What is the largest data file?", "10 megabytes") is None  # short: no stop needed
    assert poor("What is the purpose of the", "The file.") == (
        "the question is cut off or not a question")  # fmt: skip
    assert poor("What is the queue file?", "The default queue file in tinyq is a file named") == (
        "the answer stops mid-sentence")  # fmt: skip
    looping = (
        "It is a list of options that can be set to a list of worker options, which "
        "can be set to a list of worker options, which can be set to a list of worker"
    )
    assert poor("What is the default?", looping) == "repeats itself"
    assert poor("How long is the delay?", "ten ten ten ten ten") == "repeats itself"


class Answers:
    """An OpenAI client stand-in that answers each request with the next of `texts`."""

    def __init__(self, *texts: str) -> None:
        from types import SimpleNamespace

        self.texts = list(texts)
        self.asked: list[dict] = []

        async def create(**request: object) -> SimpleNamespace:
            self.asked.append(request)
            message = SimpleNamespace(content=self.texts.pop(0))
            return SimpleNamespace(choices=[SimpleNamespace(message=message)])

        self.chat = SimpleNamespace(completions=SimpleNamespace(create=create))


def test_pairs_are_held_to_the_schema_checked_against_the_chunk_and_judged() -> None:
    import asyncio
    import json

    from collectors.chunking import Chunk
    from collectors.docs_qa import Asker, Options

    chunk = Chunk("docs/retries.rst", "fixed", "The delay before each retry doubles, from ten s.")
    pair = json.dumps({"question": "How long is the delay?", "answer": "It doubles, from ten."})

    def ask(*texts: str, judge: str | None = None) -> tuple[str, str, list[dict]]:
        client = Answers(*texts)
        got = asyncio.run(Asker(client, Options(judge=judge)).pair("tinyq", chunk))
        return got.status, got.reason, client.asked

    status, _, asked = ask(pair)
    assert status == "kept"
    assert asked[0]["response_format"]["json_schema"]["schema"]["required"] == [
        "question", "answer"]  # fmt: skip
    assert asked[0]["extra_headers"] == {"X-Loragate-Workload": "docs-generation"}
    assert ask('{"question": "cut off')[0:2] == ("invalid", "not the JSON asked for")
    off_topic = json.dumps({"question": "Where?", "answer": "On Kubernetes clusters."})
    assert ask(off_topic)[0] == "unsupported"
    looping = json.dumps({"question": "How long is the delay?",
                          "answer": "It doubles, from ten, it doubles, from ten, it doubles, "
                                    "from ten, it doubles, from ten"})  # fmt: skip
    assert ask(looping)[0:2] == ("poor", "repeats itself")
    going_round = json.dumps({"question": "How long is the delay?",
                              "answer": "It doubles, from ten. It doubles from ten and it doubles "
                                        "from ten and it doubles from ten."})  # fmt: skip
    assert ask(going_round)[0:2] == ("kept", "cut the answer to its first sentence")
    status, reason, asked = ask(pair, '{"supported": false}', judge="big")
    assert (status, reason, asked[1]["model"]) == (
        "unsupported", "the judge big found it unsupported", "big")  # fmt: skip
    assert ask(pair, '{"supported": true}', judge="big")[0] == "kept"
