"""What the dashboard reads from the store: interactions with their judgements, the review
queue, traffic by version over time, training and evaluation runs.

Every list is bounded (a page, a time window) and walks an index newest first, so a page costs
the same with 1,000 interactions or 1,000,000.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import BadRequest
from gateway.store import Store

PAGE = 50
SINCE = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}

# A verdict that the answer failed (a comment or a re-ask is not one); the review queue's
# partial index `outcomes_failing` has this predicate word for word.
_FAILING = "value < 0.5 AND kind NOT IN ('comment', 'reasked')"
_JUDGED = "EXISTS (SELECT 1 FROM outcomes o WHERE o.interaction_id = i.id{})"
_CORRECTED = "EXISTS (SELECT 1 FROM corrections c WHERE c.interaction_id = i.id)"
_FAILED = _JUDGED.format(f" AND {_FAILING}")  # unqualified: the names are the outcome's
_REASKED = _JUDGED.format(" AND o.kind = 'reasked'")
OUTCOME_FILTERS = {
    "judged": f"({_JUDGED.format('')} OR {_CORRECTED})",
    "unjudged": f"NOT {_JUDGED.format('')} AND NOT {_CORRECTED}",
    "failed": _FAILED,
    "passed": f"{_JUDGED.format(' AND o.value >= 0.5')} AND NOT {_FAILED}",
    "reasked": _REASKED,
    "corrected": _CORRECTED,
}
# An answer a person already judged here, or whose wanted answer is known, leaves the queue.
REVIEW_SOURCE = "review"
_REVIEWED = (
    f"{_CORRECTED} OR EXISTS (SELECT 1 FROM outcomes o WHERE o.interaction_id = i.id "
    f"AND o.source = '{REVIEW_SOURCE}')"
)
# The queue draws from recent history only, through indexes, so that the next item costs the
# same however much is stored or already reviewed: the newest `QUEUE_WINDOW` failing verdicts
# (partial index `outcomes_failing`), re-asks (`outcomes_reasked_by_time`), and one unjudged
# answer in 16 (by its random id) among the newest 16 x `QUEUE_WINDOW` answers.
QUEUE_WINDOW = 2_000
QUEUE_CAP = 100  # waiting answers counted up to this many ("100+")
_QUEUED = {
    "failed": f"SELECT interaction_id AS id FROM outcomes WHERE {_FAILING} "
    f"ORDER BY created_at DESC LIMIT {QUEUE_WINDOW}",
    "reasked": "SELECT interaction_id AS id FROM outcomes WHERE kind = 'reasked' "
    f"ORDER BY created_at DESC LIMIT {QUEUE_WINDOW}",
    "sampled": "SELECT id FROM (SELECT id FROM interactions ORDER BY created_at DESC "
    f"LIMIT {16 * QUEUE_WINDOW}) AS newest WHERE substr(id, 4, 1) = '0'",
}
_UNJUDGED = f"NOT {_JUDGED.format('')}"


@dataclass
class Filters:
    workload: str = ""
    version: str = ""
    outcome: str = ""
    client: str = ""
    since: str = ""
    before: str = ""  # the cursor of the next page: "<created_at>:<id>"

    def where(self, now: float) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("workload", "version", "client"):
            if value := getattr(self, column):
                clauses.append(f"i.{column} = ?")
                params.append(value)
        if self.outcome in OUTCOME_FILTERS:
            clauses.append(OUTCOME_FILTERS[self.outcome])
        if self.since in SINCE:
            clauses.append("i.created_at >= ?")
            params.append(now - SINCE[self.since])
        if self.before:
            clauses.append(_OLDER)
            params += position(self.before, "before")
        return clauses, params


_OLDER = "(i.created_at, i.id) < (?, ?)"


def cursor(created_at: float, iid: str) -> str:
    """Where a newest-first walk stopped: the next page, or the next item, is older."""
    return f"{created_at!r}:{iid}"


def position(text: str, param: str) -> list[Any]:
    """A `cursor` read back; a broken one is the request's error, naming `param`."""
    at, _, iid = text.partition(":")
    try:
        return [float(at), iid]
    except ValueError:
        raise BadRequest(f"not a cursor: {text!r}", param=param) from None


