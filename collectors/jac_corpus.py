"""`loragate collect jac PATH...`: a Jac codebase's `by llm()` call sites turned into training
pairs for the `jac` workload.

Each `.jac` file is read (`jac_source`); every call with literal arguments to a `by llm()`
ability becomes the prompt MTLLM would send for it, and its completion is `[Output] <value>`:
the value a `check f(...) == value` gives, else the answer a served model writes for the prompt
(constrained to the declared type when the gateway's embedded engine answers). A pair is kept
only when its value has the declared type (`gateway.prompts.mtllm`) and, when a model wrote it,
is not a poor one: it neither repeats one piece of text over and over (a small model at
temperature 0 loops) nor pastes a whole argument into a place of another type; the others are
counted and kept out.

Every pair, kept or not, is a line of `<home>/collectors/jac/<project>-<key>.jsonl` (file, line,
ability, call, value, source, status), written as it arrives: Ctrl-C keeps what is done, and a
second run asks only for what is not done. Kept pairs go into the store as synthetic
interactions of the `jac` workload; a file's pairs share one conversation id, so a dataset
holds out whole files.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from collectors import jac_source
from collectors.examples import MadeExamples, made_example
from collectors.jsonl import done_keys, pairs_file
from collectors.quality import repeats_itself
from gateway.generation import GenerationRequest
from gateway.prompts import mtllm
from gateway.store import Store
from gateway.store.rows import OutcomeRow, Prepared

SOURCE = "jac_corpus"
GENERATION_WORKLOAD = "jac-generation"  # how the generation requests are recorded
_SKIPPED_DIRS = {"__jac_gen__", "node_modules", "__pycache__"}


@dataclass
class Options:
    model: str = "auto"
    concurrency: int = 4
    timeout: float = 120.0
    retries: int = 3
    generate: bool = True  # ask a model for the call sites without an expected value
    max_tokens: int = 256


@dataclass
class Pair:
    key: str  # sha256 of the file and the prompt
    file: str
    line: int
    ability: str
    call: str
    value: str
    source: str  # check or model
    status: str  # kept, invalid (not of the declared type), poor
    reason: str = ""


@dataclass
class Report:
    project: Path
    files: int = 0
    unreadable: list[str] = field(default_factory=list)
    call_sites: int = 0
    not_rendered: Counter[str] = field(default_factory=Counter)
    done_before: int = 0
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, status)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def __str__(self) -> str:
        def of(source: str) -> str:
            kept, bad = self.statuses[(source, "kept")], self.statuses[(source, "invalid")]
            poor = self.statuses[(source, "poor")]
            return f"{kept} kept, {bad} not of the declared type" + (
                f", {poor} poor (looping or pasting an argument)" if source == "model" else ""
            )

        lines = [
            f"{self.project}: {self.files} .jac files read, {len(self.unreadable)} unreadable; "
            f"{self.call_sites} call sites with literal arguments, {self.done_before} done before",
            f"  from checks: {of('check')}",
            f"  from the model: {of('model')}, {sum(self.failures.values())} failed (asked "
            f"again on the next run) in {self.seconds:.1f} s",
        ]
        lines += [f"  unreadable {path}" for path in self.unreadable]
        lines += [f"  not rendered ({n}): {why}" for why, n in self.not_rendered.most_common(5)]
        lines += [f"  failed {n}: {why}" for why, n in self.failures.most_common(5)]
        return "\n".join(lines)


@dataclass
class Site:
    """A call site ready to pair: where it is, its prompt, and its expected value if known."""

    file: str
    line: int
    ability: str
    call: str
    prompt: str
    expected: str | None
    key: str
    texts: tuple[str, ...] = ()  # the string arguments


def jac_files(project: Path) -> list[Path]:
    if project.is_file():
        return [project]
    return sorted(p for p in project.rglob("*.jac")
                  if not any(part in _SKIPPED_DIRS or part.startswith(".")
                             for part in p.relative_to(project).parts[:-1]))  # fmt: skip


def sites_of(project: Path, report: Report) -> list[Site]:
    """Every call site of the project, once per prompt (the first one with an expected value
    wins)."""
    root = project if project.is_dir() else project.parent
    found: dict[str, Site] = {}
    for path in jac_files(project):
        report.files += 1
        rel = path.relative_to(root).as_posix()
        try:
            module = jac_source.read_module(path)
        except (jac_source.JacSyntaxError, UnicodeDecodeError, OSError):
            report.unreadable.append(rel)
            continue
        for call in module.calls:
            if call.ability.method != "Normal":
                report.not_rendered[f"method {call.ability.method}"] += 1
                continue
            try:
                prompt = jac_source.render(call, module)
            except ValueError as exc:
                report.not_rendered[str(exc)] += 1
                continue
            expected = (jac_source.value_text(call.expected, call.ability.output_type)
                        if jac_source.known(call.expected) else None)  # fmt: skip
            key = hashlib.sha256(f"{rel}\x00{prompt}".encode()).hexdigest()[:24]
            texts = tuple(t for t in _strings(call.args) if _sentence(t))
            site = Site(rel, call.line, call.ability.name, call.source, prompt, expected, key,
                        texts)  # fmt: skip
            if key not in found or (expected is not None and found[key].expected is None):
                found[key] = site
    report.call_sites = len(found)
    return list(found.values())


def judged(site: Site, value: str, source: str) -> Pair:
    call = mtllm.read_call(GenerationRequest(model=mtllm.WORKLOAD, messages=_messages(site)))
    answer = f"[Output] {value}"
    problem = call.problem(answer) if call else "the prompt is not read as MTLLM's"
    status = "kept" if problem is None else "invalid"
    if status == "kept" and source == "model" and call is not None:
        problem = poor(value, site, call)
        status = "kept" if problem is None else "poor"
    return Pair(site.key, site.file, site.line, site.ability, site.call, value, source,
                status, problem or "")  # fmt: skip


def poor(value: str, site: Site, call: mtllm.MtllmCall) -> str | None:
    """Why a model's type-correct value still makes a poor example, or None."""
    if repeats_itself(value):
        return "repeats itself"
    if call.output_type is not None and call.output_type.name != "str":
        for text in site.texts:
            if text in value:
                return f"pastes the argument {text[:40]!r}"
    return None


