"""OpenAI routes: `/v1/chat/completions`, `/v1/completions`, `/v1/models`."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gateway.api.openai_types import ChatCompletionRequest, ChatMessage, CompletionRequest
from gateway.api.wire import exchange_headers, service_of, sse_error, while_connected
from gateway.errors import BadRequest, LoragateError
from gateway.generation import Assembled, Finish, GenerationRequest, TextDelta, ToolCallDelta
from gateway.serving.service import Exchange

router = APIRouter(prefix="/v1")


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    catalog = service_of(request).catalog
    await catalog.models()
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "loragate"}
        for name in catalog.all_names()
    ]
    return {"object": "list", "data": data}


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    return await _respond(request, body, chat_to_generation(body), CHAT)


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request) -> Response:
    return await _respond(request, body, completion_to_generation(body), COMPLETION)


async def _respond(
    request: Request,
    body: ChatCompletionRequest | CompletionRequest,
    generation: GenerationRequest,
    shape: _Shape,
) -> Response:
    service = service_of(request)
    exchange = await while_connected(
        request, service.open(generation, api=shape.api, headers=request.headers)
    )
    headers = exchange_headers(exchange)
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = _sse_stream(exchange, body.model, shape, include_usage=usage)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
    answer = await while_connected(request, exchange.collect())
    return JSONResponse(_body(exchange, body.model, shape, answer), headers=headers)


# -- requests -------------------------------------------------------------------------------


def _reject_unsupported(body: ChatCompletionRequest | CompletionRequest) -> None:
    if body.logprobs:
        raise BadRequest("logprobs are not supported by this gateway", param="logprobs")


def chat_to_generation(body: ChatCompletionRequest) -> GenerationRequest:
    _reject_unsupported(body)
    tool_choice: str = "auto"
    if isinstance(body.tool_choice, str):
        tool_choice = body.tool_choice
    elif body.tool_choice is not None:
        tool_choice = body.tool_choice.function.name
    if tool_choice != "none" and tool_choice != "auto" and not body.tools:
        raise BadRequest("tool_choice is set but no tools were given", param="tool_choice")
    schema, json_mode = _response_format(body)
    return GenerationRequest(
        model=body.model,
        messages=[_message(m) for m in body.messages],
        tools=[t.model_dump(exclude_none=True) for t in body.tools] if body.tools else None,
        tool_choice=tool_choice,
        parallel_tool_calls=body.parallel_tool_calls is not False,
        json_schema=schema,
        json_mode=json_mode,
        stop=body.stop_list(),
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stream=body.stream,
    )


def _response_format(body: ChatCompletionRequest) -> tuple[dict | None, bool]:
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None, False
    if fmt.type == "json_object":
        return None, True
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise BadRequest(
            "response_format json_schema needs json_schema.schema", param="response_format"
        )
    return fmt.json_schema.schema_, False


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "role": "system" if message.role == "developer" else message.role,
        "content": _text(message),
    }
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.function.name, "arguments": c.function.arguments},
            }
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    return out


def _text(message: ChatMessage) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    parts = []
    for part in message.content:
        if part.type != "text":
            raise BadRequest(
                f"content part of type {part.type!r} is not supported: this gateway serves "
                "text models",
                param="messages",
            )
        parts.append(part.text or "")
    return "".join(parts)


def completion_to_generation(body: CompletionRequest) -> GenerationRequest:
    _reject_unsupported(body)
    if isinstance(body.prompt, list):
        if len(body.prompt) != 1:
            raise BadRequest("only one prompt per request is supported", param="prompt")
        prompt = body.prompt[0]
    else:
        prompt = body.prompt
    if body.echo:
        raise BadRequest("echo is not supported", param="echo")
    return GenerationRequest(
        model=body.model,
        prompt=prompt,
        suffix=body.suffix,
        raw=True,
        stop=body.stop_list(),
        max_tokens=body.max_tokens or 16,  # OpenAI's default for legacy completions
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stream=body.stream,
    )


# -- responses ------------------------------------------------------------------------------


def _usage(finish: Finish | None) -> dict[str, Any]:
    prompt = finish.prompt_tokens if finish else 0
    completion = finish.completion_tokens if finish else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": finish.cached_tokens if finish else 0},
    }


@dataclass(frozen=True)
class _Shape:
    """What differs between chat and legacy completions on the wire: names, and the fields a
    choice carries for the whole answer, for each event, and at the start and end of a stream."""

    api: str
    id_prefix: str
    object: str
    chunk_object: str
    whole: Callable[[Assembled], dict[str, Any]]
    piece: Callable[[TextDelta | ToolCallDelta], dict[str, Any] | None]
    opening: dict[str, Any] | None
    ending: dict[str, Any]


def _chat_message(answer: Assembled) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text if answer.text or not answer.calls else None,
        "refusal": None,
    }
    if answer.calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.calls
        ]
    return {"message": message}


def _chat_piece(event: TextDelta | ToolCallDelta) -> dict[str, Any]:
    if isinstance(event, TextDelta):
        return {"delta": {"content": event.text}}
    return {"delta": {"tool_calls": [_tool_delta(event)]}}


def _tool_delta(event: ToolCallDelta) -> dict[str, Any]:
    if event.id is not None:
        return {
            "index": event.index,
            "id": event.id,
            "type": "function",
            "function": {"name": event.name, "arguments": event.arguments},
        }
    return {"index": event.index, "function": {"arguments": event.arguments}}


CHAT = _Shape(
    api="chat",
    id_prefix="chatcmpl-",
    object="chat.completion",
    chunk_object="chat.completion.chunk",
    whole=_chat_message,
    piece=_chat_piece,
    opening={"delta": {"role": "assistant", "content": ""}},
    ending={"delta": {}},
)
COMPLETION = _Shape(
    api="completions",
    id_prefix="cmpl-",
    object="text_completion",
    chunk_object="text_completion",
    whole=lambda answer: {"text": answer.text},
    piece=lambda event: {"text": event.text} if isinstance(event, TextDelta) else None,
    opening=None,
    ending={"text": ""},
)


def _envelope(exchange: Exchange, model: str, obj: str, prefix: str) -> dict[str, Any]:
    return {
        "id": prefix + exchange.interaction_id,
        "object": obj,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": exchange.version,
    }


def _choice(fields: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, **fields, "logprobs": None, "finish_reason": finish}


def _body(exchange: Exchange, model: str, shape: _Shape, answer: Assembled) -> dict[str, Any]:
    finish = answer.finish.reason if answer.finish else "stop"
    return {
        **_envelope(exchange, model, shape.object, shape.id_prefix),
        "choices": [_choice(shape.whole(answer), finish)],
        "usage": _usage(answer.finish),
    }


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


async def _sse_stream(
    exchange: Exchange, model: str, shape: _Shape, *, include_usage: bool
) -> AsyncIterator[bytes]:
    base = _envelope(exchange, model, shape.chunk_object, shape.id_prefix)
    extra = {"usage": None} if include_usage else {}

    def chunk(fields: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**base, "choices": [_choice(fields, finish)], **extra})

    try:
        if shape.opening is not None:
            yield chunk(shape.opening)
        async for event in exchange:
            if isinstance(event, Finish):
                yield chunk(shape.ending, event.reason)
            elif (fields := shape.piece(event)) is not None:
                yield chunk(fields)
        if include_usage:
            yield _sse({**base, "choices": [], "usage": _usage(exchange.finish)})
    except LoragateError as exc:
        yield sse_error(exc)
    yield b"data: [DONE]\n\n"
