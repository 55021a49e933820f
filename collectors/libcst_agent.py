"""The LibCST code-repair agent's memory, read from its project folder.

The agent asks a model for LibCST transformer scripts, validates them, sends the traceback back
when one fails, and appends a line to `<project>/.agent_data/success_memory.jsonl` when one
validates (`timestamp_utc`, `spec_issue_id`, `spec_issue_description`, `spec_target_files`,
`spec_operations_summary`, `successful_diff_summary`, `successful_script_hash`, `patch_source`).
Patch sets under `<project>/.autopatches/` may hold the scripts.

For each new line the validated script is looked up by its hash (sha256, sha1 or md5 of the
script as written, stripped, or stripped with one final newline; a shortened hash matches by
prefix) among the scripts of recorded `libcst` answers, then among `.autopatches/*.py`:

- found in a recorded answer: that answer is marked accepted (source `libcst_agent`), and the
  earlier answers of its conversation that wrote another script are marked failed (they were
  sent back with a traceback): the conversation is a repair pair, the failures negatives;
- found either way: a scaffolding example is added, the issue description, target files and
  operations as the prompt and the script as the answer, as the agent's documentation proposes;
- found nowhere: the line is kept with the reason, nothing is guessed.

Every line is stored in `agent_memory` with where its script was found and by which hash. Lines
are followed as Continue's are (`collectors.jsonl`): read once, across restarts, rotation and
truncation; a line that is not a JSON object is counted corrupt and skipped.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from collectors.examples import made_example
from collectors.jsonl import FolderWatcher, JsonlFolder, iso_timestamp, line_id, taken_before
from gateway.prompts.scripts import SCAFFOLD_PREFIX, fenced, script_in
from gateway.store import Store
from gateway.store.rows import LineRow, OutcomeRow, Prepared

log = logging.getLogger("loragate")

COLLECTOR = "libcst"
SOURCE = "libcst_agent"
WORKLOAD = "libcst"
MEMORY_DIR = ".agent_data"
MEMORY_FILES = "success_memory*.jsonl"
PATCHES_DIR = ".autopatches"
HASHES = ("sha256", "sha1", "md5")
MAX_PATCH_FILE = 1_000_000  # bytes; larger files are not scripts
SCAFFOLD_SYSTEM = (
    "You write LibCST transformer scripts: Python that defines a libcst.CSTTransformer "
    "subclass making the requested change to the target files. Answer with the script in one "
    "```python block."
)


@dataclass(frozen=True)
class Found:
    """Where a script whose hash a memory line names was found."""

    script: str
    found_in: str  # `.autopatches/<set>/<file>` or `interaction <id>`
    method: str  # e.g. "sha256 of the stripped script"
    interaction_id: str | None = None
    conversation_id: str | None = None
    created_at: float = 0.0


def _variants(script: str) -> Iterator[tuple[str, str]]:
    """The texts an agent may have hashed, each once, named by the first way to get it."""
    seen: set[str] = set()
    for label, text in (
        ("the script as written", script),
        ("the stripped script", script.strip()),
        ("the stripped script with a final newline", script.strip() + "\n"),
    ):
        if text not in seen:
            seen.add(text)
            yield label, text


@dataclass
class ScriptIndex:
    """Scripts by every common hash of them."""

    by_digest: dict[str, Found] = field(default_factory=dict)
    _by_prefix: dict[int, dict[str, Found]] = field(default_factory=dict)

    def add(self, found: Found, *, replace: bool) -> None:
        for label, text in _variants(found.script):
            data = text.encode("utf-8")
            for algorithm in HASHES:
                digest = hashlib.new(algorithm, data).hexdigest()
                if replace or digest not in self.by_digest:
                    self.by_digest[digest] = Found(**{**vars(found), "method": f"{algorithm} "
                                                      f"of {label}"})  # fmt: skip
        self._by_prefix.clear()

    def find(self, wanted: str) -> Found | None:
        """The script a hash names: `abc…`, `sha256:abc…`, or a prefix of 8 or more digits."""
        digest = wanted.strip().lower().rpartition(":")[2]
        if digest in self.by_digest:
            return self.by_digest[digest]
        if len(digest) < 8:
            return None
        if len(digest) not in self._by_prefix:
            prefixes: dict[str, Found] = {}
            for full, found in self.by_digest.items():
                prefixes.setdefault(full[: len(digest)], found)
            self._by_prefix[len(digest)] = prefixes
        return self._by_prefix[len(digest)].get(digest)

    @classmethod
    def of(cls, store: Store, project: Path) -> ScriptIndex:
        """The scripts of recorded `libcst` answers (the newest writer of a script wins), then
        those of `.autopatches/`."""
        index = cls()
        rows = store.query(
            "SELECT id, conversation_id, created_at, response_text FROM interactions "
            "WHERE kind = 'served' AND status = 'complete' "
            "AND (workload = ? OR response_text LIKE '%libcst%') ORDER BY created_at",
            (WORKLOAD,),
        )
        for iid, conversation, created_at, text in rows:
            script = script_in(text or "")
            if script:
                found = Found(script, f"interaction {iid}", "", iid, conversation, created_at)
                index.add(found, replace=True)
        patches = project / PATCHES_DIR
        for path in sorted(patches.rglob("*.py")) if patches.is_dir() else []:
            if path.is_file() and path.stat().st_size <= MAX_PATCH_FILE:
                script = path.read_text(encoding="utf-8", errors="replace")
                index.add(Found(script, str(path.relative_to(project)), ""), replace=False)
        return index


@dataclass
class Entry:
    """One success-memory line."""

    id: str
    data: dict[str, Any]
    created_at: float

    @property
    def description(self) -> str:
        return str(self.data.get("spec_issue_description") or "")

    @property
    def script_hash(self) -> str:
        return str(self.data.get("successful_script_hash") or "")

    def text_list(self, key: str) -> list[str]:
        value = self.data.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []


@dataclass
class MemoryFiles:
    """A project's success-memory files, each line read once."""

    project: Path
    lines: JsonlFolder

    @classmethod
    def open(cls, project: Path, home: Path) -> MemoryFiles:
        key = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:16]
        state = home / "collectors" / f"{COLLECTOR}-{key}.json"
        return cls(project, JsonlFolder.open(project / MEMORY_DIR, state, MEMORY_FILES))

    def read_new(self) -> Iterator[Entry | LineRow]:
        """An `Entry` per new line, or the corrupt line's row."""
        source = f"{self.project.resolve()}/{MEMORY_DIR}"
        for path, line in self.lines.new_lines():
            identity = line_id(f"{source}/{path.name}", line)
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                yield LineRow(id=identity, collector=COLLECTOR, event="memory", status="corrupt",
                              created_at=time.time())  # fmt: skip
                continue
            created_at = iso_timestamp(data.get("timestamp_utc")) or time.time()
            yield Entry(identity, data, created_at)

    def save(self) -> None:
        self.lines.save()


