"""LibCST scripts as data and as answers: what is fit to learn, how an answer is scored, and
how the collector finds a script by the hash an agent wrote down."""

from __future__ import annotations

import hashlib

from collectors.libcst_agent import Found, ScriptIndex
from gateway.generation import Assembled
from tests.support.libcst_agent import Issue, ask, rename_script
from trainer.data.libcst_scripts import is_repair, script_problem
from trainer.evaluation.items import Item
from trainer.evaluation.scoring import ScriptScore, score_items, score_script

SOURCE = "def load(path):\n    return open(path).read()\n\n\nvalue = load('a.ini')\n"
GOOD = f"Here it is:\n```python\n{rename_script('load', 'read_config')}```"


def item(prompt_source: str | None = SOURCE) -> Item:
    issue = Issue("ISSUE-1", "app.py", "load", "read_config")
    question = ask(issue, prompt_source) if prompt_source else issue.description
    return Item("x", [{"role": "user", "content": question}],
                {"role": "assistant", "content": GOOD}, [], workload="libcst")  # fmt: skip


def test_a_script_is_learned_only_if_it_parses_and_defines_a_transformer() -> None:
    assert script_problem(GOOD) is None
    assert script_problem("no code here") == "the answer carries no script"
    assert "does not parse" in (script_problem("```python\nclass Fix(:\n```") or "")
    assert "no LibCST transformer" in (script_problem("```python\nimport libcst\nx = 1\n```") or "")


def test_an_answer_scores_by_parsing_running_and_making_the_same_change() -> None:
    assert score_script(item(), GOOD) == ScriptScore(parses=True, applies=True, same_change=True)
    crashes = f"```python\n{rename_script('load', 'read_config', mistake='keyword')}```"
    assert score_script(item(), crashes) == ScriptScore(True, applies=False, same_change=False)
    other = f"```python\n{rename_script('load', 'fetch')}```"
    assert score_script(item(), other) == ScriptScore(True, applies=True, same_change=False)
    broken = "```python\nclass Fix(:\n```"
    assert score_script(item(), broken) == ScriptScore(False, applies=False, same_change=False)
    # a scaffolding prompt quotes no file: only parsing is scored
    assert score_script(item(None), GOOD) == ScriptScore(True, applies=None, same_change=None)


def test_the_suite_counts_scripts_apart_from_text() -> None:
    metrics, scores = score_items([item(), item(None)], [Assembled(text=GOOD), Assembled(text="")])
    assert metrics["script_parse_rate"]["rate"] == 0.5
    assert metrics["same_change_rate"]["rate"] == 1.0 and metrics["same_change_rate"]["n"] == 1
    assert scores == [1.0, 0.0]


def test_a_repair_is_an_answer_after_a_traceback() -> None:
    messages = [{"role": "user", "content": "fix"}, {"role": "assistant", "content": "a"},
                {"role": "user", "content": "Traceback (most recent call last):\n..."},
                {"role": "assistant", "content": "b"}]  # fmt: skip
    assert is_repair(messages, 3) and not is_repair(messages, 1)


def test_scripts_are_found_by_any_common_hash_whole_or_shortened() -> None:
    script = "import libcst as cst\n"
    index = ScriptIndex()
    index.add(Found(script, "interaction a", "", "a"), replace=True)
    sha = hashlib.sha256(script.encode()).hexdigest()
    md5 = hashlib.md5(script.strip().encode()).hexdigest()
    found = index.find(f"sha256:{sha}")
    assert found is not None and found.method == "sha256 of the script as written"
    assert (index.find(md5.upper()) or found).method == "md5 of the stripped script"
    assert index.find(sha[:12]) == found
    assert index.find(sha[:6]) is None  # too short to be taken for a hash


def test_serve_refuses_a_libcst_project_without_the_agents_memory(tmp_path) -> None:
    import pytest

    from gateway.cli.serve import _collectors
    from gateway.config import load_settings
    from gateway.errors import ConfigError

    settings = load_settings({"home": tmp_path / "home", "collect_libcst": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"no \.agent_data/ in .* \(LORAGATE_COLLECT_LIBCST\)"):
        _collectors(settings)
