"""The one place where exceptions become HTTP error bodies (OpenAI's or Ollama's shape,
chosen by the path: `/api/...` is Ollama)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api.wire import error_body
from gateway.errors import BadRequest, LoragateError

log = logging.getLogger("loragate")


def _render(request: Request, exc: LoragateError) -> JSONResponse:
    return JSONResponse(error_body(request.url.path, exc), status_code=exc.status)


def validation_error(exc: RequestValidationError) -> BadRequest:
    """Name the first offending field the way OpenAI does."""
    errors = exc.errors()
    if not errors:
        return BadRequest("invalid request body")
    first: dict[str, Any] = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return BadRequest(f"request body is not valid JSON: {detail}".rstrip(": "))
    if first.get("type") == "missing":
        return BadRequest(f"Missing required parameter: '{field}'.", param=field)
    return BadRequest(f"Invalid value for '{field}': {first.get('msg')}.", param=field)


def install_error_handlers(app: FastAPI) -> None:
    async def on_loragate(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LoragateError)
        return _render(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _render(request, validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error = LoragateError(str(exc.detail))
        error.status = exc.status_code
        error.type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return _render(request, error)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return _render(request, LoragateError(f"internal error: {type(exc).__name__}: {exc}"))

    app.add_exception_handler(LoragateError, on_loragate)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
