"""Pure ASGI middleware (cheap on the hot path): API-key check and the two headers every
response carries.

A browser cannot add an `Authorization` header to a page it opens, so the dashboard (`/ui`)
also takes the key as a cookie that `/ui/login` sets: HttpOnly, SameSite=Strict, for `/ui` only,
holding a digest of the key rather than the key itself."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.wire import INTERACTION_HEADER, VERSION_HEADER, send_error
from gateway.errors import Unauthorized

_INTERACTION = INTERACTION_HEADER.lower().encode()
_VERSION = VERSION_HEADER.lower().encode()
_OPEN_PATHS = ("/healthz", "/ui/login")
_OPEN_PREFIXES = ("/ui/static/",)
UI_COOKIE = "loragate_ui"


def ui_token(api_key: str) -> str:
    """What the dashboard's cookie holds for a key."""
    return hmac.new(api_key.encode(), b"loragate dashboard", hashlib.sha256).hexdigest()


def is_ui(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


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
        path = scope["path"]
        if self.api_key and not _open(path) and not self._authorized(scope):
            if is_ui(path) and scope["method"] == "GET":
                await _to_login(path, send)
            else:
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
        """The key as a bearer token, or (for the dashboard) the cookie `/ui/login` set."""
        assert self.api_key is not None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                token = value.decode("latin-1").removeprefix("Bearer ").strip()
                if hmac.compare_digest(token, self.api_key):
                    return True
            elif name == b"cookie" and is_ui(scope["path"]):
                cookie = _cookie(value.decode("latin-1"), UI_COOKIE)
                if cookie is not None and hmac.compare_digest(cookie, ui_token(self.api_key)):
                    return True
        return False

    async def _unauthorized(self, scope: Scope, send: Send) -> None:
        message = "missing or invalid API key: send 'Authorization: Bearer <LORAGATE_API_KEY>'"
        headers = ((_INTERACTION, b"ia_" + uuid.uuid4().hex.encode()),
                   (_VERSION, self.default_version().encode()))  # fmt: skip
        await send_error(scope, send, Unauthorized(message), headers)


def _open(path: str) -> bool:
    return path in _OPEN_PATHS or path.startswith(_OPEN_PREFIXES)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _to_login(path: str, send: Send) -> None:
    """A dashboard page asked for without the key: the login form, then back here."""
    location = "/ui/login?next=" + quote(path, safe="/")
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
