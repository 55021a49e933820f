"""Start real servers for tests on 127.0.0.1 at a free port, and stop them afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    home: Path | None = None  # a gateway's LORAGATE_HOME

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_ready(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s:\n{server.output()}")


@contextmanager
def running(
    argv: Sequence[str],
    *,
    port: int,
    log: Path,
    ready_path: str = "/healthz",
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Iterator[Server]:
    """Run `argv` (which must listen on `port`), wait for `ready_path`, stop it with SIGTERM."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=REPO
        )
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_ready(server, ready_path, timeout)
        yield server
    except BaseException:
        # a failing test shows what the server said (pytest prints captured stderr)
        tail = server.output().splitlines()[-80:]
        print(f"--- last lines of {log.name} ---", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_argv(home: Path, port: int, *args: str) -> list[str]:
    """The command line of `loragate serve` on `port` with its home in `home`."""
    return [
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--port",
        str(port),
        "--home",
        str(home),
        *args,
    ]


@contextmanager
def gateway(
    tmp: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[Server]:
    """`loragate serve` with its home in `tmp`, plus any extra CLI `args`."""
    port = port or free_port()
    argv = serve_argv(tmp / "home", port, *args)
    with running(argv, port=port, log=tmp / f"gateway-{port}.log", env=env) as server:
        server.home = tmp / "home"
        yield server


def served_by_in_a_row(
    served: Server,
    version: str,
    ask: Callable[[], tuple[str, str]],
    *,
    times: int = 5,
    timeout: float = 15,
) -> str:
    """Call `ask` (one request, returning (the version that answered, the answer)) until
    `version` answers `times` requests running; returns its last answer. A registry change
    reaches the gateway within a poll, and until it does a candidate still answers its share:
    one answer from the new version proves nothing."""
    deadline, in_a_row, answer = time.monotonic() + timeout, 0, ""
    while in_a_row < times:
        assert time.monotonic() < deadline, served.output()[-3000:]
        answered_by, answer = ask()
        in_a_row = in_a_row + 1 if answered_by == version else 0
    return answer
