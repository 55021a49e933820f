"""The real Jac MTLLM client for tests and benchmarks: `jac` from jaclang 0.7.18 with mtllm 0.3.2,
in its own venv (`.venv-jac` in the repository, made once from `jac-requirements.txt`; jaclang
vendors an old typing_extensions that the gateway's pydantic cannot live with)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-jac"
REQUIREMENTS = Path(__file__).with_name("jac-requirements.txt")


def jac_cli() -> Path:
    """The `jac` executable, after making its venv if it is missing or out of date."""
    jac, stamp = VENV / "bin" / "jac", VENV / ".installed"
    wanted = REQUIREMENTS.read_text()
    if jac.exists() and stamp.exists() and stamp.read_text() == wanted:
        return jac
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "--no-deps", "-r",
                    str(REQUIREMENTS)], check=True)  # fmt: skip
    stamp.write_text(wanted)
    return jac


def jac_run(program: Path, base_url: str, model: str, *, timeout: float = 600,
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`jac run PROGRAM` with MTLLM's OpenAI client pointed at `base_url` (`JAC_MODEL` names the
    model the fixture programs ask for)."""
    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "unused",
           "JAC_MODEL": model}  # fmt: skip
    return subprocess.run([str(jac_cli()), "run", program.name], cwd=program.parent, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