@dataclass
class Row:
    id: str
    created_at: float
    workload: str
    client: str | None
    version: str
    kind: str
    status: str
    latency_ms: float | None
    redactions: int
    asked: str
    answered: str
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    corrections: int = 0


_LIST_COLUMNS = (
    "i.id, i.created_at, i.workload, i.client, i.version, i.kind, i.status, i.latency_ms, "
    "i.redactions, i.request, i.response_text, i.tool_calls"
)


def interactions(store: Store, filters: Filters, now: float | None = None) -> list[Row]:
    """A page of interactions, newest first, with their outcomes and correction counts."""
    clauses, params = filters.where(time.time() if now is None else now)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    found = store.query(
        f"SELECT {_LIST_COLUMNS} FROM interactions i {where} "
        f"ORDER BY i.created_at DESC, i.id DESC LIMIT {PAGE}",
        params,
    )
    rows = [_row(r) for r in found]
    _attach_judgements(store, rows)
    return rows


def _row(r: Any) -> Row:
    calls = orjson.loads(r[11]) if r[11] else []
    answered = ", ".join(f"{c['name']}(…)" for c in calls) or r[10]
    return Row(id=r[0], created_at=r[1], workload=r[2], client=r[3], version=r[4], kind=r[5],
               status=r[6], latency_ms=r[7], redactions=r[8], asked=last_ask(orjson.loads(r[9])),
               answered=answered[:160])  # fmt: skip


def _attach_judgements(store: Store, rows: list[Row]) -> None:
    if not rows:
        return
    by_id = {row.id: row for row in rows}
    marks = ", ".join("?" for _ in rows)
    for iid, kind, value, source in store.query(
        f"SELECT interaction_id, kind, value, source FROM outcomes "
        f"WHERE interaction_id IN ({marks}) ORDER BY id",
        list(by_id),
    ):
        by_id[iid].outcomes.append({"kind": kind, "value": value, "source": source})
    for iid, n in store.query(
        f"SELECT interaction_id, count(*) FROM corrections WHERE interaction_id IN ({marks}) "
        "GROUP BY interaction_id",
        list(by_id),
    ):
        by_id[iid].corrections = int(n)


