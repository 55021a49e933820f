"""Reading, correcting and pruning the record: what `loragate log {stats,tail,export,correct,
forget}` do."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.config import parse_duration
from gateway.errors import ConfigError, InteractionNotFound
from gateway.recording.corrections import Correction
from gateway.recording.journal import Journal
from gateway.recording.records import FeedbackRecord, prepare
from gateway.store import Store
from gateway.store.rows import Prepared

EXPORT_FORMATS = ("jsonl", "openai", "sharegpt")


def parse_since(text: str, now: float | None = None) -> float:
    """`7d`, `12h`, `30m` before now, or an ISO date/time; returns a Unix time."""
    now = time.time() if now is None else now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError as exc:
        raise ConfigError(f"--since {text!r}: use e.g. 7d, 12h, 30m or 2026-11-01") from exc


def open_store(target: Path | str) -> Store:
    """The store that was recorded to (`Settings.store_target`); a SQLite file must exist."""
    if isinstance(target, Path) and not target.exists():
        raise ConfigError(f"no store at {target}: nothing has been recorded yet")
    return Store(target)


def stats(store: Store) -> dict[str, Any]:
    out: dict[str, Any] = {
        "interactions": store.one("SELECT count(*) FROM interactions")[0],
        "outcomes": store.one("SELECT count(*) FROM outcomes")[0],
        "corrections": store.one("SELECT count(*) FROM corrections")[0],
        "redactions": int(store.one("SELECT coalesce(sum(redactions), 0) FROM interactions")[0]),
        "store_bytes": _size(store.path) if store.path else None,
        "workloads": {},
    }
    for row in store.query(
        "SELECT workload, count(*), count(*) FILTER (WHERE status = 'complete'), "
        "count(*) FILTER (WHERE status = 'aborted'), count(*) FILTER (WHERE status = 'error'), "
        "sum(prompt_tokens), sum(completion_tokens) "
        "FROM interactions GROUP BY workload ORDER BY workload"
    ):
        out["workloads"][row[0]] = {
            "interactions": row[1], "complete": row[2], "aborted": row[3], "error": row[4],
            "prompt_tokens": int(row[5]), "completion_tokens": int(row[6]), "outcomes": {},
            "corrections": 0,
        }  # fmt: skip
    for workload, kind, n, mean in store.query(
        "SELECT i.workload, o.kind, count(*), avg(o.value) FROM outcomes o "
        "JOIN interactions i ON i.id = o.interaction_id GROUP BY i.workload, o.kind"
    ):
        out["workloads"][workload]["outcomes"][kind] = {"n": n, "rate": round(mean, 4)}
    for workload, n in store.query(
        "SELECT i.workload, count(*) FROM corrections k JOIN interactions i "
        "ON i.id = k.interaction_id GROUP BY i.workload"
    ):
        out["workloads"][workload]["corrections"] = n
    out["collected"] = {}
    for collector, status, n in store.query(
        "SELECT collector, status, count(*) FROM collected_lines GROUP BY collector, status"
    ):
        out["collected"].setdefault(collector, {})[status] = n
    return out


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def format_stats(data: dict[str, Any]) -> str:
    lines = [
        f"{data['interactions']} interactions, {data['outcomes']} outcomes, "
        f"{data['corrections']} corrections, {data['redactions']} redactions"
        + (f", {data['store_bytes'] / 1e6:.1f} MB" if data["store_bytes"] is not None else "")
    ]
    for name, w in data["workloads"].items():
        rates = ", ".join(f"{k} {v['rate']:.0%} of {v['n']}" for k, v in w["outcomes"].items())
        lines.append(
            f"  {name}: {w['interactions']} ({w['aborted']} aborted, {w['error']} errors), "
            f"{w['corrections']} corrections{'; ' + rates if rates else ''}"
        )
    for collector, statuses in data.get("collected", {}).items():
        counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        lines.append(f"  lines collected from {collector}: {counts}")
    return "\n".join(lines)


def _where(workload: str | None, since: float | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[str | float] = []
    if workload:
        clauses.append("workload = ?")
        args.append(workload)
    if since is not None:
        clauses.append("created_at >= ?")
        args.append(since)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def export(store: Store, fmt: str, *, workload: str | None, since: float | None) -> Iterator[str]:
    """One JSON line per interaction, in the chosen format."""
    where, args = _where(workload, since)
    for row in store.query(f"SELECT * FROM interactions{where} ORDER BY created_at", args):
        record = dict(row)
        record["request"] = json.loads(record["request"])
        record["tool_calls"] = json.loads(record["tool_calls"]) if record["tool_calls"] else []
        record["outcomes"] = [dict(o) for o in store.query(
            "SELECT kind, value, source, detail FROM outcomes WHERE interaction_id = ?",
            (record["id"],))]  # fmt: skip
        record["corrections"] = [r[0] for r in store.query(
            "SELECT content FROM corrections WHERE interaction_id = ? ORDER BY id",
            (record["id"],))]  # fmt: skip
        if fmt == "jsonl":
            yield json.dumps(record, ensure_ascii=False)
        elif fmt == "openai":
            yield json.dumps(_openai_line(record), ensure_ascii=False)
        else:
            yield json.dumps(_sharegpt_line(record), ensure_ascii=False)


def _conversation(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's messages and the answer: the last correction if there is one."""
    request = record["request"]
    messages = list(request.get("messages") or [])
    if not messages:
        if request.get("system"):
            messages.append({"role": "system", "content": request["system"]})
        messages.append({"role": "user", "content": request.get("prompt", "")})
    answer: dict[str, Any] = {"role": "assistant", "content": record["response_text"]}
    if record["corrections"]:
        answer["content"] = record["corrections"][-1]
    elif record["tool_calls"]:
        answer["tool_calls"] = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in record["tool_calls"]
        ]  # fmt: skip
    return [*messages, answer]