@dataclass
class Report:
    """What `loragate collect libcst` did."""

    project: Path
    statuses: Counter[str] = field(default_factory=Counter)  # joined, script_only, missing
    methods: Counter[str] = field(default_factory=Counter)
    corrupt: int = 0
    before: int = 0
    scaffolds: int = 0
    failed_attempts: int = 0

    @property
    def taken(self) -> int:
        """Lines taken now, corrupt ones included."""
        return sum(self.statuses.values()) + self.corrupt

    def __str__(self) -> str:
        if not self.taken and not self.before:
            return f"nothing new in {self.project / MEMORY_DIR}"
        s = self.statuses
        methods = "; ".join(f"{n} by {m}" for m, n in self.methods.most_common())
        return (
            f"read {self.taken + self.before} new lines from "
            f"{self.project / MEMORY_DIR}: {s['joined']} scripts written by a recorded answer "
            f"(marked a success; {self.failed_attempts} earlier failed attempts marked), "
            f"{s['script_only']} found only in {PATCHES_DIR}/, {s['missing']} found nowhere "
            f"(kept with the reason){f' [matched {methods}]' if methods else ''}; "
            f"{self.scaffolds} scaffolding examples added; skipped {self.before} taken before "
            f"and {self.corrupt} corrupt"
        )


def collect(store: Store, files: MemoryFiles, batch: int = 2_000) -> Report:
    """Take every new memory line into the store now (the gateway need not run)."""
    index = ScriptIndex.of(store, files.project)
    report = Report(files.project)
    pending: list[Prepared] = []
    for item in files.read_new():
        if isinstance(item, Entry):
            pending.append(_prepared(store, files.project, item, index))
        else:
            pending.append({"lines": [item]})
        if len(pending) >= batch:
            _write(store, pending, report)
    _write(store, pending, report)
    files.save()
    return report


def _write(store: Store, pending: list[Prepared], report: Report) -> None:
    known = taken_before(store, [p["lines"][0]["id"] for p in pending])
    store.write(pending)
    for prepared in pending:
        line = prepared["lines"][0]
        if line["id"] in known:
            report.before += 1
        elif line["status"] == "corrupt":
            report.corrupt += 1
        else:
            memory = prepared["memory"][0]
            report.statuses[memory["status"]] += 1
            if memory["hash_method"]:
                report.methods[memory["hash_method"]] += 1
            report.scaffolds += "interaction" in prepared
            report.failed_attempts += sum(o["value"] == 0.0 for o in prepared["outcomes"])
    pending.clear()