def last_ask(request: dict[str, Any]) -> str:
    """The last thing the client asked: its last user message, else the prompt."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user" and message.get("content"):
            return str(message["content"])[:160]
    return str(request.get("prompt") or "")[:160]


def choices(store: Store, column: str) -> list[str]:
    """The values a filter can take (workloads, versions, clients): read from an index."""
    assert column in ("workload", "version", "client")
    rows = store.query(
        f"SELECT DISTINCT {column} FROM interactions WHERE {column} IS NOT NULL ORDER BY {column}"
    )
    return [r[0] for r in rows]


def _records(store: Store, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    return [dict(zip(row.keys(), row, strict=True)) for row in store.query(sql, params)]


def interaction(store: Store, iid: str) -> dict[str, Any] | None:
    """One interaction whole: the request as sent, the answer, its outcomes and corrections."""
    found = _records(
        store,
        "SELECT id, created_at, api, client, workload, model_requested, version, kind, status, "
        "error, request, response_text, tool_calls, finish_reason, prompt_tokens, "
        "completion_tokens, latency_ms, ttft_ms, redactions, conversation_id "
        "FROM interactions WHERE id = ?",
        (iid,),
    )
    if not found:
        return None
    item = found[0]
    item["request"] = orjson.loads(item["request"])
    item["tool_calls"] = orjson.loads(item["tool_calls"]) if item["tool_calls"] else []
    item["outcomes"] = _records(
        store,
        "SELECT kind, value, source, detail, created_at FROM outcomes "
        "WHERE interaction_id = ? ORDER BY id",
        (iid,),
    )
    item["corrections"] = _records(
        store,
        "SELECT content, source, created_at FROM corrections WHERE interaction_id = ? ORDER BY id",
        (iid,),
    )
    return item


def _queued(reason: str, extra: str = "") -> str:
    """The answers queued for `reason`, newest first, driven by the (bounded) candidates."""
    unjudged = f" AND {_UNJUDGED}" if reason == "sampled" else ""
    return (
        f"SELECT DISTINCT i.id, i.created_at FROM ({_QUEUED[reason]}) AS q "
        "JOIN interactions i ON i.id = q.id WHERE i.kind = 'served' "
        f"AND i.status = 'complete'{unjudged} AND NOT ({_REVIEWED}){extra} "
        "ORDER BY i.created_at DESC, i.id DESC"
    )


def next_for_review(store: Store, after: str = "") -> tuple[str, str] | None:
    """The next answer to review and why it is queued: those that failed a check or were
    rejected, then the re-asked, then a sample of the unjudged; newest first within each.
    `after` is the `review_cursor` of the one skipped last: the walk goes on past it."""
    reasons = list(_QUEUED)
    start, params = 0, []
    if after:
        reason, _, rest = after.partition(":")
        if reason not in _QUEUED:
            raise BadRequest(f"not a review cursor: {after!r}", param="after")
        start, params = reasons.index(reason), position(rest, "after")
    for reason in reasons[start:]:
        extra = f" AND {_OLDER}" if params else ""
        found = store.one(_queued(reason, extra) + " LIMIT 1", params)
        if found is not None:
            return found[0], reason
        params = []  # the next kind starts from its newest
    return None


def review_cursor(reason: str, created_at: float, iid: str) -> str:
    return f"{reason}:{cursor(created_at, iid)}"


def queue_size(store: Store, since: float) -> dict[str, int]:
    """How many answers of the window wait for review, by reason, counted up to `QUEUE_CAP`
    (more is shown as "100+", and costs no more to count)."""
    return {
        reason: int(store.one(
            f"SELECT count(*) FROM ({_queued(reason, ' AND i.created_at >= ?')} "
            f"LIMIT {QUEUE_CAP}) AS waiting",
            (since,),
        )[0])
        for reason in _QUEUED
    }  # fmt: skip


def traffic(store: Store, since: float, bucket: float) -> dict[str, dict[str, dict[float, int]]]:
    """Served answers per workload, version and time bucket (its start, in seconds)."""
    out: dict[str, dict[str, dict[float, int]]] = defaultdict(lambda: defaultdict(dict))
    # CAST truncates in SQLite; PostgreSQL's rounds, and it has floor() everywhere
    bucket_of = (
        "floor(created_at / ?)"
        if store.dialect == "postgresql"
        else "CAST(created_at / ? AS INTEGER)"
    )
    for workload, version, slot, n in store.query(
        f"SELECT workload, version, {bucket_of} AS slot, count(*) "
        "FROM interactions WHERE created_at >= ? AND kind = 'served' "
        "GROUP BY workload, version, slot",
        (bucket, since),
    ):
        out[workload][version][slot * bucket] = int(n)
    return out


def training_runs(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    runs = _records(
        store,
        "SELECT id, created_at, finished_at, dataset_hash, base, engine, device, recipe, "
        "status, path, metrics FROM training_runs ORDER BY created_at DESC LIMIT ?",
        (limit,),
    )
    for run in runs:
        run["recipe"] = orjson.loads(run["recipe"] or "{}")
        run["metrics"] = orjson.loads(run["metrics"] or "{}")
    return runs


def eval_runs(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    """The newest run of each version on each suite."""
    rows = store.query(
        "SELECT version, suite, created_at, n, metrics, items_hash FROM eval_runs "
        "ORDER BY created_at DESC LIMIT ?",
        (limit,),
    )
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for version, suite, at, n, metrics, items_hash in rows:
        newest.setdefault((version, suite), {
            "version": version, "suite": suite, "created_at": at, "n": n,
            "metrics": orjson.loads(metrics), "items_hash": items_hash,
        })  # fmt: skip
    return list(newest.values())
