"""Scoring answers against references, and comparing two versions on the same items."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from gateway.generation import Assembled, AssembledCall
from gateway.recording.records import FeedbackRecord
from gateway.store import Store
from tests.support.recordings import chat, record
from trainer.data.dataset import BuildOptions, build
from trainer.evaluation import (
    Item,
    budget,
    gate,
    items_of,
    paired,
    prefix_order,
    score_items,
    sign_test,
)
from trainer.evaluation.scoring import mean_interval, same_value, score_call, token_f1

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "required": ["city"],
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}  # fmt: skip
EXPECTED = [{"name": "get_weather", "arguments": {"city": "New York", "days": 3}}]


def call(arguments: str, name: str = "get_weather") -> list[dict[str, str]]:
    return [{"name": name, "arguments": arguments}]


@pytest.mark.parametrize(
    ("got", "name_ok", "full_ok"),
    [
        (call('{"city": "new york!", "days": 3.0}'), True, True),  # folded, numeric
        (call('{"city": "Boston", "days": 3}'), True, False),  # wrong value
        (call('{"city": "New York"}'), True, False),  # an argument missing
        (call('{"city": "New York", "days": 3, "hourly": true}'), True, False),  # undeclared
        (call('{"city": "New York", "days": "3"}'), True, False),  # wrong type
        (call('{"city": "New York", "days": 3'), True, False),  # not JSON
        (call('{"city": "New York", "days": 3}', name="get_forecast"), False, False),
        ([], False, False),  # no call where one was expected
    ],
)
def test_calls_are_scored_like_the_bfcl_ast_checker(
    got: list[dict[str, str]], name_ok: bool, full_ok: bool
) -> None:
    score = score_call(EXPECTED, got, [WEATHER])
    assert (score.name_ok, score.full_ok) == (name_ok, full_ok)


def test_argument_counts_json_and_schema_validity() -> None:
    score = score_call(EXPECTED, call('{"city": "Boston", "days": 3, "x": 1}'), [WEATHER])
    assert (score.arg_tp, score.arg_fp, score.arg_fn) == (1, 2, 1)
    assert score.parsed is True and score.schema_ok is True  # the schema allows extra keys
    broken = score_call(EXPECTED, call("{nope"), [WEATHER])
    assert broken.parsed is False and broken.schema_ok is False
    none_needed = score_call([], [], [WEATHER])
    assert none_needed.full_ok and not none_needed.call_expected
    unwanted = score_call([], call('{"city": "Paris"}'), [WEATHER])
    assert not unwanted.full_ok and unwanted.called and unwanted.parsed


def test_values_and_text() -> None:
    assert same_value([1, "A b."], [1.0, "a B"]) and not same_value(True, 1)
    assert same_value({"k": [2]}, {"k": [2.0]}) and not same_value({"k": 1}, {"k": 1, "j": 2})
    assert token_f1("Paris.", "The capital is Paris") == pytest.approx(0.5)
    assert token_f1("Paris", "Paris") == 1.0 and token_f1("Paris", "Rome") == 0.0


def test_suite_metrics_carry_n_and_wilson_intervals() -> None:
    reference = {"name": "get_weather", "arguments": json.dumps(EXPECTED[0]["arguments"])}
    tool_item = Item("t", [{"role": "user", "content": "NY weather, 3 days"}],
                     {"role": "assistant", "tool_calls": [{"function": reference}]},
                     [WEATHER])  # fmt: skip
    text_item = Item("c", [{"role": "user", "content": "Capital of France?"}],
                     {"role": "assistant", "content": "Paris."}, [])  # fmt: skip
    right = Assembled(calls=[AssembledCall("c1", "get_weather", '{"city": "NY", "days": 3}')])
    metrics, scores = score_items([tool_item, text_item], [right, Assembled(text="Paris")])
    assert scores == [0.0, 1.0]  # "NY" is not "New York"
    assert metrics["name_accuracy"] == {
        "rate": 1.0,
        "n": 1,
        "interval": pytest.approx([0.2065, 1.0], abs=1e-3),
    }
    assert metrics["exact_match"]["rate"] == 1.0 and metrics["argument_f1"]["value"] == 0.5
    assert metrics["right"]["rate"] == 0.5 and metrics["right"]["n"] == 2
    assert metrics["token_f1"] == {"value": 1.0, "n": 1, "interval": [0.0, 1.0]}  # one: no spread


def test_mean_token_f1_comes_with_an_interval_of_the_mean() -> None:
    low, high = mean_interval([0.2, 0.4, 0.6, 0.8])
    assert (low, high) == (pytest.approx(0.247, abs=1e-3), pytest.approx(0.753, abs=1e-3))
    assert mean_interval([0.0] * 3 + [1.0] * 3) == (pytest.approx(0.062, abs=1e-3),
                                                    pytest.approx(0.938, abs=1e-3))  # fmt: skip
    assert mean_interval([1.0] * 5) == (1.0, 1.0)  # every answer the same: nothing to spread


def test_an_answer_has_room_for_its_reference_and_answers_run_in_prefix_order() -> None:
    ask = [{"role": "user", "content": "Capital of France?"}]
    text = Item("c", ask, {"role": "assistant", "content": "Paris."}, [])
    assert budget(text) == 2 * len("Paris.") + 32
    call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    tool = Item("t", ask, {"role": "assistant", "tool_calls": [{"function": call}]}, [WEATHER])
    expected = json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}}])
    assert budget(tool) == len(expected) + 32  # an exact call fits: a token is ≥ 1 character
    essay = Item("e", ask, {"role": "assistant", "content": "x" * 5000}, [])
    assert budget(essay) == 1024  # the most any answer is given

    def item(name: str, system: str, tools: list[dict]) -> Item:
        prompt = [{"role": "system", "content": system}, {"role": "user", "content": name}]
        return Item(name, prompt, {"role": "assistant", "content": "ok"}, tools)

    items = [item("a", "agent", [WEATHER]), item("b", "chat", []), item("c", "agent", [WEATHER]),
             item("d", "chat", []), item("e", "agent", [])]  # fmt: skip
    order = [items[i].id for i in prefix_order(items)]
    assert order.index("c") == order.index("a") + 1 and order.index("d") == order.index("b") + 1
    assert sorted(order) == ["a", "b", "c", "d", "e"]


def test_paired_comparison_and_its_significance() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(9, 1) == pytest.approx(0.0215, abs=1e-4)
    assert sign_test(6, 4) == pytest.approx(0.7539, abs=1e-4)
    a = [1.0] * 12 + [0.0] * 8
    b = [0.0] * 10 + [1.0] * 2 + [0.0] * 8
    result = paired(a, b)
    assert (result["wins"], result["losses"], result["ties"]) == (10, 0, 10)
    assert result["significant"] and result["difference"] == pytest.approx(0.5)
    # graded scores (token F1) that rise on items still below right: only the score test sees it
    f1_after, f1_before = [0.3] * 9 + [0.1], [0.1] * 9 + [0.2]
    result = paired(f1_after, f1_before)
    assert (result["wins"], result["losses"], result["significant"]) == (0, 0, False)
    scores = result["scores"]
    assert (scores["higher"], scores["lower"], scores["equal"]) == (9, 1, 0)
    assert scores["significant"] and scores["mean_difference"] == pytest.approx(0.17)


def test_the_gate_refuses_on_harm_or_no_win_and_lets_live_results_decide_the_rest() -> None:
    same = ([1.0, 0.4, 0.0], [1.0, 0.4, 0.0])
    verdict, reason = gate({"wins": 6, "losses": 0, "ties": 2}, same)
    assert verdict == "better" and reason == (
        "passed the gate: held-out: 6 wins, 0 losses, 2 ties (p = 0.016); "
        "general: 0.467 vs 0.467 (+0.0 points)"
    )
    # a win not beyond noise, and a set too small to show one: live results decide
    verdict, reason = gate({"wins": 4, "losses": 1, "ties": 5}, same)
    assert verdict == "undecided" and "(p = 0.188): a win not yet beyond noise" in reason
    verdict, reason = gate({"wins": 4, "losses": 0, "ties": 0}, same)
    assert verdict == "undecided" and reason.startswith(
        "4 held-out items cannot show a win: serving as a candidate, live results decide"
    )
    # evidence of harm, or enough items and no win at all; on a set too small to show a
    # win, more losses than wins still refuses the version
    verdict, reason = gate({"wins": 0, "losses": 1, "ties": 1}, same)
    assert verdict == "failed" and "fewer right than the active version" in reason
    verdict, reason = gate({"wins": 1, "losses": 1, "ties": 0}, same)
    assert verdict == "undecided"
    verdict, reason = gate({"wins": 0, "losses": 5, "ties": 3}, same)
    assert verdict == "failed" and "worse beyond noise" in reason
    verdict, reason = gate({"wins": 1, "losses": 1, "ties": 6}, same)
    assert verdict == "failed" and "no win" in reason
    verdict, reason = gate({"wins": 9, "losses": 0, "ties": 0}, ([0.5, 0.5], [0.6, 0.5]))
    assert verdict == "failed" and reason.startswith(
        "failed the gate: general: 0.500 vs 0.550 (-5.0 points), more than 2 points lost"
    )


def test_structured_outputs_reach_the_held_out_suite_with_their_schema(tmp_path: Path) -> None:
    """byllm-style requests (a response schema) become held-out items scored as structured
    output; `--workload` keeps one workload's items."""
    schema = {"type": "object", "properties": {"name": {"type": "string"},
              "age": {"type": "integer"}}, "required": ["name", "age"]}  # fmt: skip
    asked = []
    for i in range(20):
        workload = "byllm" if i % 2 else "chat"
        interaction = chat(f"ia_{i}", f"Person number {i}?", f'{{"name": "P{i}", "age": {i}}}',
                           time.time() + i, workload)  # fmt: skip
        if workload == "byllm":
            interaction.request = interaction.request.model_copy(update={"json_schema": schema})
        asked.append(interaction)
    verdicts = [FeedbackRecord(a.id, time.time() + 50, accepted=True) for a in asked]
    asyncio.run(record(tmp_path, asked, verdicts))
    store = Store(tmp_path / "store.db")
    dataset = build(store, tmp_path, BuildOptions(replay_fraction=0.0), progress=False)
    items = items_of(tmp_path, "held-out", dataset.hash, workload="byllm")
    assert items and all(item.json_schema == schema for item in items)
    assert len(items) < len(items_of(tmp_path, "held-out", dataset.hash))
    reference = json.loads(items[0].reference["content"])
    right = Assembled(text=json.dumps(reference))
    wrong = Assembled(text='{"name": "someone", "age": "old"}')
    metrics, scores = score_items(items[:1] * 2, [right, wrong])
    assert scores == [1.0, 0.0]
    assert metrics["structured_parse_rate"]["rate"] == 1.0
    assert metrics["structured_schema_valid_rate"]["rate"] == 0.5
    assert metrics["field_exact_match"]["rate"] == 0.5  # 2 of 4 fields


