"""Any OpenAI-compatible server (vLLM, LM Studio, llama-server, llama_cpp.server).

The wire format is OpenAI's, spoken over aiohttp rather than the `openai` SDK: in front of a
fast local server the SDK's request building and response models cost ~3 ms a request and
capped the proxy near 270 requests/s on 2 cores (httpx's pool alone managed ~200/s at 32
concurrent requests, aiohttp ~7,400/s). Upstream errors become ours at this boundary.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp

from gateway.backends.protocol import ModelInfo
from gateway.config import Settings
from gateway.errors import (
    BadRequest,
    ConfigError,
    LoragateError,
    ModelNotFound,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.generation import Event, Finish, GenerationRequest, TextDelta, ToolCallDelta

_JSON = {"content-type": "application/json"}


class OpenAICompatBackend:
    def __init__(self, upstream: str, *, api_key: str | None, timeout: float) -> None:
        self.upstream = upstream.rstrip("/")
        self._headers = {**_JSON, "authorization": f"Bearer {api_key}"} if api_key else _JSON
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatBackend:
        if not settings.upstream:
            raise ConfigError(
                "the openai backend needs --upstream URL (e.g. http://127.0.0.1:8000/v1)"
            )
        return cls(
            settings.upstream, api_key=settings.upstream_api_key, timeout=settings.upstream_timeout
        )

    async def start(self) -> None:
        """Nothing to load: the upstream is asked for its models when the app starts."""
        connector = aiohttp.TCPConnector(limit=512, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def queue_depth(self) -> int:
        return 0

    async def models(self) -> list[ModelInfo]:
        try:
            async with self._http().get(self.upstream + "/models", headers=self._headers) as reply:
                data = await self._json_or_raise(reply)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._translate(exc) from exc
        return [
            ModelInfo(name=m["id"], modified_at=float(m.get("created") or 0))
            for m in data.get("data", [])
        ]

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        legacy = request.messages is None and (request.raw or request.suffix is not None)
        path, params = (
            ("/completions", _completion_params(request))
            if legacy
            else ("/chat/completions", _chat_params(request))
        )
        try:
            async with self._http().post(
                self.upstream + path, data=json.dumps(params), headers=self._headers
            ) as reply:
                if not request.stream:
                    answer = await self._json_or_raise(reply)
                    for event in _whole_answer(answer):
                        yield event
                    return
                if reply.status >= 400:
                    await self._json_or_raise(reply)
                async for event in _stream_events(reply):
                    yield event
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._translate(exc) from exc

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        """A management call (e.g. vLLM's `/load_lora_adapter`): its status and body text."""
        try:
            async with self._http().post(
                self.upstream + path, data=json.dumps(body), headers=self._headers
            ) as reply:
                return reply.status, await reply.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._translate(exc) from exc

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise UpstreamError("the openai backend was not started")
        return self._session

    async def _json_or_raise(self, reply: aiohttp.ClientResponse) -> dict[str, Any]:
        text = await reply.text()
        try:
            data = json.loads(text) if text else {}
        except json.JSONDecodeError:
            data = {"error": text[:500]}
        if reply.status < 400:
            return data
        raise self._status_error(reply.status, _upstream_message(data, reply.reason or ""))

    def _status_error(self, status: int, message: str) -> LoragateError:
        where = f"upstream {self.upstream}"
        if status == 404:
            return ModelNotFound(f"{where}: {message}", param="model")
        if 400 <= status < 500:
            return BadRequest(f"{where} rejected the request: {message}")
        return UpstreamError(f"{where} failed with HTTP {status}: {message}")

    def _translate(self, exc: BaseException) -> LoragateError:
        where = f"upstream {self.upstream}"
        if isinstance(exc, asyncio.TimeoutError):
            return UpstreamTimeout(f"{where} timed out")
        if isinstance(exc, aiohttp.ClientConnectionError):
            return UpstreamError(f"{where} is unreachable: {exc}")
        return UpstreamError(f"{where}: {type(exc).__name__}: {exc}")


def _upstream_message(data: dict[str, Any], fallback: str) -> str:
    inner = data.get("error", data)
    if isinstance(inner, dict) and "message" in inner:
        return str(inner["message"])
    if isinstance(inner, str):
        return inner
    return fallback


def _sampling(request: GenerationRequest) -> dict[str, Any]:
    # A client that does not stream is served by a non-streaming upstream call: some servers
    # (llama_cpp.server) report usage only there.
    params: dict[str, Any] = {"model": request.model, "stream": request.stream}
    if request.stream:
        params["stream_options"] = {"include_usage": True}
    for key in ("temperature", "top_p", "seed", "max_tokens"):
        value = getattr(request, key)
        if value is not None:
            params[key] = value
    if request.stop:
        params["stop"] = request.stop
    return params


def _chat_params(request: GenerationRequest) -> dict[str, Any]:
    params = _sampling(request)
    messages = request.messages
    if messages is None:  # an Ollama /api/generate prompt, templated by the upstream
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages.append({"role": "user", "content": request.prompt or ""})
    params["messages"] = messages
    if request.tools:
        params["tools"] = request.tools
        choice = request.tool_choice
        params["tool_choice"] = (
            choice
            if choice in ("auto", "none", "required")
            else {"type": "function", "function": {"name": choice}}
        )
        params["parallel_tool_calls"] = request.parallel_tool_calls
    if request.json_schema is not None:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": request.json_schema, "strict": True},
        }
    elif request.json_mode:
        params["response_format"] = {"type": "json_object"}
    return params


