"""`loragate collect docs PATH...`: a project's documentation and code taught to the model as
question/answer pairs.

Each project's files are read and cleaned (`docs_text`), cut three ways (`chunking`), and a
served model is asked for one question and its answer per chunk, held to a JSON schema by
constrained decoding: up to `concurrency` requests in flight, each with a time limit, retried
with backoff by the `openai` client. A pair is kept when its answer is supported by its chunk
(at least half of the answer's content words occur in it, and, with a judge model, the judge
says the chunk states it) and is not a poor one: a string of questions is cut to its first
and an answer that loops to its first sentence, and a pair that still loops, whose question is
cut off or whose answer stops mid-sentence is dropped; the others are counted and kept out.
Every pair, kept or not, is a line of `<home>/collectors/docs/<project>-<key>.jsonl` (question,
answer, project, file, strategy, chunk preview and hash, status), written as it arrives: Ctrl-C
keeps what is done, and a second run skips the chunks already done. Kept pairs go into the store
as synthetic interactions of the `docs` workload (`kind` `synthetic`) with the system prompt the
user will ask with; a file's pairs share one conversation id, so a dataset holds out whole files.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from collectors.chunking import STRATEGIES, Chunk, Chunker
from collectors.docs_text import CODE_EXTENSIONS, DOC_EXTENSIONS, Skipped, find, read
from collectors.examples import MadeExamples, made_example
from collectors.jsonl import done_keys, pairs_file
from collectors.quality import repeats_itself
from gateway.store import Store
from gateway.store.rows import OutcomeRow, Prepared

PARALLEL_BYTES = 2_000_000  # a project this large is read and cut in a process per core
WORKLOAD = "docs"
SOURCE = "docs_qa"
GENERATION_WORKLOAD = "docs-generation"  # how the generation requests are recorded
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"supported": {"type": "boolean"}},
    "required": ["supported"],
    "additionalProperties": False,
}
PAIR_SCHEMA = {
    "type": "object",
    "properties": {  # bounded, so that a rambling model still closes its JSON
        "question": {"type": "string", "minLength": 8, "maxLength": 160},
        "answer": {"type": "string", "minLength": 2, "maxLength": 320},
    },
    "required": ["question", "answer"],
    "additionalProperties": False,
}
WRITER = (
    "You make study cards from software documentation. Read the text, pick one fact it "
    "states, and write a question a user would ask about that fact and its answer: the "
    "sentence of the text that states it, copied word for word. Answer with JSON: "
    '{"question": "...", "answer": "..."}.'
)
_WORD = re.compile(r"[a-z0-9_]+")
SHORT_ANSWER_WORDS = 4
_FINISHED = (".", "!", "?", ")", "`", '"', "'")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(])")
_STOPWORDS = frozenset((
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "by", "is", "are",
    "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "as", "at",
    "from", "can", "will", "would", "should", "may", "might", "must", "not", "no", "yes", "do",
    "does", "did", "has", "have", "had", "you", "your", "we", "our", "they", "their", "he",
    "she", "his", "her", "i", "me", "my", "what", "which", "who", "how", "when", "where",
    "why", "if", "then", "than", "so", "such", "there", "here", "also", "only", "any", "all",
    "each", "more", "most", "other", "into", "about", "over", "under",
))  # fmt: skip


@dataclass
class Options:
    model: str = "auto"
    concurrency: int = 8
    timeout: float = 120.0
    retries: int = 3
    strategies: tuple[str, ...] = STRATEGIES
    doc_extensions: tuple[str, ...] = DOC_EXTENSIONS
    code_extensions: tuple[str, ...] = CODE_EXTENSIONS
    max_chunks: int | None = None  # per project; None: all
    system: str | None = None  # the system prompt users will ask with [about the project]
    judge: str | None = None  # a model that also decides whether the chunk supports the answer


@dataclass
class Pair:
    question: str
    answer: str
    project: str
    file: str
    strategy: str
    preview: str
    chunk_hash: str
    status: str  # kept, unsupported, poor, invalid
    reason: str = ""


@dataclass
class Report:
    project: Path
    files: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    chunks: Counter[str] = field(default_factory=Counter)  # by strategy
    done_before: int = 0
    # kept, unsupported, poor, invalid, failed
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def __str__(self) -> str:
        asked = sum(self.statuses.values())
        rate = asked / self.seconds if self.seconds else 0.0
        chunks = ", ".join(f"{n} by {s}" for s, n in self.chunks.items()) or "none"
        lines = [
            f"{self.project}: {self.files} files read, {len(self.skipped)} skipped; chunks: "
            f"{chunks}; {self.done_before} done before",
            f"  asked {asked} in {self.seconds:.1f} s ({rate:.2f}/s): {self.statuses['kept']} "
            f"pairs kept, {self.statuses['unsupported']} not supported by their chunk, "
            f"{self.statuses['poor']} poor (looping or cut off), "
            f"{self.statuses['invalid']} not a question and answer, {self.statuses['failed']} "
            "failed (asked again on the next run)",
        ]
        lines += [f"  skipped {s.path}: {s.reason}" for s in self.skipped]
        lines += [f"  failed {n}: {why}" for why, n in self.failures.most_common(5)]
        return "\n".join(lines)


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOPWORDS}


def tidied(question: str, answer: str) -> tuple[str, str, str]:
    """A small model's pair cut to what it can teach: a string of questions to its first
    question and the answer to its first sentence (which answers that one), an answer that
    loops to its first sentence (a small model at temperature 0 states the fact, then goes
    round). Returns the question, the answer and what was cut ("" when nothing)."""
    cut = []
    if question.count("?") > 1:
        question = question[: question.index("?") + 1]
        cut.append("the question to its first")
        answer = first_sentence(answer)
    if repeats_itself(answer) and (shorter := first_sentence(answer)) != answer:
        answer = shorter
        cut.append("the answer to its first sentence")
    return question, answer, " and ".join(cut)


def first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def poor(question: str, answer: str) -> str | None:
    """Why a (tidied) pair still makes a poor example whatever its chunk says, or None: it
    loops, its question is cut off or is not one, or its answer stops mid-sentence (a short
    answer such as "10 megabytes" needs no full stop)."""
    if repeats_itself(answer) or repeats_itself(question):
        return "repeats itself"
    if not question.endswith("?"):
        return "the question is cut off or not a question"
    if len(answer.split()) > SHORT_ANSWER_WORDS and not answer.endswith(_FINISHED):
        return "the answer stops mid-sentence"
    return None


def supported(answer: str, chunk: str) -> bool:
    """Whether at least half of the answer's content words occur in the chunk."""
    words = content_words(answer)
    return bool(words) and len(words & content_words(chunk)) * 2 >= len(words)


