"""The real Jac MTLLM client (jaclang 0.7.18 + mtllm 0.3.2, `jac run`) against the gateway: its
calls are the `jac` workload, each answer is judged against the declared type, the embedded
engine answers with values of that type, and `loragate collect jac` asks the served model for
the call sites no check answers."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from gateway.generation import GenerationRequest
from gateway.prompts import mtllm
from tests.support.cli import loragate
from tests.support.jac import jac_cli, jac_run
from tests.support.servers import gateway

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parents[1] / "fixtures" / "jac"
EXAMPLE = Path(__file__).parents[2] / "examples" / "jac" / "triage.jac"


@pytest.fixture(scope="module", autouse=True)
def jac_installed() -> Path:
    return jac_cli()


def rows(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "store.db") as db:
        return db.execute(sql).fetchall()


def test_a_jac_program_gets_typed_values_and_every_call_is_judged(tmp_path: Path) -> None:
    program = tmp_path / "people.jac"
    shutil.copy(FIXTURES / "corpus" / "people.jac", program)
    with gateway(tmp_path) as gw:
        done = jac_run(program, gw.url + "/v1", "jac")
        assert done.returncode == 0, done.stderr[-2000:]
        printed = done.stdout.splitlines()
        assert len(printed) == 10 and not [p for p in printed if p.startswith("failed:")]
        assert printed[0].startswith("Person(name=")  # a Person MTLLM built from the answer
        assert printed[4].startswith("[") and printed[7].isdigit()  # list[str], int
        judged = rows(gw.home, "SELECT i.workload, i.version, o.value, o.detail FROM "
                      "interactions i JOIN outcomes o ON o.interaction_id = i.id "
                      "WHERE o.kind = 'type_valid'")  # fmt: skip
    assert len(judged) == 10
    assert {(w, v, value) for w, v, value, _ in judged} == {
        ("jac", "smollm2-135m-instruct@v0", 1.0)
    }


def test_without_the_constraint_the_base_model_answers_prose_and_is_judged_so(
    tmp_path: Path,
) -> None:
    program = tmp_path / "words.jac"
    shutil.copy(FIXTURES / "corpus" / "words.jac", program)
    with gateway(tmp_path, env={"LORAGATE_CONSTRAIN_TYPES": "0"}) as gw:
        done = jac_run(program, gw.url + "/v1", "jac")
        assert done.returncode == 0, done.stderr[-2000:]
        judged = rows(
            gw.home,
            "SELECT i.request, o.value, o.detail FROM interactions i "
            "JOIN outcomes o ON o.interaction_id = i.id WHERE o.kind = 'type_valid'",
        )
        reasked = rows(gw.home, "SELECT count(*) FROM outcomes WHERE kind = 'reasked' AND "
                       "source = 'mtllm'")  # fmt: skip
    asks = [(value, detail) for request, value, detail in judged if is_ask(request)]
    assert len(asks) == 9  # one per call; MTLLM's follow-ups are judged apart
    failed = [detail for value, detail in asks if value == 0.0]
    assert failed and all(detail for detail in failed)  # each failure says why
    assert len(judged) > 9 and reasked[0][0] > 0  # MTLLM asked again, quoting the answer


def is_ask(request: str) -> bool:
    call = mtllm.read_call(GenerationRequest.model_validate_json(request))
    return call is not None and call.kind == "ask"


def test_collect_jac_asks_the_served_model_for_unchecked_call_sites(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(FIXTURES / "corpus" / "words.jac", corpus / "words.jac")
    with gateway(tmp_path) as gw:
        done = loragate(gw.home, "collect", "jac", str(corpus))
        assert done.returncode == 0, done.stderr
        assert "from checks: 2 kept" in done.stdout
        # the engine keeps every answer to its type; a looping or pasted one is kept out
        assert ", 0 not of the declared type, " in done.stdout and ", 0 failed" in done.stdout
        [pairs] = (gw.home / "collectors" / "jac").glob("corpus-*.jsonl")
        made = [json.loads(line) for line in pairs.read_text().splitlines()]
        asked = rows(gw.home, "SELECT DISTINCT workload FROM interactions WHERE api = 'chat'")
    assert {p["source"] for p in made} == {"check", "model"} and len(made) == 9
    kept = [p for p in made if p["status"] == "kept"]
    assert {p["status"] for p in made} <= {"kept", "poor"} and len(kept) > 2
    assert {p["file"] for p in made} == {"words.jac"}
    assert asked == [("jac-generation",)]  # the asking is recorded apart from the pairs
    built = loragate(gw.home, "dataset", "build", "--workload", "jac")
    assert built.returncode == 0, built.stderr
    [folder] = (gw.home / "datasets").iterdir()
    lines = (folder / "train.jsonl").read_text().splitlines()
    train = [t for t in map(json.loads, lines) if t["workload"] == "jac"]  # and some replay
    assert len(train) == len(kept)
    assert all(t["messages"][-1]["content"].startswith("[Output] ") for t in train)


def test_the_example_program_runs_against_the_gateway(tmp_path: Path) -> None:
    program = tmp_path / EXAMPLE.name
    shutil.copy(EXAMPLE, program)
    with gateway(tmp_path) as gw:
        done = jac_run(program, gw.url + "/v1", "unused")  # the example reads LORAGATE_MODEL
    assert done.returncode == 0, done.stderr[-2000:]
    title, severity, steps, problems = done.stdout.splitlines()
    assert title and severity.startswith("Severity.")
    assert steps.startswith("[") and problems.isdigit()