def _sentence(text: str) -> bool:
    """An argument that is a sentence (not a name or a title): pasted whole into a value, it
    was copied rather than read."""
    words = len(text.split())
    return words >= 5 or (words >= 3 and text.rstrip().endswith((".", "!", "?")))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in [*value.keys(), *value.values()] for s in _strings(v)]
    return []


def _messages(site: Site) -> list[dict[str, Any]]:
    return [{"role": "user", "content": site.prompt}]


def stored(pair: Pair, site: Site, project: str, at: float) -> Prepared:
    iid = f"jac-{pair.key}"
    where = f"{pair.file}:{pair.line} {pair.source}"
    outcome = OutcomeRow(interaction_id=iid, kind="type_valid", value=1.0, source=SOURCE,
                         detail=where, created_at=at)  # fmt: skip
    return made_example(
        iid, at, workload=mtllm.WORKLOAD, client="jac-corpus", version="synthetic",
        kind="synthetic", messages=_messages(site), answer=f"[Output] {pair.value}",
        outcome=outcome, conversation=f"jac:{project}:{pair.file}",
    )  # fmt: skip


async def ask(client: Any, site: Site, options: Options) -> str:
    """The value a served model writes for the call (its text after `[Output]`)."""
    response = await client.chat.completions.create(
        model=options.model, messages=_messages(site), temperature=0,
        max_tokens=options.max_tokens,
        extra_headers={"X-Loragate-Workload": GENERATION_WORKLOAD},
    )  # fmt: skip
    text = response.choices[0].message.content or ""
    head, marker, tail = text.partition("[Output]")
    return (tail if marker else head).strip()


async def collect(
    store: Store, home: Path, project: Path, options: Options, client: Any | None,
    *, progress: bool = True,
) -> Report:  # fmt: skip
    """Pairs for one project (a folder or one file); returns what happened."""
    from tqdm import tqdm

    report = Report(project)
    sites = sites_of(project, report)
    out = pairs_file(home, mtllm.WORKLOAD, project)
    done = done_keys(out, "key")
    todo = [s for s in sites if s.key not in done]
    report.done_before = len(sites) - len(todo)
    if client is None or not options.generate:
        todo = [s for s in todo if s.expected is not None]
    name = project.resolve().name
    gate = asyncio.Semaphore(options.concurrency)
    made = MadeExamples(store, out)
    started = time.monotonic()
    bar = tqdm(total=len(todo), desc=f"jac {name}", unit="call", disable=not progress)

    async def one(site: Site) -> None:
        if site.expected is not None:
            pair = judged(site, site.expected, "check")
        else:
            async with gate:
                try:
                    pair = judged(site, await ask(client, site, options), "model")
                except Exception as exc:  # transport errors after the client's retries
                    report.failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                    bar.update()
                    return
        report.statuses[(pair.source, pair.status)] += 1
        kept = stored(pair, site, name, time.time()) if pair.status == "kept" else None
        made.add(asdict(pair), kept)
        bar.update()

    try:
        await asyncio.gather(*(one(s) for s in todo))
    finally:  # Ctrl-C keeps what is done
        bar.close()
        made.flush()
        report.seconds = time.monotonic() - started
    return report
