"""Helpers every route module shares: the service, response headers, error bodies."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request
from starlette.types import Scope, Send

from gateway.errors import ClientDisconnected, LoragateError
from gateway.serving.service import Exchange, Service

INTERACTION_HEADER = "X-Loragate-Interaction-Id"
VERSION_HEADER = "X-Loragate-Model-Version"
EXPOSED_HEADERS = (INTERACTION_HEADER, VERSION_HEADER)  # readable by allowed browser pages


T = TypeVar("T")


async def while_connected(request: Request, work: Awaitable[T]) -> T:
    """`work`, cancelled if the client disconnects first: the engine stops at its next token or
    prefill chunk (an upstream request is closed), the exchange is recorded as `aborted`, and
    `ClientDisconnected` is raised. Starlette notices a dropped stream by itself, but not a
    client that leaves while a whole answer is generated or while the prompt is prefilled."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise ClientDisconnected("the client closed the connection; generation stopped")
    return task.result()


async def _disconnect(request: Request) -> None:
    """Returns when the client has gone (the body has been read: only `http.disconnect` is
    left to come)."""
    with contextlib.suppress(Exception):  # a receive that fails means the client is gone too
        while (await request.receive())["type"] != "http.disconnect":
            pass


def service_of(request: Request) -> Service:
    return request.app.state.service


def exchange_headers(exchange: Exchange) -> dict[str, str]:
    return {INTERACTION_HEADER: exchange.interaction_id, VERSION_HEADER: exchange.version}


def openai_error_body(exc: LoragateError) -> dict[str, Any]:
    return {
        "error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
    }


def ollama_error_body(exc: LoragateError) -> dict[str, Any]:
    return {"error": exc.message}


def sse_error(exc: LoragateError) -> bytes:
    """An error after streaming began: OpenAI sends it as one more `data:` event."""
    return b"data: " + json.dumps(openai_error_body(exc)).encode() + b"\n\n"


def ndjson_error(exc: LoragateError) -> bytes:
    return json.dumps(ollama_error_body(exc)).encode() + b"\n"


def error_body(path: str, exc: LoragateError) -> dict[str, Any]:
    """Ollama's shape under `/api/`, OpenAI's elsewhere."""
    return ollama_error_body(exc) if path.startswith("/api/") else openai_error_body(exc)


async def send_error(
    scope: Scope, send: Send, exc: LoragateError, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """The error as a whole response, from pure ASGI middleware (before any route runs)."""
    payload = json.dumps(error_body(scope["path"], exc)).encode()
    length = str(len(payload)).encode()
    await send({"type": "http.response.start", "status": exc.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", length), *headers]})  # fmt: skip
    await send({"type": "http.response.body", "body": payload})
