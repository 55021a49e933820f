"""The Continue CLI (`cn`, npm @continuedev/cli) runs headless against the gateway unchanged."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from gateway.serving.workloads import CONTINUE_TOOLS
from tests.support.cli import loragate
from tests.support.lora_server import lora_server
from tests.support.servers import REPO, Server, gateway
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

CONFIG = """\
name: loragate-test
version: 0.0.1
schema: v1
models:
  - name: loragate
    provider: openai
    model: continue
    apiBase: {url}/v1/
    apiKey: none
    roles: [chat]
    capabilities: [tool_use]
"""


def _cn() -> str:
    local = REPO / "node_modules" / ".bin" / "cn"
    found = shutil.which("cn") or (str(local) if local.exists() else None)
    assert found, "the Continue CLI is missing: run `make test` (it installs @continuedev/cli)"
    return found


def _tokens_in(server: Server) -> float:
    metrics = httpx.get(server.url + "/metrics").text
    pattern = r'loragate_tokens_total\{direction="in",version="[^"]+",workload="continue"\} (\S+)'
    match = re.search(pattern, metrics)
    return float(match.group(1)) if match else 0.0


def test_cn_headless_prompt_is_answered_through_the_gateway(
    embedded: Server, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(url=embedded.url))
    work = tmp_path / "work"
    work.mkdir()
    before = _tokens_in(embedded)
    result = subprocess.run(
        [_cn(), "-p", "What is 2+2?", "--config", str(config), "--auto"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    # cn sends its system prompt and 11 tool schemas: about 2,000 prompt tokens per request.
    assert _tokens_in(embedded) - before > 1500


def test_cn_set_up_by_continue_config_feeds_the_record(tmp_path: Path) -> None:
    """The config `loragate continue-config --write` makes (it finds the running gateway by
    the address it left in its home) is one `cn` runs with: its tool call is recorded and
    judged at once, and the tool's result judges it again. The model behind the gateway is an
    OpenAI-compatible stand-in that calls the first tool it is offered, then answers in words
    (SmolLM2-135M untrained answers cn's tasks in words)."""
    with (
        lora_server("smollm2") as upstream,
        gateway(
            tmp_path, "--backend", "openai", "--upstream", upstream.url, "--model", "smollm2"
        ) as served,
    ):
        assert served.home is not None
        config = tmp_path / ".continue" / "config.yaml"
        written = loragate(served.home, "continue-config", "--write", "--file", str(config))
        assert written.returncode == 0, written.stderr
        assert f"apiBase: {served.url}/v1/" in config.read_text()
        work = tmp_path / "work"
        work.mkdir()
        result = subprocess.run(
            [_cn(), "-p", "What is in this folder?", "--config", str(config), "--auto"],
            cwd=work, capture_output=True, text=True, timeout=300,
            env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "answered by smollm2" in result.stdout

        def judged_calls() -> list[tuple]:
            with sqlite3.connect(served.home / "store.db") as db:
                return db.execute(
                    "SELECT t.name, o.kind FROM interactions i JOIN tool_calls t "
                    "ON t.interaction_id = i.id JOIN outcomes o ON o.interaction_id = i.id "
                    "WHERE i.workload = 'continue'"
                ).fetchall()

        calls = wait_until(judged_calls, timeout=10, what="cn's tool call recorded and judged")
    assert {name for name, _ in calls} <= CONTINUE_TOOLS
    assert {kind for _, kind in calls} >= {"tool_call_valid", "tool_result"}
