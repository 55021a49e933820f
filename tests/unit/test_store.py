"""The store's schema comes from numbered migrations, applied once each, in order, on SQLite
and on PostgreSQL alike."""

from __future__ import annotations

import pytest

from gateway.store import Store, StoreError, migrations
from tests.support.databases import Database


def test_migration_numbers_are_unique_and_consecutive() -> None:
    numbers = [number for number, _, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))


def test_all_migrations_apply_to_an_empty_database_once(db: Database) -> None:
    store = Store(db.target)
    assert store.migrate() == []  # a second run applies nothing
    applied = [r[0] for r in store.query("SELECT version FROM schema_migrations ORDER BY 1")]
    assert applied == [number for number, _, _ in migrations()]
    for table in ("interactions", "outcomes", "corrections", "tool_calls"):
        assert store.one(f"SELECT count(*) FROM {table}")[0] == 0
    if store.dialect == "sqlite":
        assert store.one("PRAGMA journal_mode")[0] == "wal"
    store.close()


def test_times_keep_sub_millisecond_precision(db: Database) -> None:
    store = Store(db.target)
    store.write(
        [{"interaction": {**_row("ia_1"), "created_at": 1_795_000_000.123456}, "tool_calls": []}]
    )
    assert store.one("SELECT created_at FROM interactions")[0] == 1_795_000_000.123456
    store.close()


def test_a_failed_write_leaves_nothing_half_written(db: Database) -> None:
    store = Store(db.target)
    good = {"interaction": _row("ia_1"), "tool_calls": []}
    bad = {"interaction": {**_row("ia_2"), "request": object()}, "tool_calls": []}
    with pytest.raises(StoreError):
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
        "redactions": 0, "context_hash": None, "kind": "served", "fallback_of": None,
    }  # fmt: skip
