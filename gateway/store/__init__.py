"""The store: SQLite in WAL mode, schema from numbered migrations.

Migrations are the files `migrations/NNNN_name.sql`, applied in order and recorded in
`schema_migrations`; a shipped migration is never edited, a change is a new file.
All writes go through `Store.write`, which takes prepared items (see `gateway.records`) so that
the recorder's batches and the journal's replay write the same way.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
INTERACTION_COLUMNS = (
    "id", "created_at", "api", "client", "workload", "model_requested", "version", "propensity",
    "conversation_id", "request", "response_text", "tool_calls", "finish_reason", "status",
    "error", "prompt_tokens", "completion_tokens", "cached_tokens", "latency_ms", "ttft_ms",
    "redactions", "context_hash",
)  # fmt: skip
_INSERT_INTERACTION = (
    f"INSERT OR IGNORE INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in INTERACTION_COLUMNS)})"
)
_INSERT_OUTCOME = (
    "INSERT OR IGNORE INTO outcomes (interaction_id, kind, value, source, detail, created_at) "
    "SELECT :interaction_id, :kind, :value, :source, :detail, :created_at "
    "WHERE EXISTS (SELECT 1 FROM interactions WHERE id = :interaction_id)"
)
_JUDGE_CALL = (
    "INSERT OR IGNORE INTO outcomes (interaction_id, kind, value, source, detail, created_at) "
    "SELECT interaction_id, 'tool_result', :value, 'next_turn', call_id, :created_at "
    "FROM tool_calls WHERE call_id = :call_id"
)
_REASKED = (
    "INSERT OR IGNORE INTO outcomes (interaction_id, kind, value, source, detail, created_at) "
    "SELECT id, 'reasked', 0.0, 'next_turn', :id, :created_at FROM interactions "
    "WHERE context_hash = :context_hash AND id != :id AND created_at <= :created_at "
    "AND created_at > :created_at - 3600 ORDER BY created_at DESC LIMIT 1"
)
# Dev-data events name their interaction by tool-call id, or by the completion text it returned
# shortly before the event.
_MATCH_SOURCES = {
    "call": "SELECT interaction_id AS iid FROM tool_calls WHERE call_id = :key",
    "text": "SELECT id AS iid FROM interactions WHERE response_text = :key "
    "AND created_at BETWEEN :since AND :until ORDER BY created_at DESC LIMIT 1",
}
_MATCHED_OUTCOME = (
    "INSERT OR IGNORE INTO outcomes (interaction_id, kind, value, source, detail, created_at) "
    "SELECT iid, :kind, :value, :source, :detail, :created_at FROM ({match})"
)
_MATCHED_CORRECTION = (
    "INSERT INTO corrections (interaction_id, content, source, created_at) "
    "SELECT iid, :correction, :source, :created_at FROM ({match})"
)
_INSERT_CORRECTION = (
    "INSERT INTO corrections (interaction_id, content, source, created_at) "
    "SELECT :interaction_id, :content, :source, :created_at "
    "WHERE EXISTS (SELECT 1 FROM interactions WHERE id = :interaction_id)"
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


def connect(path: Path, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """A connection in WAL mode with foreign keys on; `synchronous=NORMAL` keeps WAL commits
    durable against process crashes (a power cut may lose the last commits, never corrupts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


class Store:
    """One SQLite database; use from one thread at a time."""

    def __init__(self, path: Path, busy_timeout: float = 5.0) -> None:
        """`busy_timeout`: seconds to wait for another writer before failing."""
        self.path = path
        self.conn = connect(path, busy_timeout)
        self.migrate()

    def close(self) -> None:
        self.conn.close()

    def migrate(self) -> list[int]:
        """Apply the migrations not yet applied; returns their numbers."""
        c = self.conn
        c.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        done = {row[0] for row in c.execute("SELECT version FROM schema_migrations")}
        applied = []
        for number, name, sql in migrations():
            if number in done:
                continue
            c.execute("BEGIN")
            try:
                for statement in _statements(sql):
                    c.execute(statement)
                c.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (number, name, time.time())
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            applied.append(number)
        return applied

    def write(self, items: Iterable[dict[str, Any]]) -> int:
        """Write prepared items in one transaction; returns the interactions inserted."""
        c = self.conn
        inserted = 0
        c.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                if "interaction" in item:
                    row = item["interaction"]
                    inserted += c.execute(_INSERT_INTERACTION, row).rowcount
                    c.executemany(
                        "INSERT OR IGNORE INTO tool_calls VALUES (?, ?, ?)", item["tool_calls"]
                    )
                    if row.get("context_hash"):
                        c.execute(_REASKED, row)
                for event in item.get("matched", []):
                    match = _MATCH_SOURCES[event["by"]]
                    c.execute(_MATCHED_OUTCOME.format(match=match), event)
                    if event.get("correction") is not None:
                        c.execute(_MATCHED_CORRECTION.format(match=match), event)
                c.executemany(_JUDGE_CALL, item.get("tool_results", []))
                c.executemany(_INSERT_OUTCOME, item.get("outcomes", []))
                c.executemany(_INSERT_CORRECTION, item.get("corrections", []))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return inserted

    def has_interaction(self, interaction_id: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM interactions WHERE id = ?", (interaction_id,))
        return row.fetchone() is not None


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
