"""`loragate bench flywheel`, reduced: the real Continue CLI works day-one tasks in the fixture
project through the gateway, the scripted developer's corrections are recorded as structured
corrections, `loragate retrain` trains on them, and day two is answered by the base and the
new version. The figures are the benchmark's to print; this run checks that the loop runs on a
real client's traffic end to end, what it writes, and that nothing of day two is trained on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.flywheel_tasks import DAY_ONE, DAY_TWO, take

pytestmark = pytest.mark.slow

BASE = "smollm2-135m-instruct"
KEYS = ("right_tool", "full_call", "valid_json", "no_call")


@pytest.mark.timeout(1500)
def test_a_corrected_day_of_cn_work_is_trained_on_and_day_two_is_measured(tmp_path: Path) -> None:
    out, recorded = tmp_path / "report", tmp_path / "day-one"
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "flywheel", "--day-one", "8",
         "--day-two", "7", "--out", str(out), "--record", str(recorded), "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=1400, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((out / "flywheel.json").read_text())
    assert (out / "flywheel.png").read_bytes().startswith(b"\x89PNG")

    # day one: every first step judged, through structured corrections where it was wrong
    day_one = report["day_one"]
    assert day_one["tasks"] == 8 and day_one["accepted"] + day_one["corrected"] == 8
    corrections = _query(recorded, "SELECT content FROM corrections")
    assert len(corrections) == day_one["corrected"]
    wanted = {f'"name": "{t.tool}"' for t in take(DAY_ONE, 8) if t.tool}
    assert any(name in c for c in corrections for name in wanted)

    # day two on both versions, every figure with its interval; the new one was retrained
    version = report["version"]
    assert version == f"{BASE}@v1"
    assert list(report["day_two"]) == [f"{BASE}@v0", version]
    for rates in report["day_two"].values():
        for key in KEYS:
            assert set(rates[key]) == {"rate", "n", "interval"}
        assert rates["right_tool"]["n"] + rates["no_call"]["n"] == 7
    for name, steps in report["steps"].items():
        assert [s["prompt"] for s in steps] == [t.prompt for t in take(DAY_TWO, 7)], name
    assert report["seconds"]["retrain"] > 0 and "train" in report["retrain_stages_s"]
    for line in ("day two on", "right_tool", "no_call", "general set:", "gate:", "time:"):
        assert line in run.stdout

    # nothing of day two reached the dataset the version was trained on
    trained = "".join(p.read_text() for p in (tmp_path.glob("bench-flywheel-*/home/datasets/*/"
                                                            "train.jsonl")))  # fmt: skip
    assert trained and all(t.prompt not in trained for t in DAY_TWO)

    # the quick check between full runs: day two answered without cn, as cn asked day one
    home = next(tmp_path.glob("bench-flywheel-*/home"))
    offline = tmp_path / "offline.json"
    quick = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "flywheel_offline", str(home), version,
         "--day-two", "7", "--json", str(offline)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert quick.returncode == 0, quick.stdout[-3000:] + quick.stderr[-3000:]
    rates = json.loads(offline.read_text())["day_two"][version]
    assert rates["right_tool"]["n"] + rates["no_call"]["n"] == 7
    prompts = {t.prompt for t in take(DAY_TWO, 7)}
    assert all(miss["prompt"] in prompts for miss in rates["missed"])
    assert f"day two offline on {version}" in quick.stdout


def _query(home: Path, sql: str) -> list[str]:
    import sqlite3

    with sqlite3.connect(home / "store.db") as db:
        return [row[0] for row in db.execute(sql)]
