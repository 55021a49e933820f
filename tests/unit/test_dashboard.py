"""What the dashboard reads: filtered interaction pages, the review queue's order, traffic by
version, and a retrain's progress as a terminal would show it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from gateway.recording.records import FeedbackRecord
from gateway.store import Store
from gateway.ui import charts, queries
from gateway.versions.schedule import Retrainer
from tests.support.databases import Database
from tests.support.recordings import chat, record

NOW = time.time()


async def recorded(db: Database) -> Store:
    """Six chats a minute apart (newest last), three judged, one corrected, one re-asked."""
    chats = [chat(f"ia_{i}{i}", f"question {i}", f"answer {i}", NOW - 600 + 60 * i,
                  workload="agent" if i % 2 else "chat") for i in range(6)]  # fmt: skip
    chats[5] = dataclasses.replace(chats[5], client="Continue", version="m@v1")
    feedback = [
        FeedbackRecord("ia_11", NOW, accepted=False),  # failed
        FeedbackRecord("ia_22", NOW, accepted=True),  # passed
        FeedbackRecord("ia_33", NOW, accepted=False, correction="right answer"),  # corrected
    ]
    await record(db.home, chats, feedback, store_url=db.url)
    store = Store(db.target)
    store.execute(
        "INSERT INTO outcomes (interaction_id, kind, value, source, detail, created_at) "
        "VALUES ('ia_44', 'reasked', 0, 'next_turn', 'ia_55', ?)",
        (NOW,),
    )
    return store


def ids(rows: list[queries.Row]) -> list[str]:
    return [r.id for r in rows]


async def test_interactions_come_newest_first_with_their_judgements(db: Database) -> None:
    store = await recorded(db)
    rows = queries.interactions(store, queries.Filters())
    assert ids(rows) == ["ia_55", "ia_44", "ia_33", "ia_22", "ia_11", "ia_00"]
    by_id = {r.id: r for r in rows}
    assert by_id["ia_33"].corrections == 1
    assert [o["kind"] for o in by_id["ia_11"].outcomes] == ["accepted"]
    assert by_id["ia_11"].asked == "question 1" and by_id["ia_11"].answered == "answer 1"


async def test_filters_narrow_the_list(db: Database) -> None:
    store = await recorded(db)

    def only(**given: str) -> list[str]:
        return ids(queries.interactions(store, queries.Filters(**given), now=NOW))

    assert only(workload="agent") == ["ia_55", "ia_33", "ia_11"]
    assert only(version="m@v1") == only(client="Continue") == ["ia_55"]
    assert only(outcome="failed") == ["ia_33", "ia_11"]  # a rejection, corrected or not
    assert only(outcome="passed") == ["ia_22"]
    assert only(outcome="corrected") == ["ia_33"]
    assert only(outcome="reasked") == ["ia_44"]
    assert only(outcome="unjudged") == ["ia_55", "ia_00"]
    assert only(outcome="judged") == ["ia_44", "ia_33", "ia_22", "ia_11"]
    assert only(since="1h") == only()
    assert only(since="1h", workload="chat", before=f"{NOW - 600 + 60 * 4!r}:ia_44") == [
        "ia_22",
        "ia_00",
    ]


async def test_the_review_queue_offers_failures_then_reasks_then_a_sample(db: Database) -> None:
    store = await recorded(db)
    # ia_33 failed too, but its wanted answer is known: not queued
    assert queries.next_for_review(store) == ("ia_11", "failed")
    skipped = queries.review_cursor("failed", NOW - 600 + 60, "ia_11")
    assert queries.next_for_review(store, after=skipped) == ("ia_44", "reasked")
    after_that = queries.review_cursor("reasked", NOW - 600 + 240, "ia_44")
    assert queries.next_for_review(store, after=after_that) == ("ia_00", "sampled")
    last = queries.review_cursor("sampled", NOW - 600, "ia_00")
    assert queries.next_for_review(store, after=last) is None
    assert queries.queue_size(store, NOW - 3600) == {"failed": 1, "reasked": 1, "sampled": 1}

    store.execute(  # a verdict given in the review queue takes it out
        "INSERT INTO outcomes (interaction_id, kind, value, source, created_at) "
        "VALUES ('ia_11', 'accepted', 1, ?, ?), ('ia_44', 'accepted', 0, ?, ?)",
        (queries.REVIEW_SOURCE, NOW, queries.REVIEW_SOURCE, NOW),
    )
    # the unjudged ones are sampled by id (ia_0… is one in sixteen): ia_00, not ia_55
    assert queries.next_for_review(store) == ("ia_00", "sampled")


async def test_one_interaction_whole(db: Database) -> None:
    store = await recorded(db)
    item = queries.interaction(store, "ia_33")
    assert item is not None
    assert item["request"]["messages"] == [{"role": "user", "content": "question 3"}]
    assert [c["content"] for c in item["corrections"]] == ["right answer"]
    assert queries.interaction(store, "ia_missing") is None


async def test_traffic_is_each_versions_share_per_lane(db: Database) -> None:
    store = await recorded(db)
    traffic = queries.traffic(store, NOW - 3600, 3600.0)
    assert sum(traffic["agent"]["m@v0"].values()) == 2
    assert sum(traffic["agent"]["m@v1"].values()) == 1
    figures = charts.lane_traffic(traffic, ["*", "agent"], (NOW - 3600, NOW), 3600.0)
    assert {t["name"] for t in figures["agent"]["data"]} == {"m@v0", "m@v1"}
    assert [sum(t["y"]) for t in figures["*"]["data"]] == [3]  # chat has no lane: under *
    assert figures["*"]["layout"]["barnorm"] == "percent"


def test_loss_curves_skip_a_line_cut_short(tmp_path: Path) -> None:
    run = tmp_path / "run-1"
    run.mkdir()
    (run / "loss.jsonl").write_text('{"step": 1, "loss": 2.5}\n{"step": 2, "loss": 2.1}\n{"st')
    figure = charts.loss_curves([{"id": "run-1", "path": str(run)}, {"id": "x", "path": "/no"}])
    assert [(t["name"], t["x"], t["y"]) for t in figure["data"]] == [("run-1", [1, 2], [2.5, 2.1])]


def test_retrain_progress_shows_a_redrawn_bar_at_its_latest_state(tmp_path: Path) -> None:
    retrainer = Retrainer(tmp_path)
    assert retrainer.progress() == []
    retrainer.last_log = tmp_path / "retrain.log"
    retrainer.last_log.write_text(
        "# asked from the dashboard\n[1/6] dataset ...\n"
        "training:  10%|#  | 1/10\rtraining:  50%|#####  | 5/10\r"
    )
    assert retrainer.progress() == [
        "# asked from the dashboard",
        "[1/6] dataset ...",
        "training:  50%|#####  | 5/10",
    ]
