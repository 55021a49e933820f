"""The front door: requests from web pages are refused.

A page cannot send its own `Host` header, but it can rebind its domain to 127.0.0.1 (DNS
rebinding) and so become same-origin with the gateway: it could then send prompts, read the
answers, and post corrections that poison the next retrain. Ollama closed the same hole
(CVE-2024-28224) with the two checks made here, on every route:

- `Host` must name the loopback (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`, any port)
  or match `LORAGATE_ALLOWED_HOSTS`. Bound beyond the loopback the gateway requires an API key,
  which a page cannot know, and `Host` names the machine however clients reach it: it is not
  checked there.
- A request that carries an `Origin` (a browser's) must come from an allowed origin: the
  loopback's and local apps' (Ollama's defaults) or one matching `LORAGATE_ORIGINS`. Allowed
  origins get CORS answers, preflights included (Starlette's `CORSMiddleware`).

Patterns are shell globs (`*` alone allows any); both settings are comma-separated.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.wire import EXPOSED_HEADERS, send_error
from gateway.errors import Forbidden

_LOCAL_ORIGIN_HOSTS = ("localhost", "127.0.0.1", "[::1]", "0.0.0.0")
DEFAULT_ORIGINS = (
    *(f"{scheme}://{host}{port}" for host in _LOCAL_ORIGIN_HOSTS
      for scheme in ("http", "https") for port in ("", ":*")),
    "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*",
)  # fmt: skip


def patterns(setting: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in setting.split(",") if p.strip())


def hostname(host_header: str) -> str:
    """`example.com:8420` → `example.com`; `[::1]:8420` → `::1`."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(name: str) -> bool:
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _matches(value: str, allowed: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in allowed)


class FrontDoor:
    """Refuses a foreign `Host` or `Origin` with 403 (OpenAI or Ollama error body), then lets
    CORS answer for the allowed origins."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: str, origins: str, check_host: bool) -> None:
        self.hosts = patterns(allowed_hosts)
        self.origins = DEFAULT_ORIGINS + patterns(origins)
        self.check_host = check_host
        self._origin = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.origins))
        self.app = CORSMiddleware(
            app,
            allow_origin_regex=self._origin.pattern,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=list(EXPOSED_HEADERS),
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := self.refusal(scope)) is not None:
            await send_error(scope, send, refusal)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> Forbidden | None:
        headers = dict(scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        if self.check_host and host and not self._host_allowed(hostname(host)):
            return Forbidden(
                f"Host '{host}' is not this machine's loopback; a request meant for it sets "
                f"LORAGATE_ALLOWED_HOSTS={hostname(host)}",
                code="forbidden_host",
            )
        origin = headers.get(b"origin", b"").decode("latin-1").strip().lower()
        if origin and not self._origin.fullmatch(origin):
            return Forbidden(
                f"Origin '{origin}' is not allowed; a page meant to use this gateway is "
                f"allowed by LORAGATE_ORIGINS={origin}",
                code="forbidden_origin",
            )
        return None

    def _host_allowed(self, name: str) -> bool:
        return is_loopback(name) or _matches(name, self.hosts)