def test_jac_answers_are_scored_for_parsing_type_and_fields() -> None:
    from trainer.evaluation.items import Item
    from trainer.evaluation.scoring import TypedScore, score_items, score_typed

    asks = Path(__file__).parents[1] / "fixtures" / "jac" / "recorded" / "asks.jsonl"
    rows = [json.loads(line) for line in asks.read_text().splitlines()]
    person = next(r for r in rows if "(Person)" in r["messages"][0]["content"])
    count = next(r for r in rows if "Count the words that name colours" in
                 r["messages"][0]["content"])  # fmt: skip
    want = '[Output] Person(name="Ann", age=31, employer=Employer(name="Crumbs", city="Oslo"))'
    item = Item("p", person["messages"], {"role": "assistant", "content": want}, [],
                workload="jac")  # fmt: skip
    number = Item("n", count["messages"], {"role": "assistant", "content": "[Output] 2"}, [],
                  workload="jac")  # fmt: skip
    half = '[Output] Person("ann", 30, Employer("Crumbs", "Oslo"))'  # name folds equal
    assert score_typed(item, half) == TypedScore(True, True, 2, 3)
    assert score_typed(item, "[Output] Person(name='Ann')").typed is False
    assert score_typed(item, "The person is Ann.").parses is False
    metrics, per_item = score_items(
        [item, number], [Assembled(text=half), Assembled(text="[Output] 2")]
    )
    assert metrics["jac_type_correct_rate"]["rate"] == 1.0
    assert metrics["jac_field_match"]["n"] == 4 and metrics["jac_field_match"]["rate"] == 0.75
    assert per_item == [2 / 3, 1.0]
