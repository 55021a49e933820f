"""Upstreams for the proxy tests: an OpenAI-compatible server (llama-cpp-python's own
`llama_cpp.server`), an Ollama (a real one when OLLAMA_HOST is set, otherwise the gateway's
own Ollama API in front of llama.cpp), and a server that accepts connections but never answers."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.backends.embedded import default_model_path
from tests.support.servers import free_port, gateway, running

LLAMA_SERVER_ALIAS = "smollm2-upstream"


@contextmanager
def llama_cpp_server(tmp: Path) -> Iterator[str]:
    """`python -m llama_cpp.server` on the default model; yields its `/v1` base URL."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(default_model_path()),
        "--model_alias",
        LLAMA_SERVER_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--chat_format",
        "chatml",
    ]
    with running(argv, port=port, log=tmp / "llama-server.log", ready_path="/v1/models"):
        yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def ollama_upstream(tmp: Path) -> Iterator[tuple[str, str]]:
    """Yields (host URL, model name) of an Ollama API."""
    host = os.environ.get("OLLAMA_HOST")
    if host:
        url = host if host.startswith("http") else f"http://{host}"
        yield url, os.environ.get("OLLAMA_TEST_MODEL", "smollm2:135m")
        return
    with gateway(tmp, "--n-ctx", "2048") as standin:
        yield standin.url, "smollm2-135m-instruct"


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts TCP connections and never answers: a hung upstream."""
    with hung_upstream() as (url, _):
        yield url


@contextmanager
def hung_upstream() -> Iterator[tuple[str, Callable[[], int]]]:
    """A hung upstream, and a count of the connections its clients have closed since."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except OSError:
                continue
            conn.setblocking(False)
            held.append(conn)

    def closed() -> int:
        count = 0
        for conn in list(held):
            try:
                while data := conn.recv(65536):  # the request, read and ignored
                    del data
                count += 1  # b"": the other side closed it
            except BlockingIOError:
                pass
            except OSError:
                count += 1
        return count

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", closed
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
