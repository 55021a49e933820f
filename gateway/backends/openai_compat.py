"""Any OpenAI-compatible server (vLLM, LM Studio, llama-server, llama_cpp.server) through the
official `openai` client; its errors become ours at this boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai

from gateway.backends.base import ModelInfo
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


class OpenAICompatBackend:
    def __init__(self, upstream: str, *, api_key: str | None, timeout: float) -> None:
        self.upstream = upstream.rstrip("/")
        self._client = openai.AsyncOpenAI(
            base_url=self.upstream, api_key=api_key or "none", timeout=timeout, max_retries=0
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatBackend:
        if not settings.upstream:
            raise ConfigError(
                "the openai backend needs --upstream URL (e.g. http://127.0.0.1:8000/v1)"
            )
        return cls(settings.upstream, api_key=None, timeout=settings.upstream_timeout)

    async def start(self) -> None:
        """Nothing to load: the upstream is asked for its models when the app starts."""

    async def close(self) -> None:
        await self._client.close()

    def queue_depth(self) -> int:
        return 0

    async def models(self) -> list[ModelInfo]:
        try:
            page = await self._client.models.list()
        except openai.OpenAIError as exc:
            raise self._translate(exc) from exc
        return [ModelInfo(name=m.id, modified_at=float(m.created or 0)) for m in page.data]

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Event]:
        try:
            legacy = request.messages is None and (request.raw or request.suffix is not None)
            if legacy:
                params = _completion_params(request)
                answer = await self._client.completions.create(**params)
                events = _completion_events(answer) if request.stream else _whole_text(answer)
            else:
                params = _chat_params(request)
                answer = await self._client.chat.completions.create(**params)
                events = _chat_events(answer) if request.stream else _whole_chat(answer)
            async for event in events:
                yield event
        except openai.OpenAIError as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: openai.OpenAIError) -> LoragateError:
        where = f"upstream {self.upstream}"
        if isinstance(exc, openai.APITimeoutError):
            return UpstreamTimeout(f"{where} timed out")
        if isinstance(exc, openai.APIConnectionError):
            return UpstreamError(f"{where} is unreachable: {exc.__cause__ or exc}")
        if isinstance(exc, openai.APIStatusError):
            message = _upstream_message(exc)
            if exc.status_code == 404:
                return ModelNotFound(f"{where}: {message}", param="model")
            if 400 <= exc.status_code < 500:
                return BadRequest(f"{where} rejected the request: {message}")
            return UpstreamError(f"{where} failed with HTTP {exc.status_code}: {message}")
        return UpstreamError(f"{where}: {exc}")


def _upstream_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return exc.message


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


async def _chat_events(stream: Any) -> AsyncIterator[Event]:
    reason, usage = "stop", None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                yield TextDelta(delta.content)
            for call in delta.tool_calls or []:
                fn = call.function
                yield ToolCallDelta(
                    index=call.index,
                    id=call.id,
                    name=fn.name if fn else None,
                    arguments=(fn.arguments or "") if fn else "",
                )
            reason = choice.finish_reason or reason
    yield _finish(reason, usage)


async def _completion_events(stream: Any) -> AsyncIterator[Event]:
    reason, usage = "stop", None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.text:
                yield TextDelta(choice.text)
            reason = choice.finish_reason or reason
    yield _finish(reason, usage)


async def _whole_chat(answer: Any) -> AsyncIterator[Event]:
    choice = answer.choices[0]
    if choice.message.content:
        yield TextDelta(choice.message.content)
    for index, call in enumerate(choice.message.tool_calls or []):
        yield ToolCallDelta(index=index, id=call.id, name=call.function.name)
        yield ToolCallDelta(index=index, arguments=call.function.arguments or "")
    yield _finish(choice.finish_reason or "stop", answer.usage)


async def _whole_text(answer: Any) -> AsyncIterator[Event]:
    choice = answer.choices[0]
    if choice.text:
        yield TextDelta(choice.text)
    yield _finish(choice.finish_reason or "stop", answer.usage)


def _finish(reason: str, usage: Any) -> Finish:
    if reason not in ("stop", "length", "tool_calls"):
        reason = "stop"
    return Finish(
        reason=reason,  # type: ignore[arg-type]
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
    )


__all__ = ["OpenAICompatBackend"]
