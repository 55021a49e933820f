"""Training sees exactly what serving sends: the same template renders the same string, and
loss falls only on the assistant turns an example marks as targets."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_cpp import Llama
from transformers import AutoTokenizer

from gateway.backends.embedded import default_model_path
from gateway.generation import GenerationRequest
from gateway.prompts.rendering import PromptStyle, build_prompt
from trainer.lora.encode import IGNORE, encode, render

READ = {
    "type": "function",
    "function": {
        "name": "read_file",
        "description": "Read a file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
}
CALL = {"id": "c1", "type": "function",
        "function": {"name": "read_file", "arguments": '{"path": "main.py"}'}}  # fmt: skip
CONVERSATION = [
    {"role": "system", "content": "You fix bugs."},
    {"role": "user", "content": "Why does main.py fail?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": "import sys\nsys.exit(2)"},
    {"role": "assistant", "content": "It exits with status 2 on purpose."},
]


@pytest.fixture(scope="module")
def tokenizer(smollm2_base: Path):
    return AutoTokenizer.from_pretrained(smollm2_base)


@pytest.fixture(scope="module")
def served_style() -> PromptStyle:
    """The prompt style the embedded engine derives from the GGUF it serves."""
    llm = Llama(str(default_model_path()), vocab_only=True, verbose=False)
    bos = llm._model.token_get_text(llm.token_bos())
    eos = llm._model.token_get_text(llm.token_eos())
    return PromptStyle.for_model(llm.metadata.get("tokenizer.chat_template"), bos, eos)


def test_the_training_text_is_what_the_gateway_sends(tokenizer, served_style) -> None:
    example = {"id": "x", "messages": CONVERSATION, "tools": [READ], "targets": [2, 4]}
    trained = render(tokenizer, example)
    for turn in (2, 4):  # the prompt the engine got before each assistant turn
        served = build_prompt(
            GenerationRequest(model="m", messages=CONVERSATION[:turn], tools=[READ]), served_style
        )
        assert trained.startswith(served)
    final = build_prompt(
        GenerationRequest(model="m", messages=CONVERSATION[:4], tools=[READ]), served_style
    )
    assert trained == final + "It exits with status 2 on purpose.<|im_end|>\n"


def test_loss_falls_only_on_target_turns(tokenizer) -> None:
    both = encode(tokenizer, {"id": "x", "messages": CONVERSATION, "tools": [READ],
                              "targets": [2, 4]})  # fmt: skip
    learned = tokenizer.decode([t for t in both.labels if t != IGNORE])
    assert learned == (
        '<tool_call>\n{"name": "read_file", "arguments": {"path":"main.py"}}\n</tool_call>'
        "<|im_end|>It exits with status 2 on purpose.<|im_end|>"
    )
    last = encode(tokenizer, {"id": "x", "messages": CONVERSATION, "tools": [READ],
                              "targets": [4]})  # fmt: skip
    learned = tokenizer.decode([t for t in last.labels if t != IGNORE])
    assert learned == "It exits with status 2 on purpose.<|im_end|>"
    assert len(last.input_ids) == len(both.input_ids)
