"""Schema-driven fuzzing of the HTTP API (schemathesis on the app's own OpenAPI): whatever a
client sends, the gateway answers it or rejects it, and never fails with a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import gateway

pytestmark = pytest.mark.slow


def test_no_request_makes_the_gateway_fail(tmp_path: Path) -> None:
    # A small context bounds every fuzzed generation to a few seconds.
    with gateway(tmp_path, "--n-ctx", "160") as server:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                server.url + "/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "20",
                "--request-timeout",
                "120",
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
