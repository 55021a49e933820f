"""How one answer compares with the reference answer.

Tool calls are scored like the Berkeley Function Calling Leaderboard's AST checker: the right
function; every required argument present; no argument the function does not declare; each
value of the declared type; values equal after normalisation (strings case- and
punctuation-folded, numbers numerically, lists and objects element by element); and a call
exactly when one is expected (relevance), none when none is (irrelevance). Text answers get
exact match and token F1 (SQuAD's normalisation); structured answers parse rate, schema
validity and per-field exact match; Jac MTLLM answers whether their `[Output]` value parses,
has the declared type, and matches the reference field by field. LibCST scripts: the script
parses and defines a transformer, runs on the file the prompt quotes without error, and changes
it as the recorded validated script does.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any

from gateway.generation import Assembled, GenerationRequest
from gateway.prompts import jac_types, mtllm
from gateway.prompts.schemas import violation
from gateway.prompts.scripts import script_in
from gateway.prompts.toolcalls import parameter_schemas
from gateway.versions.bandit import wilson
from trainer.data import libcst_scripts
from trainer.evaluation.items import Item, expected_calls

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,),
}  # fmt: skip


def fold(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.casefold().translate(_PUNCTUATION)).split())


def same_value(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return abs(float(expected) - float(got)) <= 1e-9 * max(1.0, abs(float(expected)))
    if isinstance(expected, str) and isinstance(got, str):
        return fold(expected) == fold(got)
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(map(same_value, expected, got))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(
            same_value(v, got[k]) for k, v in expected.items()
        )
    return False


def _typed(value: Any, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        return True
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[kind])


@dataclass(frozen=True)
class CallScore:
    """One answer against its reference, for a turn that offered tools."""

    call_expected: bool
    called: bool
    name_ok: bool  # the right function (or rightly none)
    full_ok: bool  # the whole call right (or rightly none)
    parsed: bool | None  # arguments were JSON (None: no call made)
    schema_ok: bool | None  # arguments valid against the tool's schema (None: no call made)
    arg_tp: int = 0
    arg_fp: int = 0
    arg_fn: int = 0


def score_call(
    expected: list[dict[str, Any]], got: list[dict[str, str]], tools: list[dict[str, Any]]
) -> CallScore:
    """`expected`: the reference calls as `{"name", "arguments": dict}`; `got`: the answer's
    as `{"name", "arguments": JSON text}`. The first call of each is compared."""
    schemas = parameter_schemas(tools)
    parsed: bool | None = None
    schema_ok: bool | None = None
    arguments: dict[str, Any] = {}
    if got:
        made = got[0]
        try:
            value = json.loads(made.get("arguments") or "{}")
        except json.JSONDecodeError:
            value = None
        parsed = isinstance(value, dict)
        arguments = value if isinstance(value, dict) else {}
        schema = schemas.get(made.get("name"))
        schema_ok = parsed and schema is not None and violation(arguments, schema) is None
    if not expected or not got:
        right = not expected and not got
        missed = len(expected[0].get("arguments") or {}) if expected else 0
        return CallScore(bool(expected), bool(got), right, right, parsed, schema_ok, 0,
                         len(arguments), missed)  # fmt: skip
    want = expected[0]
    reference = want.get("arguments") or {}
    properties = (schemas.get(want["name"]) or {}).get("properties") or {}
    required = (schemas.get(want["name"]) or {}).get("required") or []
    name_ok = made.get("name") == want["name"]
    tp = sum(1 for k, v in reference.items() if k in arguments and same_value(v, arguments[k]))
    fp = len(arguments) - tp
    fn = len(reference) - tp
    declared = not properties or all(k in properties for k in arguments)
    typed = all(_typed(v, properties.get(k, {})) for k, v in arguments.items())
    present = all(k in arguments for k in required)
    full_ok = name_ok and parsed and declared and typed and present and fp == 0 and fn == 0
    return CallScore(True, True, name_ok, bool(full_ok), parsed, schema_ok, tp, fp, fn)


def token_f1(reference: str, answer: str) -> float:
    want, got = fold(reference).split(), fold(answer).split()
    if not want or not got:
        return float(want == got)
    common = sum((Counter(want) & Counter(got)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def exact_match(reference: str, answer: str) -> bool:
    return fold(reference) == fold(answer)


@dataclass(frozen=True)
class StructuredScore:
    parsed: bool
    schema_ok: bool
    fields_right: int
    fields: int


def score_structured(reference: str, answer: str, schema: dict[str, Any]) -> StructuredScore:
    want = json.loads(reference)
    try:
        got = json.loads(answer)
    except json.JSONDecodeError:
        return StructuredScore(False, False, 0, len(want) if isinstance(want, dict) else 1)
    schema_ok = violation(got, schema) is None
    if isinstance(want, dict):
        right = sum(
            1 for k, v in want.items() if isinstance(got, dict) and same_value(v, got.get(k))
        )
        return StructuredScore(True, schema_ok, right, len(want))
    return StructuredScore(True, schema_ok, int(same_value(want, got)), 1)


@dataclass(frozen=True)
class TypedScore:
    parses: bool  # an `[Output]` value that parses as a Python expression (any text for `str`)
    typed: bool  # of the declared type
    fields_right: int
    fields: int


def score_typed(item: Item, answer: str) -> TypedScore | None:
    """A Jac MTLLM answer against the reference value; None when the prompt is not an ask."""
    call = mtllm.read_call(GenerationRequest(model="eval", messages=item.messages))
    if call is None or call.kind != "ask" or call.output_type is None:
        return None
    spec, explained = call.output_type, call.explained
    want = jac_types.plain(call.value_of(item.reference.get("content") or "") or "", spec,
                           explained)  # fmt: skip
    value = call.value_of(answer)
    got = jac_types.plain(value, spec, explained) if value is not None else None
    typed = call.problem(answer) is None
    if isinstance(want, dict) and spec.name != "dict":  # an object: field by field
        right = sum(1 for k, v in want.items()
                    if typed and isinstance(got, dict) and same_value(v, got.get(k)))  # fmt: skip
        return TypedScore(got is not None, typed, right, len(want))
    return TypedScore(got is not None, typed, int(typed and same_value(want, got)), 1)


@dataclass(frozen=True)
class ScriptScore:
    parses: bool  # parses and defines a transformer class
    applies: bool | None  # ran on the target file (None: the prompt quotes no file)
    same_change: bool | None  # changed it as the reference script does


def score_script(item: Item, answer: str) -> ScriptScore:
    """A LibCST script against the validated one, on the file the prompt quotes."""
    parses = libcst_scripts.script_problem(answer) is None
    source = libcst_scripts.target_source(item.messages)
    if source is None:
        return ScriptScore(parses, None, None)
    if not parses:
        return ScriptScore(False, False, False)
    made = libcst_scripts.apply(script_in(answer) or "", source)
    if made is None:
        return ScriptScore(True, False, False)
    reference = script_in(item.reference.get("content") or "")
    wanted = libcst_scripts.apply(reference, source) if reference else None
    same = (
        wanted is not None
        and wanted != source
        and (
            libcst_scripts.changed_lines(source, wanted)
            == libcst_scripts.changed_lines(source, made)
        )
    )
    return ScriptScore(True, True, same)


RIGHT = 0.5  # an item's score from which it counts as right


def score_items(items: list[Item], answers: list[Assembled]) -> tuple[dict[str, Any], list[float]]:
    """Metrics of a suite, each rate with n and its Wilson interval, and each item's score."""
    counts: dict[str, list[int]] = {}  # metric -> [hits, n]
    f1s: list[float] = []
    tp = fp = fn = 0
    per_item: list[float] = []

    def count(metric: str, hit: bool) -> None:
        pair = counts.setdefault(metric, [0, 0])
        pair[0] += int(hit)
        pair[1] += 1

    for item, answer in zip(items, answers, strict=True):
        if item.tools:
            got = [{"name": c.name, "arguments": c.arguments} for c in answer.calls]
            s = score_call(expected_calls(item.reference), got, item.tools)
            count("name_accuracy", s.name_ok)
            count("full_call_accuracy", s.full_ok)
            count("relevance" if s.call_expected else "irrelevance", s.called == s.call_expected)
            if s.parsed is not None:
                count("json_parse_rate", s.parsed)
                count("schema_valid_rate", bool(s.schema_ok))
            tp, fp, fn = tp + s.arg_tp, fp + s.arg_fp, fn + s.arg_fn
            per_item.append(float(s.full_ok))
        elif item.json_schema is not None:
            st = score_structured(item.reference.get("content") or "", answer.text,
                                  item.json_schema)  # fmt: skip
            count("structured_parse_rate", st.parsed)
            count("structured_schema_valid_rate", st.schema_ok)
            counts.setdefault("field_exact_match", [0, 0])
            counts["field_exact_match"][0] += st.fields_right
            counts["field_exact_match"][1] += st.fields
            per_item.append(float(st.schema_ok and st.fields_right == st.fields))
        elif item.workload == mtllm.WORKLOAD and (ty := score_typed(item, answer.text)):
            count("jac_parse_rate", ty.parses)
            count("jac_type_correct_rate", ty.typed)
            counts.setdefault("jac_field_match", [0, 0])
            counts["jac_field_match"][0] += ty.fields_right
            counts["jac_field_match"][1] += ty.fields
            per_item.append(ty.fields_right / ty.fields if ty.typed and ty.fields else 0.0)
        elif item.workload == libcst_scripts.WORKLOAD:
            sc = score_script(item, answer.text)
            count("script_parse_rate", sc.parses)
            if sc.applies is not None:
                count("script_applies_rate", sc.applies)
                count("same_change_rate", bool(sc.same_change))
            per_item.append(float(sc.parses if sc.same_change is None else sc.same_change))
        else:
            reference = item.reference.get("content") or ""
            count("exact_match", exact_match(reference, answer.text))
            f1s.append(token_f1(reference, answer.text))
            per_item.append(f1s[-1])
    metrics: dict[str, Any] = {}
    for metric, (hits, n) in counts.items():
        low, high = wilson(hits, n)
        metrics[metric] = {"rate": hits / n, "n": n, "interval": [low, high]}
    if tp + fp + fn:
        metrics["argument_f1"] = {"value": 2 * tp / (2 * tp + fp + fn), "n": tp + fp + fn}
    if f1s:
        metrics["token_f1"] = {"value": sum(f1s) / len(f1s), "n": len(f1s),
                               "interval": list(mean_interval(f1s))}  # fmt: skip
    right = sum(score >= RIGHT for score in per_item)
    low, high = wilson(right, len(per_item))
    metrics["right"] = {"rate": right_rate(per_item), "n": len(per_item),
                        "interval": [low, high]}  # fmt: skip
    return metrics, per_item


def mean_interval(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """A 95 % interval of the mean of scores in [0, 1] (normal approximation, clipped)."""
    n = len(values)
    if n < 2:
        return 0.0, 1.0
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return max(0.0, mean - half), min(1.0, mean + half)


def right_rate(scores: list[float]) -> float:
    return sum(score >= RIGHT for score in scores) / max(len(scores), 1)
