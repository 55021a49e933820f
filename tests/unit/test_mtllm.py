"""Jac MTLLM's requests are read as what they are: the ask of a `by llm()` call with its declared
type, or a follow-up MTLLM sends when it cannot use an answer. Answers are judged against the
declared type at once, and the value that finally has it corrects the answers before it.

The prompts are the ones the real MTLLM 0.3.2 sent for `tests/fixtures/jac/corpus` and
`recorded/follow_ups.jac` (captured with `jac run`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from llama_cpp import LlamaGrammar

from gateway.generation import Assembled, Finish, GenerationRequest
from gateway.prompts import jac_types, mtllm
from gateway.recording.recorder import Recorder
from gateway.recording.records import InteractionRecord
from gateway.serving.workloads import identify
from tests.support.databases import Database

RECORDED = Path(__file__).parents[1] / "fixtures" / "jac" / "recorded"


def recorded(name: str) -> list[dict]:
    return [json.loads(line) for line in (RECORDED / name).read_text().splitlines()]


def request_of(messages: list[dict]) -> GenerationRequest:
    return GenerationRequest(model="jac", messages=messages)


def ask_for(output_type: str) -> mtllm.MtllmCall:
    for row in recorded("asks.jsonl"):
        call = mtllm.read_call(request_of(row["messages"]))
        if call is not None and str(call.output_type) == output_type:
            return call
    raise LookupError(output_type)


def test_every_recorded_ask_is_read_with_its_type_and_is_the_jac_workload() -> None:
    types = set()
    for row in recorded("asks.jsonl"):
        request = request_of(row["messages"])
        call = mtllm.read_call(request)
        assert call is not None and call.kind == "ask" and call.output_type is not None
        assert identify(request, header=None, alias="auto", api="chat") == "jac"
        types.add(str(call.output_type))
    assert {"str", "int", "float", "list[str]", "dict[str, int]", "Person", "Ticket",
            "list[Ingredient]", "Priority"} <= types  # fmt: skip


def test_follow_ups_are_told_apart_and_quote_the_answer_they_could_not_use() -> None:
    calls = [mtllm.read_call(request_of(r["messages"])) for r in recorded("follow_ups.jsonl")]
    assert [c.kind if c else None for c in calls] == ["ask", "fix", "ask", "extract", "check"]
    assert calls[1].previous == 'City(name="Lisbon", coastal=yes'
    assert calls[3].previous == "Porto is a coastal city in Portugal."
    assert all(str(c.output_type) == "City" for c in calls if c)


def test_other_chats_are_not_mtllm() -> None:
    hello = request_of([{"role": "user", "content": "[Action] is a film. Is it good?"}])
    assert mtllm.read_call(hello) is None
    assert identify(hello, header=None, alias=None, api="chat") == "chat"


@pytest.mark.parametrize(
    ("output_type", "answer", "problem"),
    [
        ("int", "[Output] 2", None),
        ("int", "[Output] -3", None),
        ("int", "[Output] two", "output: not int"),
        ("int", "[Output] True", "output: not int"),
        ("int", "There are 2 colours.", "no [Output] in the answer"),
        ("float", "[Output] 9", None),
        ("str", "[Output] Paris, the city of light", None),
        ("str", "[Output]", "empty output"),
        ("list[str]", '[Output] ["a", "b"]', None),
        ("list[str]", '[Output] ["a", 2]', "output[1]: not str"),
        ("dict[str, int]", '[Output] {"red": 2, "blue": 1}', None),
        ("dict[str, int]", '[Output] {"red": "2"}', "output['red']: not int"),
        ("Priority", "[Output] Priority.URGENT", None),
        ("Priority", "[Output] Priority.SOON", "output: not one of Priority.LOW, "
                                                "Priority.HIGH, Priority.URGENT"),
        ("Person", '[Output] Person(name="Ann", age=31, employer=Employer(name="Crumbs", '
                   'city="Oslo"))', None),
        ("Person", '[Output] Person("Ann", 31, Employer("Crumbs", "Oslo"))', None),
        ("Person", '[Output] Person(name="Ann", age=31)', "output: Person misses employer"),
        ("Person", '[Output] Person(name="Ann", age="31", employer=Employer(name="C", city="O"))',
         "output.age: not int"),
        ("Person", '[Output] Person(name="Ann", age=31, employer=Employer(name="C", town="O"))',
         "output.employer: Employer has no field 'town'"),
        ("list[Ingredient]", '[Output] [Ingredient(name="flour", grams=200)]', None),
        ("list[Ingredient]", '[Output] [Ingredient(name="flour", grams=200.5)]',
         "output[0].grams: not int"),
        ("Person", "[Output] __import__('os').system('id')", "output: not a Person(...)"),
    ],
)  # fmt: skip
def test_answers_are_checked_against_the_declared_type_and_its_explanations(
    output_type: str, answer: str, problem: str | None
) -> None:
    assert ask_for(output_type).problem(answer) == problem


def test_fields_compare_as_plain_data() -> None:
    call = ask_for("Person")
    assert call.output_type is not None
    value = jac_types.plain('Person("Ann", 31, Employer(name="C", city="O"))',
                            call.output_type, call.explained)  # fmt: skip
    assert value == {"name": "Ann", "age": 31, "employer": {"name": "C", "city": "O"}}


def test_every_declared_type_has_a_grammar_llama_cpp_accepts() -> None:
    for row in recorded("asks.jsonl"):
        call = mtllm.read_call(request_of(row["messages"]))
        assert call is not None
        grammar = call.grammar()
        assert grammar is not None and grammar.startswith('root ::= "[Output] "')
        LlamaGrammar.from_string(grammar, verbose=False)
    person = ask_for("Person").grammar() or ""
    assert '"Person(" "name=" str ", " "age=" int ", " "employer=" t-employer ")"' in person


def interaction(iid: str, messages: list[dict], answer: str, at: float) -> InteractionRecord:
    return InteractionRecord(
        id=iid, created_at=at, api="chat", workload="jac", model_requested="jac",
        version="m@v0", request=request_of(messages),
        answer=Assembled(text=answer, finish=Finish("stop", 10, 2)), status="complete",
    )  # fmt: skip


async def test_a_retry_chain_is_judged_and_its_final_value_corrects_what_came_before(
    tmp_path: Path, db: Database
) -> None:
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    now = time.time() - 60
    for i, row in enumerate(recorded("follow_ups.jsonl")):
        recorder.submit(interaction(f"ia_{i}", row["messages"], row["answer"], now + i))
    await recorder.close()
    judged = dict(db.rows("SELECT interaction_id, value FROM outcomes "
                              "WHERE kind = 'type_valid' ORDER BY interaction_id"))  # fmt: skip
    assert judged == {"ia_0": 0.0, "ia_1": 1.0, "ia_2": 0.0, "ia_3": 1.0}  # the check: not judged
    reasked = db.rows("SELECT interaction_id, detail FROM outcomes WHERE kind = 'reasked'")
    assert sorted(map(tuple, reasked)) == [("ia_0", "ia_1"), ("ia_2", "ia_3")]
    corrections = dict(db.rows("SELECT interaction_id, content FROM corrections "
                                   "WHERE source = 'mtllm_retry'"))  # fmt: skip
    assert corrections == {
        "ia_0": '[Output] City(name="Lisbon", coastal=True)',
        "ia_2": '[Output] City(name="Porto", coastal=True)',
    }


# byllm (jaclang >= 0.8, Python 3.12) sends JSON schemas instead: its shape as byllm 0.6 builds
# it (`MTRuntime.get_output_schema`: the return type's schema, wrapped in an object unless it is
# one, strict; with tools, a `finish_tool` carries the output instead).
BYLLM_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "list[str]",
        "strict": True,
        "schema": {
            "type": "object",
            "title": "schema_object_wrapper",
            "properties": {"schema_object_wrapper": {"type": "array", "items": {"type": "string"}}},
            "required": ["schema_object_wrapper"],
            "additionalProperties": False,
        },
    },
}
BYLLM_MESSAGES = [
    {"role": "system", "content": "This is a task you must complete by returning only the output."},
    {"role": "user", "content": "tags\n\ntext = 'Rust borrow checker errors'\nlimit = 3"},
]


async def test_byllm_requests_are_the_jac_workload_and_judged_by_their_schema(
    tmp_path: Path, db: Database
) -> None:
    schema = BYLLM_SCHEMA["json_schema"]["schema"]
    request = GenerationRequest(model="jac", messages=BYLLM_MESSAGES, json_schema=schema)
    assert identify(request, header=None, alias=None, api="chat") == "jac"
    finish = {"type": "function", "function": {"name": "finish_tool", "parameters": schema}}
    tooled = GenerationRequest(model="jac", messages=BYLLM_MESSAGES, tools=[finish])
    assert identify(tooled, header=None, alias=None, api="chat") == "jac"
    recorder = Recorder(tmp_path, store_url=db.url)
    await recorder.start()
    for iid, text in (("ok", '{"schema_object_wrapper": ["rust"]}'), ("bad", '["rust"]')):
        record = interaction(iid, BYLLM_MESSAGES, text, time.time())
        record.request = request
        recorder.submit(record)
    await recorder.close()
    judged = dict(db.rows("SELECT interaction_id, value FROM outcomes WHERE kind = 'schema_valid'"))
    assert judged == {"ok": 1.0, "bad": 0.0}
    assert db.rows("SELECT count(*) FROM outcomes WHERE kind = 'type_valid'") == [(0,)]
