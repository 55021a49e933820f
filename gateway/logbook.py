"""Reading and pruning the record: what `loragate log {stats,tail,export,forget}` do."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.store import Store

EXPORT_FORMATS = ("jsonl", "openai", "sharegpt")
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """`7d`, `12h`, `30m` before now, or an ISO date/time; returns a Unix time."""
    now = time.time() if now is None else now
    match = _RELATIVE.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError as exc:
        raise ConfigError(f"--since {text!r}: use e.g. 7d, 12h, 30m or 2026-11-01") from exc


def open_store(home: Path) -> Store:
    path = home / "store.db"
    if not path.exists():
        raise ConfigError(f"no store at {path}: nothing has been recorded yet")
    return Store(path)


def stats(store: Store) -> dict[str, Any]:
    c = store.conn
    out: dict[str, Any] = {
        "interactions": c.execute("SELECT count(*) FROM interactions").fetchone()[0],
        "outcomes": c.execute("SELECT count(*) FROM outcomes").fetchone()[0],
        "corrections": c.execute("SELECT count(*) FROM corrections").fetchone()[0],
        "redactions": c.execute("SELECT coalesce(sum(redactions), 0) FROM interactions").fetchone()[
            0
        ],
        "store_bytes": _size(store.path),
        "workloads": {},
    }
    for row in c.execute(
        "SELECT workload, count(*), sum(status = 'complete'), sum(status = 'aborted'), "
        "sum(status = 'error'), sum(prompt_tokens), sum(completion_tokens) "
        "FROM interactions GROUP BY workload ORDER BY workload"
    ):
        out["workloads"][row[0]] = {
            "interactions": row[1], "complete": row[2], "aborted": row[3], "error": row[4],
            "prompt_tokens": row[5], "completion_tokens": row[6], "outcomes": {},
            "corrections": 0,
        }  # fmt: skip
    for workload, kind, n, mean in c.execute(
        "SELECT i.workload, o.kind, count(*), avg(o.value) FROM outcomes o "
        "JOIN interactions i ON i.id = o.interaction_id GROUP BY i.workload, o.kind"
    ):
        out["workloads"][workload]["outcomes"][kind] = {"n": n, "rate": round(mean, 4)}
    for workload, n in c.execute(
        "SELECT i.workload, count(*) FROM corrections k JOIN interactions i "
        "ON i.id = k.interaction_id GROUP BY i.workload"
    ):
        out["workloads"][workload]["corrections"] = n
    return out


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def format_stats(data: dict[str, Any]) -> str:
    lines = [
        f"{data['interactions']} interactions, {data['outcomes']} outcomes, "
        f"{data['corrections']} corrections, {data['redactions']} redactions, "
        f"{data['store_bytes'] / 1e6:.1f} MB"
    ]
    for name, w in data["workloads"].items():
        rates = ", ".join(f"{k} {v['rate']:.0%} of {v['n']}" for k, v in w["outcomes"].items())
        lines.append(
            f"  {name}: {w['interactions']} ({w['aborted']} aborted, {w['error']} errors), "
            f"{w['corrections']} corrections{'; ' + rates if rates else ''}"
        )
    return "\n".join(lines)


def _where(workload: str | None, since: float | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
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
    c = store.conn
    for row in c.execute(f"SELECT * FROM interactions{where} ORDER BY created_at", args):
        record = dict(row)
        record["request"] = json.loads(record["request"])
        record["tool_calls"] = json.loads(record["tool_calls"]) if record["tool_calls"] else []
        record["outcomes"] = [dict(o) for o in c.execute(
            "SELECT kind, value, source, detail FROM outcomes WHERE interaction_id = ?",
            (record["id"],))]  # fmt: skip
        record["corrections"] = [r[0] for r in c.execute(
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
    rows = store.conn.execute(
        "SELECT i.created_at, i.workload, i.version, i.prompt_tokens, i.completion_tokens, "
        "i.status, i.latency_ms, (SELECT group_concat(kind || '=' || value) FROM outcomes o "
        "WHERE o.interaction_id = i.id) FROM interactions i WHERE i.created_at > ? "
        "ORDER BY i.created_at LIMIT ?",
        (after, limit),
    ).fetchall()
    return [(r[0], _tail_line(r)) for r in rows]


def _tail_line(r: sqlite3.Row) -> str:
    when = datetime.fromtimestamp(r[0]).strftime("%H:%M:%S")
    outcome = r[7] or "unjudged"
    return (f"{when}  {r[1]:<14} {r[2]:<28} {r[3]:>6}→{r[4]:<5} {r[5]:<8} "
            f"{(r[6] or 0):7.0f} ms  {outcome}")  # fmt: skip


def forget(store: Store, *, since: float | None, conversation: str | None) -> int:
    """Delete interactions (and their outcomes and corrections) for good."""
    if since is None and conversation is None:
        raise ConfigError("log forget needs --since or --conversation")
    clauses, args = [], []
    if since is not None:
        clauses.append("created_at >= ?")
        args.append(since)
    if conversation is not None:
        clauses.append("conversation_id = ?")
        args.append(conversation)
    c = store.conn
    c.execute("PRAGMA secure_delete = ON")  # freed pages are zeroed, not left readable
    deleted = c.execute(f"DELETE FROM interactions WHERE {' AND '.join(clauses)}", args).rowcount
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return deleted
