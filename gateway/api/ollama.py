"""Ollama routes: `/api/chat`, `/api/generate`, `/api/tags`, `/api/show`, `/api/version`,
`/api/ps`, streaming NDJSON the way Ollama does."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.api.ollama_types import ChatRequest, GenerateRequest, OllamaMessage, ShowRequest
from gateway.api.wire import exchange_headers, ndjson_error, service_of, while_connected
from gateway.backends.protocol import ModelInfo
from gateway.errors import BadRequest, LoragateError
from gateway.generation import Assembled, AssembledCall, Finish, GenerationRequest, TextDelta
from gateway.serving.catalog import published_name
from gateway.serving.service import Exchange

router = APIRouter(prefix="/api")

OLLAMA_VERSION = "0.12.6"  # the Ollama API level these routes follow
NDJSON = "application/x-ndjson"


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": OLLAMA_VERSION}


@router.get("/tags")
async def tags(request: Request) -> dict[str, Any]:
    infos = await service_of(request).catalog.models()
    return {"models": [_tag(info) for info in infos]}


@router.get("/ps")
async def ps(request: Request) -> dict[str, Any]:
    infos = await service_of(request).catalog.models()
    expires = datetime.fromtimestamp(time.time() + 365 * 86400, UTC).isoformat()
    return {
        "models": [
            {**_tag(i), "expires_at": expires, "size_vram": 0, "context_length": i.context_length}
            for i in infos
        ]
    }


@router.post("/show")
async def show(body: ShowRequest, request: Request) -> dict[str, Any]:
    name = body.model or body.name
    if not name:
        raise BadRequest("model is required", param="model")
    info = (await service_of(request).catalog.resolve(name)).info
    return {
        "license": info.metadata.get("general.license", ""),
        "modelfile": f'FROM {info.name}\nTEMPLATE """{info.template}"""\n',
        "parameters": "",
        "template": info.template,
        "details": _details(info),
        "model_info": {k: v for k, v in info.metadata.items() if isinstance(v, str | int | float)},
        "capabilities": ["completion", "tools"],
        "modified_at": _iso(info.modified_at),
    }


@router.post("/chat")
async def chat(body: ChatRequest, request: Request):
    if not body.messages:
        return await _load(request, body.model, {"message": {"role": "assistant", "content": ""}})
    generation = _chat_generation(body)
    return await _respond(request, generation, body.stream, api="ollama-chat", chat=True)


@router.post("/generate")
async def generate(body: GenerateRequest, request: Request):
    if not body.prompt and body.suffix is None:
        return await _load(request, body.model, {"response": ""})
    generation = _generate_generation(body)
    return await _respond(request, generation, body.stream, api="ollama-generate", chat=False)


async def _load(request: Request, model: str, empty: dict[str, Any]) -> dict[str, Any]:
    """Ollama's answer to a chat without messages or a generate without a prompt: the model
    is loaded (here: it is known and served), nothing is generated or recorded."""
    await service_of(request).catalog.resolve(model)
    return {"model": model, "created_at": _now(), **empty, "done": True, "done_reason": "load"}


# -- requests -------------------------------------------------------------------------------


def _common(body: ChatRequest | GenerateRequest) -> dict[str, Any]:
    o = body.options
    schema = body.format if isinstance(body.format, dict) else None
    num_predict = o.num_predict if o and o.num_predict and o.num_predict > 0 else None
    return {
        "model": body.model,
        "json_schema": schema,
        "json_mode": body.format == "json",
        "stop": (o.stop if o and o.stop else []),
        "max_tokens": num_predict,
        "temperature": o.temperature if o else None,
        "top_p": o.top_p if o else None,
        "top_k": o.top_k if o else None,
        "seed": o.seed if o else None,
        "repeat_penalty": o.repeat_penalty if o else None,
        "stream": body.stream,
    }


def _chat_generation(body: ChatRequest) -> GenerationRequest:
    for tool in body.tools or []:
        if not isinstance(tool.get("function", {}).get("name"), str):
            raise BadRequest("each tool needs function.name", param="tools")
    return GenerationRequest(
        messages=[_message(m, i) for i, m in enumerate(body.messages)],
        tools=body.tools or None,
        **_common(body),
    )


def _message(message: OllamaMessage, position: int) -> dict[str, Any]:
    if message.images:
        raise BadRequest(
            "images are not supported: this gateway serves text models",
            param=f"messages.{position}.images",
        )
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": f"call_{position}_{i}",
                "type": "function",
                "function": {
                    "name": c.function.name,
                    "arguments": json.dumps(c.function.arguments, ensure_ascii=False),
                },
            }
            for i, c in enumerate(message.tool_calls)
        ]
    if message.tool_name:
        out["name"] = message.tool_name
    return out


def _generate_generation(body: GenerateRequest) -> GenerationRequest:
    if body.images:
        raise BadRequest(
            "images are not supported: this gateway serves text models", param="images"
        )
    return GenerationRequest(
        prompt=body.prompt, suffix=body.suffix, system=body.system, raw=body.raw, **_common(body)
    )


# -- responses ------------------------------------------------------------------------------


async def _respond(
    request: Request, generation: GenerationRequest, stream: bool, *, api: str, chat: bool
):
    service = service_of(request)
    exchange = await while_connected(
        request, service.open(generation, api=api, headers=request.headers)
    )
    headers = exchange_headers(exchange)
    model = generation.model
    if stream:
        return StreamingResponse(_ndjson(exchange, model, chat), media_type=NDJSON, headers=headers)
    answer = await while_connected(request, exchange.collect())
    body = {
        **_piece(model, chat, answer.text, _ollama_calls(answer.calls)),
        **_final(answer.finish, exchange),
    }
    return JSONResponse(body, headers=headers)


async def _ndjson(exchange: Exchange, model: str, chat: bool) -> AsyncIterator[bytes]:
    calls = Assembled()
    try:
        async for event in exchange:
            if isinstance(event, TextDelta):
                yield _line(_piece(model, chat, event.text))
            elif isinstance(event, Finish):
                if calls.calls:
                    yield _line(_piece(model, chat, "", _ollama_calls(calls.calls)))
                yield _line({**_piece(model, chat, ""), **_final(event, exchange)})
            else:
                calls.add(event)
    except LoragateError as exc:
        yield ndjson_error(exc)


def _piece(model: str, chat: bool, text: str, tool_calls: list | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "created_at": _now()}
    if chat:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls:
            message["tool_calls"] = tool_calls
        out["message"] = message
    else:
        out["response"] = text
    out["done"] = False
    return out


def _final(finish: Finish | None, exchange: Exchange) -> dict[str, Any]:
    total = time.perf_counter() - exchange.started
    finish = finish or Finish("stop")
    reason = "stop" if finish.reason == "tool_calls" else finish.reason
    return {
        "done": True,
        "done_reason": reason,
        "total_duration": int(total * 1e9),
        "load_duration": 0,
        "prompt_eval_count": finish.prompt_tokens,
        "prompt_eval_duration": int(finish.prompt_eval_seconds * 1e9),
        "eval_count": finish.completion_tokens,
        "eval_duration": int(finish.eval_seconds * 1e9),
    }


def _ollama_calls(calls: list[AssembledCall]) -> list[dict[str, Any]] | None:
    out = []
    for index, call in enumerate(calls):
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            continue  # Ollama only reports calls whose arguments parse as an object
        out.append(
            {"id": call.id, "function": {"index": index, "name": call.name, "arguments": arguments}}
        )
    return out or None


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode() + b"\n"


def _tag(info: ModelInfo) -> dict[str, Any]:
    name = published_name(info.name) + ":latest"
    return {
        "name": name,
        "model": name,
        "modified_at": _iso(info.modified_at),
        "size": info.size,
        "digest": info.digest.removeprefix("sha256:"),
        "details": _details(info),
    }


def _details(info: ModelInfo) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": info.family,
        "families": [info.family] if info.family else None,
        "parameter_size": info.parameter_size,
        "quantization_level": info.quantization_level,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp or time.time(), UTC).isoformat().replace("+00:00", "Z")
