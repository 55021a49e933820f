"""A correction says what an answer should have been: text, or the tool call that should have
been made. Structured ones are checked against the request they correct, stored as the serving
template renders them, and learned as tool calls, however they arrived."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.prompts import templates
from gateway.recording.corrections import Correction, InvalidCorrection, correction_of
from gateway.recording.recorder import Recorder
from gateway.recording.records import FeedbackRecord
from gateway.store import Store
from tests.support.tools import READ
from tests.unit.test_dataset import SYSTEM, TOOLS, build_all, exchange, lines, own

OPENAI_SHAPE = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "src/app.py"}'}}],
}  # fmt: skip
OLLAMA_SHAPE = {
    "role": "assistant",
    "content": "",
    "tool_calls": [{"function": {"name": "read_file", "arguments": {"path": "src/app.py"}}}],
}


def test_openai_and_ollama_shapes_are_the_same_correction() -> None:
    openai_form, ollama_form = correction_of(OPENAI_SHAPE), correction_of(OLLAMA_SHAPE)
    assert openai_form.text() == ollama_form.text()
    [call] = openai_form.calls
    assert (call.name, json.loads(call.arguments)) == ("read_file", {"path": "src/app.py"})


def test_the_stored_form_is_what_the_serving_template_renders() -> None:
    correction = correction_of({**OLLAMA_SHAPE, "content": "Let me look."})
    source = templates.template_source(templates.TOOLS_TEMPLATE)
    rendered = templates.render(source, [correction.message()], [READ],
                                add_generation_prompt=False)  # fmt: skip
    assert correction.text() in rendered


def test_a_text_correction_that_is_a_tool_call_block_reads_back_as_a_call() -> None:
    block = '<tool_call>\n{"name": "run", "arguments": {"command": "ls"}}\n</tool_call>'
    correction = Correction.from_text(block)
    assert correction.content == "" and [c.name for c in correction.calls] == ["run"]
    assert Correction.from_text(correction.text()).text() == correction.text()
    plain = Correction.from_text("Use <tool_call> tags like this: <tool_call>oops</tool_call>")
    assert plain.calls == () and plain.content.startswith("Use <tool_call>")


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"tool_calls": [{"function": {"name": "Write", "arguments": {}}}]},
         "unknown tool 'Write' (the request offered: read_file, run)"),
        ({"tool_calls": [{"function": {"name": "read_file", "arguments": "{path: x"}}]},
         "the arguments of read_file are not JSON"),
        ({"tool_calls": [{"function": {"name": "read_file", "arguments": {}}}]},
         "read_file is missing required path"),
        ({"tool_calls": [{"function": {"name": "read_file", "arguments": {"path": 3}}}]},
         "the arguments of read_file don't match its schema"),
        ({"tool_calls": [{"function": {"name": "run", "arguments": "[1]"}}]},
         "the arguments of run are not a JSON object"),
        ({"content": ""}, "neither content nor tool_calls"),
    ],
)  # fmt: skip
def test_a_correction_that_does_not_fit_its_request_names_the_problem(
    message: dict, problem: str
) -> None:
    with pytest.raises(InvalidCorrection) as caught:
        correction_of(message).check(TOOLS, None)
    assert problem in caught.value.message and caught.value.param == "correction"


def test_a_text_correction_of_a_structured_request_must_match_its_schema() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    correction_of('{"age": 41}').check([], schema)
    for wrong in ("forty-one", '{"age": "41"}'):
        with pytest.raises(InvalidCorrection):
            correction_of(wrong).check([], schema)


async def _record_corrected_calls(home: Path, n: int) -> None:
    recorder = Recorder(home)
    await recorder.start()
    for i in range(n):
        ask = [{"role": "system", "content": SYSTEM},
               {"role": "user", "content": f"What is in file number {i}?"}]  # fmt: skip
        recorder.submit(exchange(f"ia_{i}", ask, text="I cannot read files."))
    await recorder.flush()
    for i in range(n):
        arguments = {"path": f"src/f{i}.py"}
        wanted = {"tool_calls": [{"function": {"name": "read_file", "arguments": arguments}}]}
        text = correction_of(wanted).text()
        if i % 2:  # half as older records hold them: a block pasted as text
            call = json.dumps({"name": "read_file", "arguments": arguments})
            text = f"<tool_call>{call}</tool_call>"
        recorder.submit(FeedbackRecord(f"ia_{i}", time.time(), correction=text))
    await recorder.close()


async def test_corrected_calls_are_learned_and_counted_as_tool_calls(tmp_path: Path) -> None:
    await _record_corrected_calls(tmp_path, 6)
    path, manifest = build_all(tmp_path)
    examples = own(lines(path / "train.jsonl"))
    corrected = [e for e in examples if e["trust"] == "corrected"]
    assert len(corrected) == 6 and not manifest["filters"]["invalid"]
    for example in corrected:
        [call] = example["messages"][-1]["tool_calls"]
        assert call["function"]["name"] == "read_file"
    assert manifest["counts"]["per_tool"]["read_file"] == 6


async def test_the_cli_records_a_checked_correction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = Recorder(tmp_path)
    await recorder.start()
    ask = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "List the files"}]
    recorder.submit(exchange("ia_ls", ask, text="Sure."))
    await recorder.close()
    home = ["--home", str(tmp_path)]
    assert main(["log", "correct", "ia_ls", "--tool", "run", "--args", '{"command": "ls"}',
                 *home]) == 0  # fmt: skip
    assert main(["log", "correct", "ia_ls", "--tool", "Write", *home]) == 1
    assert "unknown tool 'Write'" in capsys.readouterr().err
    assert main(["log", "correct", "ia_nope", "--text", "Hi", *home]) == 1
    store = Store(tmp_path / "store.db")
    try:
        [(content, source)] = store.query("SELECT content, source FROM corrections")
    finally:
        store.close()
    assert source == "cli" and Correction.from_text(content).calls[0].name == "run"
