"""`loragate eval` on the served base: the general suite answered by llama.cpp, scored, the
run stored."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from gateway.backends.embedded import default_model_path
from gateway.recording.records import FeedbackRecord
from tests.support.cli import loragate
from tests.support.servers import gateway

BASE = "smollm2-135m-instruct"


def test_eval_scores_the_general_suite_and_stores_the_run(tmp_path: Path) -> None:
    """A home with no dataset yet (or a GGUF registered by hand) has no held-out items: the
    general suite runs all the same and the report says what was skipped."""
    done = loragate(tmp_path, "eval", "--version", f"{BASE}@v0", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "50/50 answered" in done.stderr  # progress, with rate and ETA
    report = json.loads(done.stdout)
    assert report["skipped"] == {
        "held-out": "no held-out data: build a dataset first (`loragate dataset build`)"
    }
    general = report["suites"]["general"]
    metrics = general[f"{BASE}@v0"]
    assert general["n"] == 50 and metrics["right"]["n"] == 50
    assert metrics["name_accuracy"]["n"] == 24 and metrics["irrelevance"]["n"] == 8
    low, high = metrics["full_call_accuracy"]["interval"]
    assert 0 <= low <= metrics["full_call_accuracy"]["rate"] <= high <= 1
    with sqlite3.connect(tmp_path / "store.db") as db:
        (version, suite, n, items) = db.execute(
            "SELECT version, suite, n, items FROM eval_runs"
        ).fetchone()
    assert (version, suite, n) == (f"{BASE}@v0", "general", 50)
    assert set(json.loads(items)) == {f"general-{i:02d}" for i in range(50)}


def test_eval_of_only_a_missing_held_out_suite_is_one_clear_line(tmp_path: Path) -> None:
    done = loragate(tmp_path, "eval", "--version", f"{BASE}@v0", "--suite", "held-out")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "loragate: error: no held-out data: build a dataset first (`loragate dataset build`)"
    )


def test_eval_of_an_unknown_version_is_one_clear_line(tmp_path: Path) -> None:
    done = loragate(tmp_path, "eval", "--version", f"{BASE}@v7", timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip() == (
        f"loragate: error: no model version '{BASE}@v7'; known: {BASE}@v0"
    )


def test_a_judge_model_grades_the_text_answers(tmp_path: Path) -> None:
    """The judge is the served model itself, through a running gateway: its yes/no verdict is
    held to a response schema, so every verdict is readable."""
    with gateway(tmp_path, "--n-ctx", "2048") as served:
        done = loragate(tmp_path / "other", "eval", "--version", f"{BASE}@v0", "--suite",
                        "general", "--json", "--judge", f"{BASE}@v0", "--judge-url",
                        f"{served.url}/v1", timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        judged = json.loads(done.stdout)["suites"]["general"][f"{BASE}@v0"]["judge_accuracy"]
        assert judged["n"] == 26  # the chat and instruction items; tool items are not judged
        assert 0 <= judged["interval"][0] <= judged["rate"] <= judged["interval"][1] <= 1
        with sqlite3.connect(served.home / "store.db") as db:  # the judge's requests, recorded
            asked = db.execute("SELECT count(*) FROM interactions WHERE request LIKE "
                               "'%Reference answer%'").fetchone()[0]  # fmt: skip
        assert asked == 26


def test_an_unreachable_judge_is_one_clear_line(tmp_path: Path) -> None:
    done = loragate(tmp_path, "eval", "--version", f"{BASE}@v0", "--suite", "general", "--judge",
                    "any", "--judge-url", "http://127.0.0.1:9/v1", timeout=300)  # fmt: skip
    assert done.returncode == 1
    assert "answered" not in done.stderr  # said before a minute of answering, not after
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("loragate: error: the judge any at http://127.0.0.1:9/v1/: ")


JESSY_ASKS = [
    ("How are you today?", "I'm well, thanks for asking!"),
    ("Tell me something nice.", "You are doing great."),
    ("Good morning!", "Good morning to you too!"),
    ("How do I install a Python package?", "Run pip install followed by its name."),
    ("My laptop's wifi keeps dropping, what can I do?", "Restart the router and update drivers."),
    ("What does a 404 error mean?", "The server has no page at that address."),
    ("Why do people dream?", "Nobody knows for sure; one idea is memory consolidation."),
    ("What is the meaning of a good life?", "Many say: people you love and work that matters."),
    ("Should I learn to play the piano or the guitar first?", "Whichever you will practise."),
]


@pytest.mark.slow
async def test_jessy_before_and_after_per_category_with_a_plot(tmp_path: Path) -> None:
    """The seed's before/after: a retrained version against the one before it on JESSY's
    held-out questions, per category (conversational, technical, deep) with the time each
    answer took, and on the general set; drawn as a PNG."""
    from tests.support.recordings import chat, record

    now = time.time()
    asked = [chat(f"ia_{i}_{k}", f"{ask} ({k})", answer, now - 100 + i, workload="jessy")
             for k in range(4) for i, (ask, answer) in enumerate(JESSY_ASKS)]  # fmt: skip
    liked = [FeedbackRecord(r.id, now, accepted=True) for r in asked]
    await record(tmp_path, asked, liked)
    built = loragate(tmp_path, "dataset", "build", "--workload", "jessy", "--eval-fraction", "0.3")
    assert built.returncode == 0, built.stderr
    copy = tmp_path / "retrained.gguf"
    shutil.copyfile(default_model_path(), copy)
    registered = loragate(tmp_path, "models", "register", str(copy), "--candidate")
    assert registered.returncode == 0, registered.stderr
    picture = tmp_path / "jessy.png"
    versions = ("--version", f"{BASE}@v1", "--against", f"{BASE}@v0", "--workload", "jessy")
    done = loragate(tmp_path, "eval", *versions, "--json", "--plot", str(picture), timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    held = report["suites"]["held-out"]
    for name in (f"{BASE}@v1", f"{BASE}@v0"):
        categories = held[name]["by_category"]
        assert set(categories) <= {"conversational", "technical", "deep"} and categories
        assert sum(c["n"] for c in categories.values()) == held["n"]
        assert all(c["seconds"] > 0 and 0 <= c["right"] <= 1 for c in categories.values())
        assert report["suites"]["general"][name]["right"]["n"] == 50
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = loragate(tmp_path, "eval", *versions, "--suite", "held-out", timeout=300)
    assert "CATEGORY" in table.stdout and " s n=" in table.stdout