def chunks_of(
    project: Path, options: Options, count: Callable[[str], int], report: Report
) -> list[Chunk]:
    """Every chunk of a project's files; a large project is read and cut in one process per
    core (`count` must then pickle, as `GgufTokens` does)."""
    found = find(project, options.doc_extensions, options.code_extensions)
    jobs = [(count, project, path, kind, options.strategies) for path, kind in found]
    size = sum((project / path).stat().st_size for path, _ in found)
    cores = os.cpu_count() or 1
    if size >= PARALLEL_BYTES and cores > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(cores, 8)) as pool:
            results = list(pool.map(_chunk_file, jobs, chunksize=8))
    else:
        results = [_chunk_file(job) for job in jobs]
    chunks = []
    for result in results:
        if isinstance(result, Skipped):
            report.skipped.append(result)
        else:
            report.files += 1
            chunks += result
    return chunks


def _chunk_file(job: tuple[Callable[[str], int], Path, Path, str, tuple[str, ...]]) -> Any:
    count, project, path, kind, strategies = job
    document = read(project, path, kind)
    if isinstance(document, Skipped):
        return document
    return Chunker(count).chunks(document, strategies)


def system_prompt(project: Path, options: Options) -> str:
    return options.system or (
        f"You answer questions about {project.resolve().name}, from its documentation and code."
    )


