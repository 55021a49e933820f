"""The Continue CLI (`cn`, npm @continuedev/cli) runs headless against the gateway unchanged."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.servers import REPO, Server

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
