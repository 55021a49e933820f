"""The store's schema comes from numbered migrations, applied once each, in order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.store import Store, migrations


def test_migration_numbers_are_unique_and_consecutive() -> None:
    numbers = [number for number, _, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))


def test_all_migrations_apply_to_an_empty_database_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    assert store.migrate() == []  # a second run applies nothing
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"interactions", "outcomes", "corrections", "tool_calls", "schema_migrations"} <= tables
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_a_failed_write_leaves_nothing_half_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    good = {"interaction": _row("ia_1"), "tool_calls": []}
    bad = {"interaction": {**_row("ia_2"), "request": object()}, "tool_calls": []}
    with pytest.raises(sqlite3.Error):
        store.write([good, bad])
    assert not store.has_interaction("ia_1")
    assert store.write([good]) == 1 and store.write([good]) == 0  # replays are idempotent
    store.close()


def _row(interaction_id: str) -> dict:
    return {
        "id": interaction_id, "created_at": 1.0, "api": "chat", "client": None,
        "workload": "chat", "model_requested": "auto", "version": "m@v0", "propensity": 1.0,
        "conversation_id": None, "request": "{}", "response_text": "hi", "tool_calls": None,
        "finish_reason": "stop", "status": "complete", "error": None, "prompt_tokens": 1,
        "completion_tokens": 1, "cached_tokens": 0, "latency_ms": 1.0, "ttft_ms": 1.0,
        "redactions": 0, "context_hash": None,
    }  # fmt: skip
