"""A trained adapter → the GGUF files a llama.cpp engine serves, each checked before use.

    merged/            base + adapter merged (transient, fp32 safetensors)
    model-f16.gguf     llama.cpp's convert_hf_to_gguf.py (kept only when asked)
    model-<quant>.gguf quantized by llama_model_quantize: what is served (`quant_for`: Q8_0
                       under 1B parameters, Q4_K_M above)
    adapter.gguf       convert_lora_to_gguf.py --base: the bare LoRA (a few MB) for engines
                       that apply adapters at load (`Llama(lora_path=...)`)
    adapter/           the PEFT adapter, for runtime-LoRA servers (vLLM) and further training

Quantization types whose blocks are 256 wide (the K-quants) fall back per tensor where a row
is not a multiple of 256 (SmolLM2's 576-wide layers); llama.cpp does this itself and the file
type stays the one asked for.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config import QUANT_FILE_TYPES
from gateway.errors import ExportError
from gateway.prompts.rendering import PromptStyle
from trainer.export import converters
from trainer.progress import Say, Stage, to_stderr

PROBE_TEXT = (
    "def área(r: float) -> float:\n    return 3.14159 * r ** 2  # π r², 日本語 🙂\n"
    "<|im_start|>user\nHello,   world!\t\"quoted\" {'k': [1, 2]}<|im_end|>\n"
)
PROBE_MESSAGES: list[Any] = [
    {"role": "user", "content": "What is the capital of France? Answer briefly."}
]


@dataclass
class Artifacts:
    folder: Path
    gguf: Path
    adapter_gguf: Path
    peft: Path
    quant: str
    seconds: dict[str, float] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)


EIGHT_BITS_BELOW = 1_000_000_000  # parameters: below, 4-bit quantization costs measurably


def quant_for(parameters: int) -> str:
    """The served quantization when none is asked for. Under 1B parameters Q8_0: measured on
    SmolLM2-135M, one Jac adapter answered 43 of 52 held-out call sites with the declared type
    as Q4_K_M, 44 as Q5_K_M, 48 as Q8_0 and 47 as F16, at the same speed on 2 cores (Q8_0
    145 MB, Q4_K_M 105 MB). Above, the 4-bit file's halved size and memory matter more."""
    return "Q8_0" if parameters < EIGHT_BITS_BELOW else "Q4_K_M"


@dataclass(frozen=True)
class ExportOptions:
    """How a trained adapter is exported: `quant` is the served GGUF's quantization;
    `reference_gguf` (the served base) is what the tokenizer must agree with; `llama_cpp_dir`
    a llama.cpp checkout whose converters to use (else llama-cpp-python's source)."""

    quant: str
    reference_gguf: Path | None = None
    llama_cpp_dir: Path | None = None
    keep_f16: bool = False


def export(
    adapter: Path, base_dir: Path, out: Path, home: Path,
    options: ExportOptions, say: Say = to_stderr,
) -> Artifacts:  # fmt: skip
    """Merge, convert, quantize and check; the artifacts land in `out`."""
    quant = options.quant
    if quant not in QUANT_FILE_TYPES:
        choices = ", ".join(QUANT_FILE_TYPES)
        raise ExportError(f"unknown quantization {quant!r}; choose one of {choices}")
    scripts = converters.converter_dir(home, options.llama_cpp_dir)
    out.mkdir(parents=True, exist_ok=True)
    art = Artifacts(out, out / f"model-{quant}.gguf", out / "adapter.gguf", out / "adapter", quant)
    f16 = out / "model-f16.gguf"
    try:
        _convert(art, adapter, base_dir, scripts, f16, say)
    finally:
        if not options.keep_f16 and quant != "F16":
            f16.unlink(missing_ok=True)
    with _stage(art, "checks", say):
        art.checks.update(check(art.gguf, options.reference_gguf, lora=None))
        if options.reference_gguf is not None:
            adapter_check = check(options.reference_gguf, None, lora=art.adapter_gguf)
            art.checks["adapter"] = adapter_check["answer"]
    return art


