"""The store: SQLite in WAL mode by default, PostgreSQL given a URL; schema from numbered
migrations.

Migrations are the files `migrations/NNNN_name.sql`, applied in order and recorded in
`schema_migrations`; a shipped migration is never edited, a change is a new file.
All writes go through `Store.write`, which takes prepared items (see
`gateway.recording.records`) so that the recorder's batches and the journal's replay write the
same way. Any database failure (locked, disk full, connection lost) surfaces as one
`StoreError`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import StoreError
from gateway.store.engines import Engine, Params, connect
from gateway.store.rows import LineRow, Prepared

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
INTERACTION_COLUMNS = (
    "id", "created_at", "api", "client", "workload", "model_requested", "version", "propensity",
    "conversation_id", "request", "response_text", "tool_calls", "finish_reason", "status",
    "error", "prompt_tokens", "completion_tokens", "cached_tokens", "latency_ms", "ttft_ms",
    "redactions", "context_hash", "kind", "fallback_of",
)  # fmt: skip
_INSERT_INTERACTION = (
    f"INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in INTERACTION_COLUMNS)}) ON CONFLICT DO NOTHING"
)
_OUTCOME = "INSERT INTO outcomes (interaction_id, kind, value, source, detail, created_at) "
_IGNORE = " ON CONFLICT DO NOTHING"
_INSERT_OUTCOME = (
    _OUTCOME + "SELECT :interaction_id, :kind, :value, :source, :detail, :created_at "
    "WHERE EXISTS (SELECT 1 FROM interactions WHERE id = :interaction_id)" + _IGNORE
)
_JUDGE_CALL = (
    _OUTCOME + "SELECT interaction_id, 'tool_result', :value, 'next_turn', call_id, :created_at "
    "FROM tool_calls WHERE call_id = :call_id" + _IGNORE
)
_REASKED = (
    _OUTCOME + "SELECT id, 'reasked', 0.0, 'next_turn', :id, :created_at FROM interactions "
    "WHERE context_hash = :context_hash AND id != :id AND created_at <= :created_at "
    "AND created_at > :created_at - 3600 ORDER BY created_at DESC LIMIT 1" + _IGNORE
)
# Dev-data events name their interaction by tool-call id, or by the completion text it returned
# shortly before the event.
_MATCH_SOURCES = {
    "call": "SELECT interaction_id AS iid FROM tool_calls WHERE call_id = :key",
    # `length(...) > 0` lets both databases use the partial index on answers
    "text": "SELECT id AS iid FROM interactions WHERE response_text = :key "
    "AND length(response_text) > 0 AND created_at BETWEEN :since AND :until "
    "ORDER BY created_at DESC LIMIT 1",
    # a Jac MTLLM follow-up quotes the answer it could not use
    "output": "SELECT id AS iid FROM interactions WHERE workload = 'jac' AND id <> :detail "
    "AND response_text LIKE :pattern ESCAPE '\\' AND created_at BETWEEN :since AND :until "
    "ORDER BY created_at DESC LIMIT 1",
}
_MATCHED_OUTCOME = (  # `WHERE true` tells SQLite's parser the ON starts the upsert, not a join
    _OUTCOME + "SELECT iid, :kind, :value, :source, :detail, :created_at FROM ({match}) AS m "
    "WHERE true" + _IGNORE
)
_MATCHED_CORRECTION = (
    "INSERT INTO corrections (interaction_id, content, source, created_at) "
    "SELECT iid, :correction, :source, :created_at FROM ({match}) AS m"
)
_INSERT_CORRECTION = (
    "INSERT INTO corrections (interaction_id, content, source, created_at) "
    "SELECT :interaction_id, :content, :source, :created_at "
    "WHERE EXISTS (SELECT 1 FROM interactions WHERE id = :interaction_id)"
)
# An accepted answer to a question that was asked again is the answer the earlier attempts
# should have given: it becomes their correction (text answers only).
_LATER_ANSWER = (
    "INSERT INTO corrections (interaction_id, content, source, created_at) "
    "SELECT o.interaction_id, b.response_text, 'later_answer', :created_at FROM outcomes o "
    "JOIN interactions b ON b.id = o.detail WHERE o.kind = 'reasked' AND o.detail IN ({ids}) "
    "AND b.response_text <> '' AND NOT EXISTS (SELECT 1 FROM corrections c "
    "WHERE c.interaction_id = o.interaction_id AND c.source = 'later_answer')"
)

# The value that settles an MTLLM retry chain corrects each answer re-asked on the way to it:
# the first ask as `[Output] <value>`, the follow-ups (themselves re-asks) as the value.
_MTLLM_REASKS = "o.kind = 'reasked' AND o.source = 'mtllm'"
_SETTLED = (
    "WITH RECURSIVE chain(iid) AS ("
    f"SELECT o.interaction_id FROM outcomes o WHERE {_MTLLM_REASKS} AND o.detail = :id "
    f"UNION SELECT o.interaction_id FROM outcomes o JOIN chain c ON o.detail = c.iid "
    f"WHERE {_MTLLM_REASKS}) "
    "INSERT INTO corrections (interaction_id, content, source, created_at) "
    "SELECT iid, CASE WHEN EXISTS (SELECT 1 FROM outcomes o WHERE "
    f"{_MTLLM_REASKS} AND o.detail = chain.iid) THEN :value ELSE :answer END, "
    "'mtllm_retry', :created_at FROM chain"
)

_INSERT_TOOL_CALL = "INSERT INTO tool_calls VALUES (?, ?, ?)" + _IGNORE
_INSERT_LINE = (
    "INSERT INTO collected_lines (id, collector, event, status, created_at) "
    "VALUES (:id, :collector, :event, :status, :created_at)" + _IGNORE
)
_JOINED_LINE = "UPDATE collected_lines SET status = 'joined' WHERE id = :id"
MEMORY_COLUMNS = (
    "id", "project", "created_at", "issue_id", "description", "target_files", "operations",
    "diff_summary", "script_hash", "patch_source", "script", "found_in", "hash_method",
    "interaction_id", "status", "reason",
)  # fmt: skip
_INSERT_MEMORY = (
    f"INSERT INTO agent_memory ({', '.join(MEMORY_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in MEMORY_COLUMNS)})" + _IGNORE
)


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every migration, in order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise RuntimeError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append((int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    return found


class Store:
    """One database connection, shared by threads one call at a time (a call that writes
    several statements is one transaction).

    `target` is a path (SQLite) or a `postgresql://` URL; `busy_timeout` is how many seconds to
    wait for another writer's lock before failing."""

    def __init__(self, target: Path | str, busy_timeout: float = 5.0) -> None:
        self.target = target
        self.path = Path(target) if isinstance(target, Path) else None
        self._lock = threading.RLock()
        self._db: Engine = self._guard(connect, target, busy_timeout)
        self.dialect = self._db.name
        self.migrate()

    def _guard(self, fn: Any, *args: Any) -> Any:
        try:
            with self._lock:
                return fn(*args)
        except Exception as exc:
            if _is_driver_error(exc):
                raise StoreError(f"store {self.target}: {exc}") from exc
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def query(self, sql: str, params: Params = ()) -> list[Any]:
        """Rows of a SELECT, each readable by index and by column name."""
        return self._guard(lambda: self._db.execute(sql, params).fetchall())

    def one(self, sql: str, params: Params = ()) -> Any:
        return self._guard(lambda: self._db.execute(sql, params).fetchone())

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; returns the rows it changed."""
        return self._guard(lambda: self._db.execute(sql, params).rowcount)

    def run_all(self, statements: Sequence[tuple[str, Params]]) -> None:
        """Run statements in one transaction: all of them take effect, or none."""

        def run() -> None:
            with self._db.transaction():
                for sql, params in statements:
                    self._db.execute(sql, params)

        self._guard(run)

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied; returns their numbers."""
        return self._guard(self._migrate)

    def _migrate(self) -> list[int]:
        db = self._db
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {row[0] for row in db.execute("SELECT version FROM schema_migrations").fetchall()}
        applied = []
        for number, name, sql in migrations():
            if number in done:
                continue
            with db.transaction():
                for statement in _statements(db.ddl(sql)):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (number, name, time.time())
                )
            applied.append(number)
        return applied

    def write(self, items: Iterable[Prepared]) -> int:
        """Write prepared items in one transaction; returns the interactions inserted."""
        return self._guard(self._write, items)

    def _write(self, items: Iterable[Prepared]) -> int:
        db = self._db
        inserted = 0
        with db.transaction():
            for item in items:
                if "interaction" in item:
                    row = item["interaction"]
                    inserted += db.execute(_INSERT_INTERACTION, row).rowcount
                    db.executemany(_INSERT_TOOL_CALL, item["tool_calls"])
                    if row.get("context_hash"):
                        db.execute(_REASKED, row)
                if not self._fresh_lines(item.get("lines", [])):
                    continue  # collected before: what it says is in the store already
                joined = sum(self._match(event) for event in item.get("matched", []))
                if joined:
                    db.executemany(_JOINED_LINE, item.get("lines", []))
                db.executemany(_JUDGE_CALL, item.get("tool_results", []))
                db.executemany(_INSERT_OUTCOME, item.get("outcomes", []))
                db.executemany(_INSERT_CORRECTION, item.get("corrections", []))
                db.executemany(_INSERT_MEMORY, item.get("memory", []))
                db.executemany(_SETTLED, item.get("settled", []))
                for outcome in filter(_accepts, item.get("outcomes", [])):
                    db.execute(_LATER_ANSWER.format(ids=":interaction_id"), outcome)
        return inserted

    def _fresh_lines(self, lines: list[LineRow]) -> bool:
        """Record collected lines; False when one was collected before."""
        return all(self._db.execute(_INSERT_LINE, line).rowcount for line in lines)

    def _match(self, event: Mapping[str, Any]) -> int:
        """Apply a dev-data event to the interaction it names; returns outcomes added."""
        match = _MATCH_SOURCES[event["by"]]
        added = int(self._db.execute(_MATCHED_OUTCOME.format(match=match), event).rowcount)
        if event.get("correction") is not None:
            self._db.execute(_MATCHED_CORRECTION.format(match=match), event)
        if _accepts(event):
            ids = f"SELECT iid FROM ({match}) AS m"
            self._db.execute(_LATER_ANSWER.format(ids=ids), event)
        return added

    def delete_interactions(self, where: str, params: Sequence[Any]) -> int:
        """Delete matching interactions with their outcomes, calls and corrections, and leave
        nothing of them readable in the database files."""

        def run() -> int:
            deleted = self._db.execute(f"DELETE FROM interactions WHERE {where}", params).rowcount
            self._db.after_delete()
            return deleted

        return self._guard(run)

    def has_interaction(self, interaction_id: str) -> bool:
        return self.one("SELECT 1 FROM interactions WHERE id = ?", (interaction_id,)) is not None

    def request_of(self, interaction_id: str) -> dict[str, Any] | None:
        """The recorded request of an interaction (its tools, response schema, messages)."""
        row = self.one("SELECT request FROM interactions WHERE id = ?", (interaction_id,))
        return orjson.loads(row[0]) if row else None


def _accepts(outcome: Mapping[str, Any]) -> bool:
    return outcome.get("kind") == "accepted" and outcome.get("value") == 1.0


def _is_driver_error(exc: BaseException) -> bool:
    """Whether it comes from sqlite3 or psycopg (their errors share no base class)."""
    module = type(exc).__module__
    return module.startswith(("sqlite3", "psycopg"))


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
