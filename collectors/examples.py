"""Examples a collector makes rather than records (a spec and the script that did it, a
question about a chunk of documentation and its answer): written as interactions through the
recorder's own `prepare`, so they are redacted like recorded work, and judged by the outcome
the collector gives them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from gateway.generation import Assembled, Finish, GenerationRequest
from gateway.recording.records import InteractionRecord, prepare
from gateway.store import Store
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


class MadeExamples:
    """Where a collector puts what it makes: every pair, kept or not, a line of its pairs file
    as it arrives (so Ctrl-C keeps what is done and a rerun skips it), the kept ones written to
    the store in batches; `flush` writes the rest."""

    BATCH = 50

    def __init__(self, store: Store, path: Path) -> None:
        self.store, self.path = store, path
        self.pending: list[Prepared] = []
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, line: dict[str, Any], kept: Prepared | None) -> None:
        with self.path.open("ab") as fh:
            fh.write(orjson.dumps(line) + b"\n")
        if kept is not None:
            self.pending.append(kept)
            if len(self.pending) >= self.BATCH:
                self.flush()

    def flush(self) -> None:
        if self.pending:
            self.store.write(self.pending)
            self.pending = []