def _openai_line(record: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"messages": _conversation(record)}
    if record["request"].get("tools"):
        line["tools"] = record["request"]["tools"]
    return line


_SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}


def _sharegpt_line(record: dict[str, Any]) -> dict[str, Any]:
    turns = []
    for message in _conversation(record):
        value = message.get("content") or ""
        if message.get("tool_calls"):
            value += "".join(
                "<tool_call>\n" + json.dumps({"name": c["function"]["name"],
                                              "arguments": c["function"]["arguments"]})
                + "\n</tool_call>"
                for c in message["tool_calls"]
            )  # fmt: skip
        turns.append(
            {"from": _SHAREGPT_ROLES.get(message["role"], message["role"]), "value": value}
        )
    return {"conversations": turns}


def tail_lines(store: Store, after: float, limit: int = 100) -> list[tuple[float, str]]:
    """Interactions recorded after `after`, as (time, one-line summary)."""
    rows = store.query(
        "SELECT id, created_at, workload, version, prompt_tokens, completion_tokens, status, "
        "latency_ms FROM interactions WHERE created_at > ? ORDER BY created_at LIMIT ?",
        (after, limit),
    )
    judged: dict[str, list[str]] = {}
    if rows:
        for iid, kind, value in store.query(
            "SELECT interaction_id, kind, value FROM outcomes WHERE interaction_id IN "
            f"({', '.join('?' * len(rows))}) ORDER BY id",
            [r["id"] for r in rows],
        ):
            judged.setdefault(iid, []).append(f"{kind}={value:g}")
    return [(r["created_at"], _tail_line(r, judged.get(r["id"], []))) for r in rows]


def latest_time(store: Store, skip: int) -> float | None:
    """When the (skip+1)-th most recent interaction was recorded."""
    row = store.one(
        "SELECT created_at FROM interactions ORDER BY created_at DESC LIMIT 1 OFFSET ?", (skip,)
    )
    return row[0] if row else None


def _tail_line(r: Sequence[Any], outcomes: list[str]) -> str:
    _, created_at, workload, version, prompt, completion, status, latency = r
    when = datetime.fromtimestamp(created_at).strftime("%H:%M:%S")
    return (f"{when}  {workload:<14} {version:<28} {prompt:>6}→{completion:<5} {status:<8} "
            f"{(latency or 0):7.0f} ms  {','.join(outcomes) or 'unjudged'}")  # fmt: skip


def forget(
    store: Store, journal: Journal, *, since: float | None, conversation: str | None
) -> tuple[int, int]:
    """Delete interactions (and their outcomes and corrections) for good, in the store and in
    the journal's not-yet-replayed files; returns how many from each."""
    if since is None and conversation is None:
        raise ConfigError("log forget needs --since or --conversation")
    clauses: list[str] = []
    args: list[str | float] = []
    if since is not None:
        clauses.append("created_at >= ?")
        args.append(since)
    if conversation is not None:
        clauses.append("conversation_id = ?")
        args.append(conversation)

    def chosen(item: Prepared) -> bool:
        row = item.get("interaction", {})
        return (since is None or row["created_at"] >= since) and (
            conversation is None or row.get("conversation_id") == conversation
        )

    return store.delete_interactions(" AND ".join(clauses), args), journal.forget(chosen)


def correct(store: Store, interaction_id: str, correction: Correction) -> None:
    """Record the answer an interaction should have given, checked against its request as
    `POST /v1/feedback` checks it."""
    asked = store.request_of(interaction_id)
    if asked is None:
        raise InteractionNotFound(f"no recorded interaction {interaction_id!r}")
    correction.check(asked.get("tools") or [], asked.get("json_schema"))
    record = FeedbackRecord(interaction_id, time.time(), correction=correction.text(), source="cli")
    store.write([prepare(record)])
