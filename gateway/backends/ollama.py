"""An Ollama server through the official `ollama` client; its errors become ours here.

Ollama renders its own templates and parses its own tool calls, so requests go to it as
conversations (`chat`) or prompts (`generate`) and come back as events."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import httpx
import ollama

from gateway.backends.protocol import ModelInfo
from gateway.config import Settings
from gateway.errors import BadRequest, LoragateError, ModelNotFound, UpstreamError, UpstreamTimeout
from gateway.generation import Event, Finish, GenerationRequest, Message, TextDelta, ToolCallDelta
from gateway.prompts.toolcalls import new_call_id

DEFAULT_OLLAMA = "http://127.0.0.1:11434"


class OllamaBackend:
    def __init__(self, upstream: str, *, timeout: float) -> None:
        self.upstream = upstream.rstrip("/")
        self._client = ollama.AsyncClient(host=self.upstream, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> OllamaBackend:
        return cls(settings.upstream or DEFAULT_OLLAMA, timeout=settings.upstream_timeout)

    async def start(self) -> None:
        """Nothing to load: the upstream is asked for its models when the app starts."""

    async def close(self) -> None:
        await self._client._client.aclose()

    def queue_depth(self) -> int:
        return 0

    async def models(self) -> list[ModelInfo]:
        try:
            listing = await self._client.list()
        except Exception as exc:
            raise self._translate(exc) from exc
        return [_info(m) for m in listing.models]

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        try:
            if request.messages is not None:
                stream = await self._client.chat(**_chat_params(request))
            else:
                stream = await self._client.generate(**_generate_params(request))
            index = 0
            async for chunk in stream:
                for event in _events(chunk, index):
                    index += isinstance(event, ToolCallDelta) and event.id is not None
                    yield event
        except LoragateError:
            raise
        except Exception as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> LoragateError:
        where = f"upstream Ollama {self.upstream}"
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404:
                return ModelNotFound(f"{where}: {exc.error}", param="model")
            if 400 <= exc.status_code < 500:
                return BadRequest(f"{where} rejected the request: {exc.error}")
            return UpstreamError(f"{where} failed with HTTP {exc.status_code}: {exc.error}")
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeout(f"{where} timed out")
        if isinstance(exc, ConnectionError | httpx.TransportError):
            return UpstreamError(f"{where} is unreachable: {exc}")
        return UpstreamError(f"{where}: {type(exc).__name__}: {exc}")


def _info(model: Any) -> ModelInfo:
    details = model.details
    modified = model.modified_at.timestamp() if isinstance(model.modified_at, datetime) else 0.0
    return ModelInfo(
        name=(model.model or "").removesuffix(":latest"),
        size=model.size or 0,
        digest=model.digest or "",
        modified_at=modified,
        family=(details.family or "") if details else "",
        parameter_size=(details.parameter_size or "") if details else "",
        quantization_level=(details.quantization_level or "") if details else "",
    )


def _options(request: GenerationRequest) -> dict[str, Any]:
    options = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "seed": request.seed,
        "num_predict": request.max_tokens,
        "repeat_penalty": request.repeat_penalty,
        "stop": request.stop or None,
        "num_ctx": request.num_ctx,
    }
    return {k: v for k, v in options.items() if v is not None}


def _format(request: GenerationRequest) -> Any:
    if request.json_schema is not None:
        return request.json_schema
    return "json" if request.json_mode else None


def _chat_params(request: GenerationRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "messages": [_message(m) for m in request.messages or []],
        "tools": request.tools if request.tools_active else None,
        "format": _format(request),
        "options": _options(request),
        "stream": True,
    }


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message["role"], "content": message.get("content") or ""}
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "function": {
                    "name": c["function"]["name"],
                    "arguments": _arguments(c["function"]["arguments"]),
                }
            }
            for c in message["tool_calls"]
        ]
    if message["role"] == "tool" and message.get("name"):
        out["tool_name"] = message["name"]
    return out


def _arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _generate_params(request: GenerationRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "prompt": request.prompt or "",
        "suffix": request.suffix,
        "system": request.system,
        "raw": request.raw,
        "format": _format(request),
        "options": _options(request),
        "stream": True,
    }


def _events(chunk: Any, index: int) -> list[Event]:
    events: list[Event] = []
    message = getattr(chunk, "message", None)
    text = message.content if message is not None else getattr(chunk, "response", "")
    if text:
        events.append(TextDelta(text))
    for call in (message.tool_calls or []) if message is not None else []:
        arguments = json.dumps(dict(call.function.arguments or {}), ensure_ascii=False)
        events.append(ToolCallDelta(index=index, id=new_call_id(), name=call.function.name))
        events.append(ToolCallDelta(index=index, arguments=arguments))
        index += 1
    if chunk.done:
        has_calls = any(isinstance(e, ToolCallDelta) for e in events) or index > 0
        reason = (
            "tool_calls" if has_calls else ("length" if chunk.done_reason == "length" else "stop")
        )
        events.append(
            Finish(
                reason=reason,  # type: ignore[arg-type]
                prompt_tokens=chunk.prompt_eval_count or 0,
                completion_tokens=chunk.eval_count or 0,
                prompt_eval_seconds=(chunk.prompt_eval_duration or 0) / 1e9,
                eval_seconds=(chunk.eval_duration or 0) / 1e9,
            )
        )
    return events
