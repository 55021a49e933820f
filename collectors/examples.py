"""Examples a collector makes rather than records (a spec and the script that did it, a
question about a chunk of documentation and its answer): written as interactions through the
recorder's own `prepare`, so they are redacted like recorded work, and judged by the outcome
the collector gives them."""

from __future__ import annotations

from typing import Any

from gateway.generation import Assembled, Finish, GenerationRequest
from gateway.recording.records import InteractionRecord, prepare
from gateway.store.rows import OutcomeRow, Prepared


def made_example(
    iid: str, at: float, *, workload: str, client: str, version: str, kind: str,
    messages: list[dict[str, Any]], answer: str, outcome: OutcomeRow,
    conversation: str | None = None,
) -> Prepared:  # fmt: skip
    """An interaction of `workload` answering `messages` with `answer`, judged by `outcome`;
    `conversation` groups examples (a dataset holds a group out whole), else the messages'
    beginning does, as for recorded work."""
    record = InteractionRecord(
        id=iid, created_at=at, api="collector", workload=workload, model_requested=workload,
        version=version, request=GenerationRequest(model=workload, messages=messages),
        answer=Assembled(text=answer, finish=Finish("stop")), status="complete", client=client,
        kind=kind,
    )  # fmt: skip
    prepared = prepare(record)
    row = prepared["interaction"]
    row["context_hash"] = None  # made, not asked: never a question asked again
    if conversation is not None:
        row["conversation_id"] = conversation
    prepared["outcomes"] = [*prepared.get("outcomes", []), outcome]
    return prepared
