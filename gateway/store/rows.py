"""What `Store.write` takes: one prepared item per record, rows by table (`gateway.recording`
prepares them, the journal keeps them as JSON while the store is away)."""

from __future__ import annotations

from typing import Any, TypedDict


class OutcomeRow(TypedDict):
    interaction_id: str
    kind: str  # accepted, score, comment, tool_call_valid, schema_valid, ...
    value: float
    source: str
    detail: str
    created_at: float


class ToolResultRow(TypedDict):
    """A tool result sent back by the client, judging the call it answers."""

    call_id: str
    value: float
    created_at: float


class CorrectionRow(TypedDict):
    interaction_id: str
    source: str
    created_at: float
    content: str


class LineRow(TypedDict):
    """A line a collector read from a file (see migration 0007)."""

    id: str  # sha256 of the file's name and the line
    collector: str
    event: str | None
    status: str  # unmatched, ignored or corrupt when read; joined once it judged an answer
    created_at: float


class Prepared(TypedDict, total=False):
    interaction: dict[str, Any]  # the `interactions` row, by column
    tool_calls: list[list[str]]  # [call id, interaction id, tool name]
    outcomes: list[OutcomeRow]
    tool_results: list[ToolResultRow]
    corrections: list[CorrectionRow]
    matched: list[dict[str, Any]]  # dev-data events, matched to their interaction on write
    lines: list[LineRow]  # the collected line the item came from: taken once
    memory: list[dict[str, Any]]  # `agent_memory` rows (the LibCST agent's success memory)
    settled: list[dict[str, Any]]  # a Jac MTLLM value that corrects the answers re-asked for it