def _completion_params(request: GenerationRequest) -> dict[str, Any]:
    params = _sampling(request)
    params["prompt"] = request.prompt or ""
    if request.suffix is not None:
        params["suffix"] = request.suffix
    return params


async def _sse_data(reply: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    async for raw in reply.content:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        data = json.loads(payload)
        if "error" in data:
            raise UpstreamError(f"upstream error mid-stream: {_upstream_message(data, '')}")
        yield data


async def _stream_events(reply: aiohttp.ClientResponse) -> AsyncGenerator[Event, None]:
    reason, usage = "stop", None
    async for chunk in _sse_data(reply):
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            for event in _choice_events(choice):
                yield event
            reason = choice.get("finish_reason") or reason
    yield _finish(reason, usage)


def _choice_events(choice: dict[str, Any]) -> list[Event]:
    if "text" in choice:  # legacy completions
        return [TextDelta(choice["text"])] if choice["text"] else []
    delta = choice.get("delta") or {}
    events: list[Event] = [TextDelta(delta["content"])] if delta.get("content") else []
    for call in delta.get("tool_calls") or []:
        fn = call.get("function") or {}
        events.append(
            ToolCallDelta(
                index=call.get("index", 0),
                id=call.get("id"),
                name=fn.get("name"),
                arguments=fn.get("arguments") or "",
            )
        )
    return events


def _whole_answer(answer: dict[str, Any]) -> list[Event]:
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message")
    text = message.get("content") if message else choice.get("text")
    events: list[Event] = [TextDelta(text)] if text else []
    for index, call in enumerate((message or {}).get("tool_calls") or []):
        fn = call.get("function") or {}
        events.append(ToolCallDelta(index=index, id=call.get("id") or "", name=fn.get("name")))
        events.append(ToolCallDelta(index=index, arguments=fn.get("arguments") or ""))
    events.append(_finish(choice.get("finish_reason") or "stop", answer.get("usage")))
    return events


def _finish(reason: str, usage: dict[str, Any] | None) -> Finish:
    if reason not in ("stop", "length", "tool_calls"):
        reason = "stop"
    usage = usage or {}
    return Finish(
        reason=reason,  # type: ignore[arg-type]
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
    )
