"""Hermes-style tool calls: split from streamed text, parsed, and forced by a grammar."""

from __future__ import annotations

import json

import pytest

from gateway.prompts.toolcalls import ToolCallSplitter, call_grammar, call_schema, parse_call
from tests.support.tools import READ

LIST = {"type": "function", "function": {"name": "list_dir"}}


def feed_all(pieces: list[str]) -> tuple[str, list]:
    splitter = ToolCallSplitter()
    shown, calls = "", []
    for piece in pieces:
        text, found = splitter.feed(piece)
        shown += text
        calls += found
    text, found = splitter.finish()
    return shown + text, calls + found


def test_plain_text_passes_through_unchanged() -> None:
    assert feed_all(["Hello", " <b>world</b>", " a < b"]) == ("Hello <b>world</b> a < b", [])


def test_a_call_split_across_tokens_is_parsed_and_hidden() -> None:
    pieces = [
        "Sure.\n<to",
        'ol_call>\n{"name": "read_file", "argu',
        'ments": {"path":',
        ' "a.py"}}\n</tool_',
        "call>",
    ]
    shown, calls = feed_all(pieces)
    assert shown == "Sure.\n"
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("read_file", {"path": "a.py"})]
    assert calls[0].id.startswith("call_")


def test_several_calls_and_the_whitespace_between_them() -> None:
    block = '<tool_call>\n{"name": "list_dir", "arguments": {}}\n</tool_call>'
    shown, calls = feed_all([block, "\n", block, "\n"])
    assert shown == "" and len(calls) == 2 and calls[0].id != calls[1].id


def test_a_block_that_is_not_json_stays_text() -> None:
    shown, calls = feed_all(["<tool_call>not json</tool_call>"])
    assert calls == [] and shown == "<tool_call>not json</tool_call>"


def test_an_unclosed_but_complete_block_still_counts() -> None:
    shown, calls = feed_all(['<tool_call>\n{"name": "list_dir", "arguments": {}}'])
    assert shown == "" and calls[0].name == "list_dir"


def test_a_block_cut_off_after_a_complete_call_is_dropped() -> None:
    shown, calls = feed_all(
        [
            '<tool_call>{"name": "list_dir", "arguments": {}}</tool_call>\n',
            '<tool_call>{"name": "read',
        ]
    )
    assert shown == "" and len(calls) == 1


@pytest.mark.parametrize("arguments", ['{"path": "x"}', '"{\\"path\\": \\"x\\"}"'])
def test_arguments_may_be_an_object_or_a_json_string(arguments: str) -> None:
    call = parse_call(f'{{"name": "read_file", "arguments": {arguments}}}')
    assert call is not None and json.loads(call.arguments) == {"path": "x"}


def test_schema_admits_any_one_of_the_tools() -> None:
    schema = call_schema([READ, LIST])
    assert [v["properties"]["name"]["const"] for v in schema["anyOf"]] == ["read_file", "list_dir"]


def test_sorted_arguments_order_every_object_of_the_schema_by_key() -> None:
    tool = {"type": "function", "function": {"name": "edit", "parameters": {
        "type": "object", "properties": {
            "path": {"type": "string"},
            "range": {"type": "object", "properties": {"start": {"type": "integer"},
                                                        "end": {"type": "integer"}}},
            "name": {"type": "string"}}}}}  # fmt: skip
    arguments = call_schema([tool], sorted_arguments=True)["properties"]["arguments"]
    assert list(arguments["properties"]) == ["name", "path", "range"]
    assert list(arguments["properties"]["range"]["properties"]) == ["end", "start"]
    assert list(call_schema([tool])["properties"]["arguments"]["properties"]) == [
        "path", "range", "name"]  # fmt: skip
    # the call itself keeps `name` before `arguments`, even with an argument called `name`
    grammar = call_grammar([tool], parallel=False, sorted_arguments=True)
    assert 'call ::= "{" space call-name-kv "," space call-arguments-kv "}" space' in grammar
    assert ('call-arguments ::= "{" space  (call-arguments-name-kv call-arguments-name-rest | '
            "call-arguments-path-kv call-arguments-path-rest | call-arguments-range-kv )?"
            in grammar)  # fmt: skip


def test_grammar_forces_the_tagged_block_with_name_first() -> None:
    grammar = call_grammar([READ], parallel=False)
    assert "root ::= block" in grammar
    assert 'block ::= "<tool_call>" "\\n" call "\\n</tool_call>"' in grammar
    assert '"\\"read_file\\""' in grammar
    assert 'root ::= block ("\\n" block)*' in call_grammar([READ], parallel=True)
    # a call the model opened itself: the grammar takes over after its `<tool_call>`
    opened = call_grammar([READ], parallel=False, opened=True)
    assert 'root ::= "\\n" call "\\n</tool_call>"' in opened
