"""Pure ASGI middleware (cheap on the hot path): API-key check and the two headers every
response carries."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.wire import INTERACTION_HEADER, VERSION_HEADER, send_error
from gateway.errors import Unauthorized

_INTERACTION = INTERACTION_HEADER.lower().encode()
_VERSION = VERSION_HEADER.lower().encode()
_OPEN_PATHS = ("/healthz",)


class LoragateHeaders:
    """Adds `X-Loragate-Interaction-Id` and `X-Loragate-Model-Version` where a route did not
    (errors, listings), and enforces the API key when one is configured."""

    def __init__(
        self, app: ASGIApp, *, default_version: Callable[[], str], api_key: str | None
    ) -> None:
        self.app = app
        self.default_version = default_version
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.api_key and scope["path"] not in _OPEN_PATHS and not self._authorized(scope):
            await self._unauthorized(scope, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if _INTERACTION not in names:
                    headers.append((_INTERACTION, b"ia_" + uuid.uuid4().hex.encode()))
                if _VERSION not in names:
                    headers.append((_VERSION, self.default_version().encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _authorized(self, scope: Scope) -> bool:
        assert self.api_key is not None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                token = value.decode("latin-1").removeprefix("Bearer ").strip()
                return hmac.compare_digest(token, self.api_key)
        return False

    async def _unauthorized(self, scope: Scope, send: Send) -> None:
        message = "missing or invalid API key: send 'Authorization: Bearer <LORAGATE_API_KEY>'"
        headers = ((_INTERACTION, b"ia_" + uuid.uuid4().hex.encode()),
                   (_VERSION, self.default_version().encode()))  # fmt: skip
        await send_error(scope, send, Unauthorized(message), headers)
