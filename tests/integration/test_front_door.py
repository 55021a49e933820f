"""The gateway refuses web pages: a foreign `Host` (DNS rebinding) or a foreign `Origin` gets 403
on every route, in the route's error format, before anything runs; the loopback, local apps and
what the user allows are served, with CORS answers for allowed origins."""

from __future__ import annotations

from pathlib import Path

import httpx
import ollama
import openai
import pytest

from tests.support.servers import Server, gateway

REBOUND = "attacker.example:8420"
PAGE = "http://attacker.example"
ROUTES = [  # one of each family: OpenAI, Ollama, feedback, dev data, metrics, health
    ("POST", "/v1/chat/completions", {"model": "auto", "max_tokens": 1,
                                      "messages": [{"role": "user", "content": "hi"}]}),
    ("GET", "/v1/models", None),
    ("POST", "/api/chat", {"model": "auto", "stream": False,
                           "messages": [{"role": "user", "content": "hi"}]}),
    ("GET", "/api/tags", None),
    ("POST", "/v1/feedback", {"interaction_id": "ia_x", "accepted": False}),
    ("POST", "/devdata", {"name": "toolUsage", "data": {}}),
    ("GET", "/metrics", None),
    ("GET", "/healthz", None),
]  # fmt: skip


def call(
    server: Server, method: str, path: str, body: dict | None, **headers: str
) -> httpx.Response:
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=60)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[r[1] for r in ROUTES])
def test_a_rebound_host_is_refused_on_every_route(
    embedded: Server, method: str, path: str, body: dict | None
) -> None:
    refused = call(embedded, method, path, body, host=REBOUND)
    assert refused.status_code == 403
    expected = ("Host 'attacker.example:8420' is not this machine's loopback; a request meant "
                "for it sets LORAGATE_ALLOWED_HOSTS=attacker.example")  # fmt: skip
    if path.startswith("/api/"):
        assert refused.json() == {"error": expected}  # Ollama's shape
    else:
        assert refused.json()["error"] == {"message": expected, "type": "permission_error",
                                           "param": None, "code": "forbidden_host"}  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[r[1] for r in ROUTES])
def test_a_foreign_page_is_refused_on_every_route(
    embedded: Server, method: str, path: str, body: dict | None
) -> None:
    refused = call(embedded, method, path, body, origin=PAGE)
    assert refused.status_code == 403
    assert "Origin 'http://attacker.example' is not allowed" in refused.text
    assert "access-control-allow-origin" not in refused.headers


def test_the_loopback_by_any_name_and_local_pages_are_served(embedded: Server) -> None:
    port = embedded.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "app.localhost"):
        assert call(embedded, "GET", "/v1/models", None, host=host).status_code == 200, host
    for origin in (f"http://localhost:{port}", "http://127.0.0.1", "vscode-webview://abc123"):
        served = call(embedded, "GET", "/v1/models", None, origin=origin)
        assert served.status_code == 200, origin
        assert served.headers["access-control-allow-origin"] == origin
        assert "X-Loragate-Model-Version" in served.headers["access-control-expose-headers"]


def test_a_preflight_from_an_allowed_page_is_answered_and_a_foreign_one_refused(
    embedded: Server,
) -> None:
    ask = {"access-control-request-method": "POST",
           "access-control-request-headers": "authorization, content-type"}  # fmt: skip
    allowed = httpx.options(embedded.url + "/v1/chat/completions",
                            headers={"origin": "http://localhost:3000", **ask})  # fmt: skip
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"] == "authorization, content-type"
    foreign = httpx.options(embedded.url + "/v1/chat/completions", headers={"origin": PAGE, **ask})
    assert foreign.status_code == 403


def test_hosts_and_origins_the_user_allows_are_served(tmp_path: Path) -> None:
    env = {"LORAGATE_ALLOWED_HOSTS": "gateway.lan, *.internal",
           "LORAGATE_ORIGINS": "https://notebook.example"}  # fmt: skip
    with gateway(tmp_path, "--n-ctx", "512", env=env) as server:
        for host in ("gateway.lan:8420", "box.internal"):
            assert call(server, "GET", "/api/tags", None, host=host).status_code == 200
        assert call(server, "GET", "/api/tags", None, host="other.lan").status_code == 403
        page = call(server, "GET", "/v1/models", None, origin="https://notebook.example")
        assert page.headers["access-control-allow-origin"] == "https://notebook.example"
        assert call(server, "GET", "/v1/models", None, origin=PAGE).status_code == 403

        # the clients, told to send a foreign origin, get the refusal as their own error
        sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0,
                            default_headers={"Origin": PAGE})  # fmt: skip
        with pytest.raises(openai.PermissionDeniedError) as caught:
            sdk.models.list()
        assert caught.value.body["code"] == "forbidden_origin"
        with pytest.raises(ollama.ResponseError) as refused:
            ollama.Client(host=server.url, headers={"Origin": PAGE}).list()
        assert refused.value.status_code == 403 and "LORAGATE_ORIGINS" in refused.value.error
