"""The LibCST repair agent's work becomes training data: a real repair loop (the fixture agent,
the `openai` SDK, libcst) runs through the gateway, `loragate collect libcst` joins its
success memory to the recorded answers, and the dataset holds repair pairs, scaffolding
examples and the failed attempts as negatives, and trains."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import openai
import pytest

from tests.support.cli import loragate
from tests.support.libcst_agent import Issue, RepairAgent, rename_script, script_writer
from tests.support.lora_server import lora_server
from tests.support.servers import gateway
from tests.support.waiting import wait_until
from trainer.data.libcst_scripts import target_source

ISSUES = [Issue(f"ISSUE-{n}", f"mod{n}.py", f"load_{n}", f"read_{n}") for n in range(1, 8)]
# ISSUE-2 and ISSUE-5 succeed at once, ISSUE-6 never does, the others after one repair
REQUESTS = 2 * 1 + 4 * 2 + 3


def make_project(root: Path) -> Path:
    for issue in ISSUES:
        (root / issue.file).write_text(
            f"def {issue.old}(path):\n    return open(path).read()\n\n\n"
            f"value = {issue.old}('settings.ini')\n",
            encoding="utf-8",
        )
    return root


def rows(home: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(home / "store.db") as db:
        return db.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def worked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A project the agent worked on through the gateway, and the gateway's home."""
    tmp = tmp_path_factory.mktemp("libcst")
    (tmp / "project").mkdir()
    project = make_project(tmp / "project")
    with (
        lora_server("coder", runtime_lora=False, writer=script_writer) as upstream,
        gateway(tmp, "--backend", "openai", "--upstream", upstream.url, "--model", "coder") as gw,
    ):
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="local", max_retries=0)
        agent = RepairAgent(client, project, model="coder")
        fixed = [agent.fix(issue) for issue in ISSUES]
        assert fixed == [True, True, True, True, True, False, True]
        wait_until(
            lambda: rows(gw.home, "SELECT count(*) FROM interactions")[0][0] == REQUESTS,
            timeout=30, what="every request recorded",
        )  # fmt: skip
        home = gw.home
    # what the user did by hand: a script of their own, a line whose script is gone, a torn line
    manual = project / ".autopatches" / "manual"
    manual.mkdir(parents=True)
    script = rename_script("helper", "assist")
    (manual / "transform.py").write_text(script, encoding="utf-8")
    broken = project / ".autopatches" / "broken"
    broken.mkdir()
    (broken / "transform.py").write_text("import libcst as cst\nclass Fix(:\n", encoding="utf-8")
    memory = project / ".agent_data" / "success_memory.jsonl"
    extra = [
        {"spec_issue_description": "Rename helper to assist.", "spec_target_files": ["util.py"],
         "successful_script_hash": hashlib.md5(script.strip().encode()).hexdigest(),
         "patch_source": "manual", "timestamp_utc": "2026-11-26T08:00:00+00:00"},
        {"spec_issue_description": "Fix the broken thing.", "spec_target_files": ["x.py"],
         "successful_script_hash": hashlib.sha256(b"import libcst as cst\nclass Fix(:\n")
         .hexdigest(), "patch_source": "manual"},
        {"spec_issue_description": "Lost.", "successful_script_hash": "0" * 64},
    ]  # fmt: skip
    with memory.open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(line) + "\n" for line in extra)
        fh.write('{"spec_issue_description": "torn\n')
    return project, home


def test_collect_joins_the_memory_to_what_the_gateway_recorded(worked: tuple[Path, Path]) -> None:
    project, home = worked
    done = loragate(home, "collect", "libcst", str(project))
    assert done.returncode == 0, done.stderr
    said = done.stdout
    assert "read 10 new lines" in said
    assert "6 scripts written by a recorded answer" in said
    assert "(marked a success; 4 earlier failed attempts marked)" in said
    assert "2 found only in .autopatches/, 1 found nowhere" in said
    assert "[matched 7 by sha256 of the script as written; 1 by md5 of the stripped script]" in said
    assert "8 scaffolding examples added" in said and "1 corrupt" in said

    statuses = dict(rows(home, "SELECT status, count(*) FROM agent_memory GROUP BY status"))
    assert statuses == {"joined": 6, "script_only": 2, "missing": 1}
    [(reason,)] = rows(home, "SELECT reason FROM agent_memory WHERE status = 'missing'")
    assert "0" * 64 in reason and ".autopatches/" in reason
    accepted = rows(home, "SELECT count(*) FROM outcomes WHERE source = 'libcst_agent' "
                    "AND kind = 'accepted' AND interaction_id NOT LIKE 'memory-%'")  # fmt: skip
    failed = rows(home, "SELECT count(*) FROM outcomes WHERE source = 'libcst_agent' "
                  "AND kind = 'validated' AND value = 0")  # fmt: skip
    assert accepted == [(6,)] and failed == [(4,)]
    workloads = rows(home, "SELECT DISTINCT workload FROM interactions WHERE api <> 'collector'")
    assert workloads == [("libcst",)]  # known by its prompts: the agent asked for model `coder`

    again = loragate(home, "collect", "libcst", str(project))
    assert again.returncode == 0 and again.stdout.startswith("nothing new"), again.stdout
    assert rows(home, "SELECT count(*) FROM agent_memory") == [(9,)]


