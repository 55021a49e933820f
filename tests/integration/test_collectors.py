"""Collectors at work beside a serving gateway: what clients write to their own files
reaches the recorded answers it is about."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import openai

from tests.support.servers import gateway
from tests.support.waiting import wait_until
from tests.unit.test_continue_devdata import append, line


def outcomes(home: Path, interaction_id: str) -> list[tuple]:
    with sqlite3.connect(home / "store.db") as db:
        return db.execute(
            "SELECT kind, value, source FROM outcomes WHERE interaction_id = ?", (interaction_id,)
        ).fetchall()


def test_serve_follows_continues_dev_data_as_it_is_written(tmp_path: Path) -> None:
    root = tmp_path / "continue"
    folder = root / "dev_data" / "0.2.0"
    folder.mkdir(parents=True)
    append(folder / "autocomplete.jsonl", "written before the gateway started, corrupt\n")
    env = {"CONTINUE_GLOBAL_DIR": str(root), "LORAGATE_COLLECT_CONTINUE": "true"}
    with gateway(tmp_path, "--n-ctx", "1024", env=env) as served:
        assert served.home is not None
        client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="none", max_retries=0)
        raw = client.completions.with_raw_response.create(
            model="autocomplete", prompt="def add(a, b):\n    return", max_tokens=6, temperature=0
        )
        completion = raw.parse().choices[0].text
        iid = raw.headers["x-loragate-interaction-id"]
        # Continue writes the event a moment later, in two writes
        event = line("autocomplete", accepted=True, completion=completion, completionId="c1")
        append(folder / "autocomplete.jsonl", event[:30])
        append(folder / "autocomplete.jsonl", event[30:])
        found = wait_until(lambda: outcomes(served.home, iid), timeout=20,
                           what="the accepted autocomplete recorded")  # fmt: skip
        assert found == [("accepted", 1.0, "continue.autocomplete")]
        assert "following Continue's dev data in" in served.output()
    with sqlite3.connect(served.home / "store.db") as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM collected_lines GROUP BY status"))
    assert statuses == {"corrupt": 1, "joined": 1}