def _prepared(store: Store, project: Path, entry: Entry, index: ScriptIndex) -> Prepared:
    found = index.find(entry.script_hash) if entry.script_hash else None
    status = "missing"
    reason = ""
    outcomes: list[OutcomeRow] = []
    if found is None:
        reason = (
            "the line names no script hash" if not entry.script_hash else
            f"no recorded answer and no file in {PATCHES_DIR}/ has a script whose sha256, sha1 "
            f"or md5 is {entry.script_hash}"
        )  # fmt: skip
    elif found.interaction_id is not None:
        status = "joined"
        detail = str(entry.data.get("patch_source") or "validated")
        outcomes.append(_outcome(found.interaction_id, 1.0, "accepted", detail, entry.created_at))
        outcomes += _failed_attempts(store, found, entry.created_at)
    else:
        status = "script_only"
    memory = {
        "id": entry.id, "project": str(project.resolve()), "created_at": entry.created_at,
        "issue_id": _text_or_none(entry.data.get("spec_issue_id")),
        "description": entry.description,
        "target_files": orjson.dumps(entry.text_list("spec_target_files")).decode(),
        "operations": orjson.dumps(entry.text_list("spec_operations_summary")).decode(),
        "diff_summary": str(entry.data.get("successful_diff_summary") or ""),
        "script_hash": entry.script_hash,
        "patch_source": str(entry.data.get("patch_source") or ""),
        "script": found.script if found else None,
        "found_in": found.found_in if found else None,
        "hash_method": found.method if found else None,
        "interaction_id": found.interaction_id if found else None,
        "status": status, "reason": reason,
    }  # fmt: skip
    line = LineRow(id=entry.id, collector=COLLECTOR, event="memory",
                   status="joined" if status == "joined" else "ignored",
                   created_at=entry.created_at)  # fmt: skip
    prepared: Prepared = {"lines": [line], "memory": [memory], "outcomes": outcomes}
    if found is not None and entry.description:
        scaffold = _scaffold(entry, found.script)
        prepared["interaction"] = scaffold["interaction"]
        prepared["tool_calls"] = scaffold["tool_calls"]
        outcomes += scaffold["outcomes"]
    return prepared


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _outcome(iid: str, value: float, kind: str, detail: str, at: float) -> OutcomeRow:
    return OutcomeRow(interaction_id=iid, kind=kind, value=value, source=SOURCE, detail=detail,
                      created_at=at)  # fmt: skip


def _failed_attempts(store: Store, success: Found, at: float) -> list[OutcomeRow]:
    """The answers before the validated one in its conversation that wrote another script:
    the agent sent each back with its traceback."""
    if not success.conversation_id:
        return []
    rows = store.query(
        "SELECT id, response_text FROM interactions WHERE conversation_id = ? "
        "AND created_at < ? AND kind = 'served' AND id <> ?",
        (success.conversation_id, success.created_at, success.interaction_id),
    )
    failed = []
    for iid, text in rows:
        script = script_in(text or "")
        if script is not None and script.strip() != success.script.strip():
            detail = f"failed; repaired by {success.interaction_id}"
            failed.append(_outcome(iid, 0.0, "validated", detail, at))
    return failed


def scaffold_prompt(entry: Entry) -> str:
    """The spec as a request for a script: description, target files, operations."""
    parts = [entry.description.strip()]
    files = entry.text_list("spec_target_files")
    if files:
        parts.append("Target files: " + ", ".join(files))
    operations = entry.text_list("spec_operations_summary")
    if operations:
        parts.append("Operations:\n" + "\n".join(f"- {op}" for op in operations))
    parts.append("Write the LibCST transformer script that makes this change.")
    return "\n\n".join(parts)


def _scaffold(entry: Entry, script: str) -> Prepared:
    """A scaffolding example of the `libcst` workload, accepted."""
    iid = f"{SCAFFOLD_PREFIX}{entry.id[:24]}"
    messages = [{"role": "system", "content": SCAFFOLD_SYSTEM},
                {"role": "user", "content": scaffold_prompt(entry)}]  # fmt: skip
    return made_example(
        iid, entry.created_at, workload=WORKLOAD, client="libcst-agent", version="agent-memory",
        kind="collected", messages=messages, answer=fenced(script),
        outcome=_outcome(iid, 1.0, "accepted", "scaffolding", entry.created_at),
    )  # fmt: skip


def watcher(
    files: MemoryFiles, in_store: Callable[[Callable[[Store], Report]], Awaitable[Report | None]]
) -> FolderWatcher:
    """Follows a project's memory while the gateway serves; `in_store` is the recorder's, so
    that the answers a line names are written before it is joined to them."""

    async def take() -> None:
        report = await in_store(lambda store: collect(store, files))
        if report is not None and report.taken:
            log.info("LibCST agent memory: %s", report)

    return FolderWatcher("the LibCST agent's memory", files.lines.folder, take)
