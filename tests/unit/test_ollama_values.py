"""The conversation as Ollama hands it to a Modelfile TEMPLATE: Go's JSON, Ollama's tool
structs, system messages joined and same-role turns merged. The byte-for-byte check against
Go itself is tests/integration/test_ollama_template.py."""

from __future__ import annotations

import pytest

from gateway.prompts.ollama_values import arguments_json, collate, go_json, template_tool


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ({"b": 1, "a": [True, None, "x"]}, '{"a":[true,null,"x"],"b":1}'),
        ("<a & b>", '"\\u003ca \\u0026 b\\u003e"'),
        ("é\u2028\n\x01", '"é\\u2028\\n\\u0001"'),
        (3.0, "3"),
        (0.1, "0.1"),
        (1.5e-05, "0.000015"),
        (1e-07, "1e-7"),
        (1e21, "1e+21"),
        (1e16, "10000000000000000"),
        (-2.5e-09, "-2.5e-9"),
    ],
)
def test_values_print_as_go_json_marshal_prints_them(value: object, printed: str) -> None:
    assert go_json(value) == printed


def test_a_tool_keeps_ollama_field_order_and_drops_keywords_ollama_does_not_know() -> None:
    tool = {
        "type": "function",
        "function": {
            "parameters": {
                "properties": {
                    "z": {"type": ["string"], "default": "x", "minLength": 1},
                    "a": {"description": "", "type": "object",
                          "properties": {"y": {"type": "integer"}, "b": {"type": "string"}}},
                },
                "required": ["z"],
                "type": "object",
                "additionalProperties": False,
            },
            "name": "f",
        },
    }  # fmt: skip
    assert go_json(template_tool(tool)) == (
        '{"type":"function","function":{"name":"f","description":"","parameters":'
        '{"type":"object","required":["z"],"properties":{"a":{"type":"object","properties":'
        '{"y":{"type":"integer"},"b":{"type":"string"}}},"z":{"type":"string"}}}}}'
    )


def test_arguments_sent_as_text_print_as_objects_and_broken_text_stays_as_sent() -> None:
    assert arguments_json('{"path": "a.py", "line": 3}') == '{"line":3,"path":"a.py"}'
    assert arguments_json({"path": "a.py"}) == '{"path":"a.py"}'
    assert arguments_json("") == "{}"
    assert arguments_json("{path") == "{path"


def test_collation_says_where_each_message_came_from() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "system", "content": "s"},
        {"role": "assistant", "content": "b"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"function": {"name": "f", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
    ]  # fmt: skip
    collated, sources = collate(messages)
    assert [m["role"] for m in collated] == ["system", "user", "assistant", "tool", "tool"]
    assert sources == [[1], [0], [2, 3], [4], [5]]
    assert collated[2]["content"] == "b\n\n"
    assert collated[2]["tool_calls"][0]["function"]["arguments"] == '{"x":1}'


def test_no_system_text_means_no_system_message() -> None:
    messages = [{"role": "system", "content": ""}, {"role": "user", "content": "q"}]
    collated, sources = collate(messages)
    assert collated == [{"role": "user", "content": "q"}] and sources == [[1]]


def test_a_written_call_follows_the_schema_down_to_nested_objects_then_sorts_the_rest() -> None:
    schema = {"type": "object", "properties": {
        "path": {"type": "string"},
        "range": {"type": "object", "properties": {"start": {"type": "integer"},
                                                    "end": {"type": "integer"}}},
        "edits": {"type": "array", "items": {"type": "object", "properties": {
            "old": {"type": "string"}, "new": {"type": "string"}}}}}}  # fmt: skip
    arguments = ('{"zeta": 1, "edits": [{"new": "b", "old": "a"}], "range": {"end": 9, '
                 '"start": 1}, "alpha": {"y": 1, "x": 2}, "path": "a.py"}')  # fmt: skip
    assert arguments_json(arguments, schema) == (
        '{"path":"a.py","range":{"start":1,"end":9},"edits":[{"old":"a","new":"b"}],'
        '"alpha":{"x":2,"y":1},"zeta":1}'
    )
    # without the schema, as Ollama prints it
    assert arguments_json(arguments).startswith('{"alpha":{"x":2,"y":1},"edits"')