class Asker:
    """One question/answer pair per chunk from an OpenAI-compatible endpoint."""

    def __init__(self, client: Any, options: Options) -> None:
        self.client, self.options = client, options

    async def pair(self, project: str, chunk: Chunk) -> Pair:
        asked = f"From {chunk.file} of {project}:\n\n{chunk.text}\n\n"
        messages = [
            {"role": "system", "content": WRITER},
            {
                "role": "user",
                "content": asked + "Write one question about this text and its answer.",
            },
        ]
        schema = {"name": "pair", "schema": PAIR_SCHEMA, "strict": True}
        response = await self.client.chat.completions.create(
            model=self.options.model,
            messages=messages,
            response_format={"type": "json_schema", "json_schema": schema},
            temperature=0,
            max_tokens=400,  # the schema's bounds fit
            extra_headers={"X-Loragate-Workload": GENERATION_WORKLOAD},
        )
        text = response.choices[0].message.content or ""
        base = {"project": project, "file": chunk.file, "strategy": chunk.strategy,
                "preview": chunk.preview, "chunk_hash": chunk.hash}  # fmt: skip
        try:
            value = orjson.loads(text)
            question, answer = str(value["question"]).strip(), str(value["answer"]).strip()
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return Pair("", text[:200], **base, status="invalid", reason="not the JSON asked for")
        if not question or not answer:
            return Pair(question, answer, **base, status="invalid", reason="empty")
        question, answer, cut = tidied(question, answer)
        if problem := poor(question, answer):
            return Pair(question, answer, **base, status="poor", reason=problem)
        if not supported(answer, chunk.text):
            why = "under half of the answer's content words are in the chunk"
            return Pair(question, answer, **base, status="unsupported", reason=why)
        if self.options.judge and not await self.judged(chunk.text, question, answer):
            why = f"the judge {self.options.judge} found it unsupported"
            return Pair(question, answer, **base, status="unsupported", reason=why)
        return Pair(question, answer, **base, status="kept", reason=cut and f"cut {cut}")

    async def judged(self, text: str, question: str, answer: str) -> bool:
        """The judge's verdict: does the text say what the answer says?"""
        asked = (
            f"Text:\n{text}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
            "Does the text state this answer to the question? Answer with JSON."
        )
        schema = {"name": "verdict", "schema": VERDICT_SCHEMA, "strict": True}
        response = await self.client.chat.completions.create(
            model=self.options.judge,
            messages=[{"role": "user", "content": asked}],
            response_format={"type": "json_schema", "json_schema": schema},
            temperature=0,
            max_tokens=16,
            extra_headers={"X-Loragate-Workload": GENERATION_WORKLOAD},
        )
        try:
            return orjson.loads(response.choices[0].message.content or "")["supported"] is True
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return False


def stored(pair: Pair, system: str, at: float) -> Prepared:
    """A kept pair as a synthetic example of the `docs` workload; a file's pairs are one group."""
    iid = f"docs-{pair.chunk_hash}"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": pair.question}]
    outcome = OutcomeRow(interaction_id=iid, kind="supported", value=1.0, source=SOURCE,
                         detail=pair.strategy, created_at=at)  # fmt: skip
    return made_example(
        iid,
        at,
        workload=WORKLOAD,
        client="docs-qa",
        version="synthetic",
        kind="synthetic",
        messages=messages,
        answer=pair.answer,
        outcome=outcome,
        conversation=f"docs:{pair.project}:{pair.file}",
    )


async def collect(
    store: Store, home: Path, project: Path, options: Options, count_tokens: Callable[[str], int],
    client: Any, *, progress: bool = True,
) -> Report:  # fmt: skip
    """Chunk one project and ask for its pairs; returns what happened."""
    from tqdm import tqdm

    report = Report(project)
    chunks = chunks_of(project, options, count_tokens, report)
    report.chunks = Counter(c.strategy for c in chunks)
    out = pairs_file(home, WORKLOAD, project)
    done = done_keys(out, "chunk_hash")
    todo = [c for c in chunks if c.hash not in done]
    report.done_before = len(chunks) - len(todo)
    if options.max_chunks is not None:
        todo = todo[: options.max_chunks]
    name, system = project.resolve().name, system_prompt(project, options)
    asker = Asker(client, options)
    gate = asyncio.Semaphore(options.concurrency)
    made = MadeExamples(store, out)
    started = time.monotonic()
    bar = tqdm(total=len(todo), desc=f"docs {name}", unit="chunk", disable=not progress)

    async def one(chunk: Chunk) -> None:
        async with gate:
            try:
                pair = await asker.pair(name, chunk)
            except Exception as exc:  # transport errors after the client's retries
                report.statuses["failed"] += 1
                report.failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                bar.update()
                return
        report.statuses[pair.status] += 1
        made.add(asdict(pair), stored(pair, system, time.time()) if pair.status == "kept" else None)
        bar.update()

    try:
        await asyncio.gather(*(one(c) for c in todo))
    finally:  # Ctrl-C keeps what is done
        bar.close()
        made.flush()
        report.seconds = time.monotonic() - started
    return report