def test_the_dataset_has_repair_pairs_scaffolding_and_negatives_and_trains(
    worked: tuple[Path, Path], smollm2_base: Path
) -> None:
    project, home = worked
    loragate(home, "collect", "libcst", str(project))  # a no-op when the test above ran
    built = loragate(home, "dataset", "build", "--workload", "libcst", "--eval-fraction", "0.2")
    assert built.returncode == 0, built.stderr
    [folder] = (home / "datasets").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["libcst"] == {"repair_pairs": 4, "scaffolding": 7}
    [invalid] = manifest["filters"]["invalid"]
    assert "the script does not parse" in invalid["problem"]
    negatives = [json.loads(line) for line in (folder / "negatives.jsonl").open()]
    assert len(negatives) == 4 and all("Traceback" not in n["rejected"]["content"]
                                       for n in negatives)  # fmt: skip

    trained = loragate(home, "train", "--dataset", manifest["hash"], "--base", str(smollm2_base),
                       "--max-steps", "2")  # fmt: skip
    assert trained.returncode == 0, trained.stderr


def test_a_retrained_version_is_scored_on_held_out_repairs(worked: tuple[Path, Path]) -> None:
    """`eval --workload libcst`: does the script parse, run on the file, make the change."""
    project, home = worked
    loragate(home, "collect", "libcst", str(project))
    done = loragate(home, "retrain", "--workload", "libcst", "--max-steps", "2", "--no-gate")
    assert done.returncode == 0, done.stderr
    versions = loragate(home, "models", "--json")
    names = [v["name"] for v in json.loads(versions.stdout)]
    base, candidate = names[0], names[-1]
    scored = loragate(home, "eval", "--version", candidate, "--against", base, "--workload",
                      "libcst", "--suite", "held-out")  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    # every held-out answer is parsed; those whose prompt quotes the file are also run on it
    held_out = [json.loads(line) for line in next((home / "datasets").glob(
        f"{json.loads(versions.stdout)[-1]['dataset_hash']}*/eval.jsonl")).open()]  # fmt: skip
    quoting = [i for i in held_out if target_source(i["messages"][: i["targets"][-1]])]
    assert "script_parse_rate" in scored.stdout
    for metric in ("script_applies_rate", "same_change_rate"):
        assert (metric in scored.stdout) == bool(quoting)


def test_serve_follows_the_memory_of_a_configured_project(tmp_path: Path) -> None:
    """With LORAGATE_COLLECT_LIBCST set, a success is joined while the gateway serves: the
    answer it names is written first, then marked."""
    (tmp_path / "project").mkdir()
    project = make_project(tmp_path / "project")
    (project / ".agent_data").mkdir()
    env = {"LORAGATE_COLLECT_LIBCST": str(project)}
    with (
        lora_server("coder", runtime_lora=False, writer=script_writer) as upstream,
        gateway(tmp_path, "--backend", "openai", "--upstream", upstream.url, "--model", "coder",
                env=env) as gw,
    ):  # fmt: skip
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="local", max_retries=0)
        assert RepairAgent(client, project, model="coder").fix(ISSUES[0])  # after one repair
        joined = wait_until(
            lambda: rows(gw.home, "SELECT status FROM agent_memory"), timeout=30,
            what="the memory line joined",
        )  # fmt: skip
        assert joined == [("joined",)]
        marks = rows(gw.home, "SELECT kind, value FROM outcomes WHERE source = 'libcst_agent' "
                     "AND interaction_id NOT LIKE 'memory-%' ORDER BY value")  # fmt: skip
        assert marks == [("validated", 0.0), ("accepted", 1.0)]
    assert "following the LibCST agent's memory" in gw.output()