def _convert(art: Artifacts, adapter: Path, base_dir: Path, scripts: Path, f16: Path,
             say: Say) -> None:  # fmt: skip
    """The merged model to an F16 GGUF and then `art.quant`; the bare adapter to a GGUF."""
    merged = art.folder / "merged"
    try:
        with _stage(art, "merge", say):
            merge(adapter, base_dir, merged)
            shutil.copytree(adapter, art.peft, dirs_exist_ok=True)
        with _stage(art, "convert", say):
            converters.run_script(scripts, "convert_hf_to_gguf.py",
                                  [str(merged), "--outfile", str(f16), "--outtype", "f16"],
                                  what="convert_hf_to_gguf")  # fmt: skip
    finally:
        shutil.rmtree(merged, ignore_errors=True)
    with _stage(art, "quantize", say):
        if art.quant == "F16":
            shutil.copyfile(f16, art.gguf)
        else:
            art.checks["fallback_tensors"] = quantize(f16, art.gguf, art.quant)
    with _stage(art, "convert adapter", say):
        converters.run_script(scripts, "convert_lora_to_gguf.py",
                              ["--base", str(base_dir), "--outfile", str(art.adapter_gguf),
                               "--outtype", "f16", str(adapter)],
                              what="convert_lora_to_gguf")  # fmt: skip


def _stage(art: Artifacts, name: str, say: Say) -> Stage:
    return Stage(name, art.seconds, say, label=f"export: {name}")


def merge(adapter: Path, base_dir: Path, target: Path) -> None:
    """The base with the adapter folded into its weights, saved as a Hugging Face folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(target)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    # the template trained with, not an older copy kept in a base converted by an earlier
    # loragate: serving reads from it how the version writes its calls
    tokenizer.chat_template = PromptStyle.for_model(tokenizer.chat_template).template
    tokenizer.save_pretrained(target)


def quantize(source: Path, target: Path, quant: str, threads: int | None = None) -> int:
    """Quantize `source` into `target`; returns how many tensors fell back to another type."""
    import llama_cpp
    from llama_cpp import _logger

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_FILE_TYPES[quant]
    params.nthread = threads or 0
    partial = target.with_suffix(".partial")
    log: list[str] = []
    level = _logger.logger.level
    _logger.set_verbose(True)  # every line, into `log`: the reason of a failure is among them
    try:
        with _captured_stderr(log):
            code = llama_cpp.llama_model_quantize(
                str(source).encode(), str(partial).encode(), params
            )
    finally:
        _logger.logger.setLevel(level)
    if code != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        last = next((line for line in reversed(log) if "failed" in line), (log or [""])[-1])
        last = last.rpartition("failed to quantize:")[2].strip()
        raise ExportError(f"llama.cpp could not quantize {source.name} to {quant}: {last}")
    partial.replace(target)
    return sum("falling back" in line for line in log)


@contextmanager
def _captured_stderr(lines: list[str]) -> Iterator[None]:
    """The lines C code writes to file descriptor 2 meanwhile go to `lines` instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            lines.extend(log.read().splitlines())


def check(gguf: Path, reference: Path | None, *, lora: Path | None) -> dict[str, Any]:
    """The file loads in llama.cpp, tokenizes the probe text exactly as `reference` does
    (and decodes it back), and answers the probe prompt with some text."""
    from llama_cpp import Llama

    try:
        llm = Llama(
            model_path=str(gguf),
            lora_path=str(lora) if lora else None,
            n_ctx=512,
            n_threads=1,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise ExportError(f"{(lora or gguf).name} does not load in llama.cpp: {exc}") from exc
    try:
        ids = llm.tokenize(PROBE_TEXT.encode(), add_bos=False, special=True)
        if reference is not None and lora is None:
            ref = Llama(model_path=str(reference), vocab_only=True, verbose=False)
            try:
                expected = ref.tokenize(PROBE_TEXT.encode(), add_bos=False, special=True)
            finally:
                ref.close()
            if ids != expected:
                raise ExportError(
                    f"{gguf.name} tokenizes the probe text differently from the base "
                    f"({len(ids)} vs {len(expected)} tokens); the export is not used"
                )
        if llm.detokenize(ids, special=True).decode("utf-8", "replace") != PROBE_TEXT:
            raise ExportError(f"{gguf.name} does not decode the probe text back to itself")
        # not streamed: one response (llama-cpp-python types it as either)
        reply: Any = llm.create_chat_completion(PROBE_MESSAGES, max_tokens=24, temperature=0.0)
        answer = reply["choices"][0]["message"].get("content") or ""
        if not answer.strip():
            raise ExportError(f"{(lora or gguf).name} answered the probe prompt with nothing")
        return {"loads": True, "tokenizer_round_trip": True, "answer": answer.strip()}
    finally:
        llm.close()
