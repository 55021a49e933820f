"""What users say about answers: `POST /v1/feedback` (a verdict on one interaction and the
answer they wanted) and `POST /devdata` (Continue's dev-data HTTP destination)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway.api.wire import service_of
from gateway.errors import BadRequest, InteractionNotFound
from gateway.recording.corrections import correction_of
from gateway.recording.recorder import Recorder
from gateway.recording.records import DEVDATA_EVENTS, DevDataRecord, FeedbackRecord

router = APIRouter()


class CorrectionFunction(BaseModel):
    name: str
    arguments: str | dict[str, Any] = Field(default_factory=dict)


class CorrectionCall(BaseModel):
    id: str | None = None
    type: str | None = None
    function: CorrectionFunction


class CorrectionMessage(BaseModel):
    """An assistant message in OpenAI or Ollama shape."""

    role: str = "assistant"
    content: str | None = None
    tool_calls: list[CorrectionCall] = Field(default_factory=list)


class Feedback(BaseModel):
    interaction_id: str = Field(description="From the X-Loragate-Interaction-Id header.")
    accepted: bool | None = Field(None, description="Did the answer do what was asked?")
    score: float | None = Field(None, ge=0, le=1, description="A grade between 0 and 1.")
    comment: str | None = None
    correction: str | CorrectionMessage | None = Field(
        None,
        description="The answer that was wanted instead: text, or an assistant message whose "
        "tool_calls name the call that should have been made (arguments as a JSON string, as "
        "OpenAI sends them, or an object, as Ollama does).",
    )


@router.post("/v1/feedback")
async def post_feedback(body: Feedback, request: Request) -> dict[str, str]:
    await record_feedback(service_of(request).recorder, body)
    return {"status": "recorded", "interaction_id": body.interaction_id}


async def record_feedback(recorder: Recorder, body: Feedback, source: str = "feedback") -> None:
    """Check feedback against the interaction it names (a correction must fit the tools and
    response schema the client offered) and record it; `source` says who gave it."""
    if body.accepted is None and body.score is None and not body.comment and not body.correction:
        raise BadRequest("feedback needs accepted, score, comment or correction")
    asked = await recorder.request_of(body.interaction_id)
    if asked is None:
        raise InteractionNotFound(
            f"no recorded interaction {body.interaction_id!r}", param="interaction_id"
        )
    fields = body.model_dump(exclude={"correction"})
    if body.correction is not None:
        given = body.correction
        correction = correction_of(given if isinstance(given, str) else given.model_dump())
        correction.check(asked.get("tools") or [], asked.get("json_schema"))
        fields["correction"] = correction.text()
    recorder.submit(FeedbackRecord(created_at=time.time(), source=source, **fields))


class DevDataEvent(BaseModel):
    """The body Continue posts to a `data:` destination of type HTTP."""

    name: str = Field(examples=["toolUsage"])
    data: dict[str, Any]
    schema_: str | None = Field(None, alias="schema")
    level: str | None = None
    profileId: str | None = None


@router.post("/devdata")
async def post_devdata(body: DevDataEvent, request: Request) -> dict[str, str]:
    """Events that judge answers are recorded; Continue's other events are acknowledged."""
    if body.name not in DEVDATA_EVENTS:
        return {"status": "ignored", "name": body.name}
    service_of(request).recorder.submit(DevDataRecord(body.name, body.data, time.time()))
    return {"status": "recorded", "name": body.name}
