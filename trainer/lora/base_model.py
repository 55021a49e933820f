"""The base model training starts from: a Hugging Face folder, or the served GGUF itself.

transformers loads a GGUF by dequantizing it, but flags the result as quantized and refuses to
save it; we rebuild the model from its config and state dict and save a plain Hugging Face
folder once, under `<home>/bases/<sha256 of the GGUF>/` (loading the GGUF costs ~30 s, the
folder ~0.1 s). The tokenizer is saved with the chat template serving uses, so training
renders conversations exactly as the gateway does.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

from gateway.errors import BaseModelError
from gateway.prompts.rendering import PromptStyle
from gateway.store.hashes import file_sha256


def resolve(base: Path, home: Path) -> Path:
    """A Hugging Face folder for `base` (a folder is used as is; a GGUF is converted once)."""
    base = base.expanduser()
    if base.is_dir():
        if not (base / "config.json").exists():
            raise BaseModelError(f"{base} is not a Hugging Face model folder (no config.json)")
        return base
    if not base.exists():
        raise BaseModelError(f"base model not found: {base}")
    if base.suffix != ".gguf":
        raise BaseModelError(f"base must be a Hugging Face folder or a .gguf file, not {base}")
    target = home / "bases" / file_sha256(base)[:16]
    if (target / "config.json").exists():
        _drop_gguf_quantization(target / "config.json")
        return target
    print(f"converting {base.name} to a Hugging Face model (once, ~30 s) ...", file=sys.stderr)
    _convert_gguf(base, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise BaseModelError(
            f"transformers cannot load {gguf.name} ({exc}); give a Hugging Face folder as the "
            "base instead (--base DIR)"
        ) from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):  # else the saved folder loads as "quantized"
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    tokenizer.chat_template = serving_template(tokenizer.chat_template)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".base-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _drop_gguf_quantization(config_file: Path) -> None:
    """Folders converted by earlier versions kept transformers' GGUF `quantization_config`, which
    makes the folder load as a quantized model that refuses `save_pretrained`."""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("quantization_config", {}).get("quant_method") == "gguf":
        del config["quantization_config"]
        config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def serving_template(own_template: str | None) -> str:
    """The chat template the gateway serves this model with (the shipped tool-calling template
    for ChatML models whose own template ignores tools)."""
    return PromptStyle.for_model(own_template).template


def count_parameters(folder: Path) -> int:
    """Parameters of a Hugging Face folder, from its safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(path, framework="numpy") as fh:
            names = fh.keys()  # a file handle, not a dict
            total += sum(math.prod(fh.get_slice(name).get_shape()) for name in names)
    return total
