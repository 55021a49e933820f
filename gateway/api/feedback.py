"""`POST /v1/feedback`: a user's verdict on one interaction, and the answer they wanted."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway.api.wire import service_of
from gateway.errors import BadRequest, InteractionNotFound
from gateway.records import FeedbackRecord

router = APIRouter(prefix="/v1")


class Feedback(BaseModel):
    interaction_id: str = Field(description="From the X-Loragate-Interaction-Id header.")
    accepted: bool | None = Field(None, description="Did the answer do what was asked?")
    score: float | None = Field(None, ge=0, le=1, description="A grade between 0 and 1.")
    comment: str | None = None
    correction: str | None = Field(None, description="The answer that was wanted instead.")


@router.post("/feedback")
async def post_feedback(body: Feedback, request: Request) -> dict[str, str]:
    if body.accepted is None and body.score is None and not body.comment and not body.correction:
        raise BadRequest("feedback needs accepted, score, comment or correction")
    recorder = service_of(request).recorder
    if not await recorder.has_interaction(body.interaction_id):
        raise InteractionNotFound(
            f"no recorded interaction {body.interaction_id!r}", param="interaction_id"
        )
    recorder.submit(FeedbackRecord(created_at=time.time(), **body.model_dump()))
    return {"status": "recorded", "interaction_id": body.interaction_id}
