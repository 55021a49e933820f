"""A project's documentation becomes training data: `loragate collect docs` asks the embedded
model for question/answer pairs through the running gateway, keeps those their chunk supports,
and a dataset of the `docs` workload holds out whole files."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.support.cli import loragate
from tests.support.servers import gateway

FIXTURE = Path(__file__).parents[1] / "fixtures" / "docs_project"


def rows(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "store.db") as db:
        return db.execute(sql).fetchall()


def test_collect_docs_asks_the_served_model_and_a_second_run_goes_on(tmp_path: Path) -> None:
    project = tmp_path / "tinyq"
    shutil.copytree(FIXTURE, project)
    with gateway(tmp_path) as gw:
        home = gw.home
        first = loragate(home, "collect", "docs", str(project), "--max-chunks", "12",
                         "--concurrency", "4", "--timeout", "300")  # fmt: skip
        assert first.returncode == 0, first.stderr
        assert "21 files read, 0 skipped" in first.stdout and "0 done before" in first.stdout
        asked = [json.loads(line) for line in next((home / "collectors" / "docs").glob(
            "tinyq-*.jsonl")).open()]  # fmt: skip
        assert len(asked) == 12
        assert {p["status"] for p in asked} <= {"kept", "unsupported", "poor", "invalid"}
        kept = [p for p in asked if p["status"] == "kept"]
        assert kept, first.stdout  # the grammar holds the JSON; the model copies from the text
        stored = rows(home, "SELECT workload, kind, conversation_id, response_text FROM "
                      "interactions WHERE api = 'collector'")  # fmt: skip
        assert sorted(r[3] for r in stored) == sorted(p["answer"] for p in kept)
        assert {(r[0], r[1]) for r in stored} == {("docs", "synthetic")}
        assert all(r[2] == f"docs:tinyq:{p['file']}" for r, p in zip(
            sorted(stored, key=lambda r: r[3]), sorted(kept, key=lambda p: p["answer"]),
            strict=True))  # fmt: skip
        generation = rows(home, "SELECT DISTINCT workload FROM interactions WHERE api = 'chat'")
        assert generation == [("docs-generation",)]  # the asking is recorded apart

        other = tmp_path / "other"
        shutil.copytree(FIXTURE / "docs" / "source", other)
        second = loragate(home, "collect", "docs", str(project), str(other), "--max-chunks", "2",
                          "--strategies", "heading", "--judge", "auto")  # fmt: skip
        assert second.returncode == 0, second.stderr
        said = second.stdout.splitlines()
        assert said[0].startswith(f"{project}: ") and "; 0 done before" not in said[0]
        assert sum(line.startswith("  asked 2 in") for line in said) == 2  # both projects
        assert any(line.startswith(f"{other}: 11 files read") for line in said)

    built = loragate(home, "dataset", "build", "--workload", "docs", "--eval-fraction", "0.3")
    assert built.returncode == 0, built.stderr
    [folder] = (home / "datasets").iterdir()
    split = {
        side: {json.loads(line)["conversation_id"] for line in (folder / f"{side}.jsonl").open()
               if json.loads(line)["workload"] == "docs"}
        for side in ("train", "eval")
    }  # fmt: skip
    assert not split["train"] & split["eval"]  # a file's pairs are on one side only


def test_nothing_to_ask_is_one_clear_line(tmp_path: Path) -> None:
    done = loragate(tmp_path / "home", "collect", "docs", str(FIXTURE), "--url",
                    "http://127.0.0.1:9/v1")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("loragate: error: nothing answers at http://127.0.0.1:9/v1")


def test_impossible_settings_are_refused_before_anything_is_asked(tmp_path: Path) -> None:
    done = loragate(tmp_path / "home", "collect", "docs", str(FIXTURE), "--concurrency", "0")
    assert done.returncode == 1 and "--concurrency and --max-chunks must be 1 or more" in (
        done.stderr)  # fmt: skip
    unknown = loragate(tmp_path / "home", "collect", "docs", str(FIXTURE), "--strategies", "toc")
    assert unknown.returncode == 1 and "choose from heading, paragraph, fixed" in unknown.stderr
