"""Training sees exactly what serving sends: the same template renders the same string (a
trained call with its arguments in the order the model is to write them), and loss falls only
on the assistant turns an example marks as targets."""

from __future__ import annotations

import json
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


EDIT = {"type": "function", "function": {"name": "edit", "parameters": {
    "type": "object", "required": ["file_path", "old_string", "new_string"],
    "properties": {"file_path": {"type": "string"}, "old_string": {"type": "string"},
                   "new_string": {"type": "string"}}}}}  # fmt: skip


def _edit_call(call_id: str, old: str, new: str) -> dict:
    arguments = {"file_path": "a.py", "new_string": new, "old_string": old}  # sorted, as stored
    return {"id": call_id, "type": "function",
            "function": {"name": "edit", "arguments": json.dumps(arguments)}}  # fmt: skip


def test_a_trained_call_has_its_arguments_in_the_schema_order_and_earlier_calls_as_served(
    tokenizer, served_style
) -> None:
    """A request names the old text before the new; a call trained in that order (the
    tool schema's, which the call grammar holds generation to) is copied more surely than
    sorted keys, which put the new text first. Earlier calls stay as Ollama prints them."""
    conversation = [
        {"role": "user", "content": "In a.py, replace `x` with `y`"},
        {"role": "assistant", "content": "", "tool_calls": [_edit_call("c1", "x", "y")]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "user", "content": "Now replace `y` with `z`"},
        {"role": "assistant", "content": "", "tool_calls": [_edit_call("c2", "y", "z")]},
    ]
    example = {"id": "x", "messages": conversation, "tools": [EDIT], "targets": [4]}
    encoded = encode(tokenizer, example)
    learned = tokenizer.decode([t for t in encoded.labels if t != IGNORE])
    assert '{"file_path":"a.py","old_string":"y","new_string":"z"}' in learned
    served = build_prompt(
        GenerationRequest(model="m", messages=conversation[:4], tools=[EDIT]), served_style
    )
    assert '{"file_path":"a.py","new_string":"y","old_string":"x"}' in served
    assert render(tokenizer, example).startswith(served)
