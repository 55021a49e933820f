"""The shipped ChatML tool template renders conversations exactly, tools and results included."""

from __future__ import annotations

from gateway.prompts import templates
from gateway.prompts.rendering import PromptStyle

SOURCE = templates.template_source(templates.TOOLS_TEMPLATE)
TOOL = {
    "type": "function",
    "function": {
        "name": "read_file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    },
}


def test_plain_chat_gets_the_default_system_prompt() -> None:
    text = templates.render(SOURCE, [{"role": "user", "content": "Hi"}])
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_tools_go_into_the_system_turn_as_ollama_prints_them() -> None:
    """Go's json.Marshal: compact, struct field order, `<` `>` `&` escaped in strings."""
    described = {**TOOL, "function": {**TOOL["function"], "description": "Read <path> & more"}}
    text = templates.render(
        SOURCE,
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a < b?"}],
        [described],
    )
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert (
        '<tools>\n{"type":"function","function":{"name":"read_file","description":'
        '"Read \\u003cpath\\u003e \\u0026 more","parameters":{"type":"object","properties":'
        '{"path":{"type":"string"}}}}}\n</tools>'
    ) in text
    assert "<|im_start|>user\na < b?<|im_end|>" in text


def test_system_messages_join_and_same_role_neighbours_merge_as_in_ollama() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Here is a.py"},
        {"role": "user", "content": "Why does it fail?"},
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "Well?"},
    ]
    assert templates.render(SOURCE, messages) == (
        "<|im_start|>system\nBe brief.\n\nAnswer in English.<|im_end|>\n"
        "<|im_start|>user\nHere is a.py\n\nWhy does it fail?<|im_end|>\n"
        "<|im_start|>user\nWell?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_calls_and_results_render_as_the_model_is_asked_to_write_them() -> None:
    messages = [
        {"role": "user", "content": "Read a.py and b.py"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                },
                {
                    "id": "2",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": {"path": "b.py"}},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "1", "content": "A"},
        {"role": "tool", "tool_call_id": "2", "content": "B"},
    ]
    text = templates.render(SOURCE, messages, [TOOL], add_generation_prompt=False)
    assert text.endswith(
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "read_file", "arguments": {"path":"a.py"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "read_file", "arguments": {"path":"b.py"}}\n</tool_call>'
        "<|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nA\n</tool_response>\n"
        "<tool_response>\nB\n</tool_response><|im_end|>\n"
    )


def test_generation_markers_are_accepted_and_invisible() -> None:
    source = (
        "{% for m in messages %}{% generation %}[{{ m.content }}]{% endgeneration %}{% endfor %}"
    )
    assert templates.render(source, [{"role": "user", "content": "x"}]) == "[x]"


def test_own_templates_that_handle_tools_are_recognised() -> None:
    assert templates.template_handles_tools(SOURCE)
    smollm2_own = "{% for message in messages %}{{'<|im_start|>' + message['role'] }}{% endfor %}"
    assert not templates.template_handles_tools(smollm2_own)


def test_a_version_trained_with_an_earlier_copy_of_the_template_is_held_to_sorted_arguments() -> (
    None
):
    """Calls are trained in the order of the tool's schema since the template says so; a
    version whose GGUF carries an earlier copy wrote them sorted, and the call grammar keeps
    to what each version learnt."""
    earlier_copy = SOURCE.replace(templates.SCHEMA_ORDER_MARK, "")
    assert PromptStyle.for_model(earlier_copy).sorted_arguments
    assert PromptStyle.for_model(earlier_copy).template == SOURCE  # served with today's copy
    assert not PromptStyle.for_model(SOURCE).sorted_arguments
    smollm2_own = "{% for message in messages %}{{'<|im_start|>' + message['role'] }}{% endfor %}"
    assert not PromptStyle.for_model(smollm2_own).sorted_arguments  # never trained: the schema's
    assert not PromptStyle.for_model(None).sorted_arguments
