"""Every exchange through the gateway is recorded: whole answers, streams, aborted streams,
feedback; and nothing accepted is lost when the process is killed or stopped under load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from tests.support.databases import Database, fresh_database
from tests.support.servers import REPO, Server, free_port, gateway, running
from tests.support.tools import READ
from tests.support.waiting import wait_until


def query(server: Server, sql: str, *args: object) -> list[tuple]:
    assert server.home is not None
    conn = sqlite3.connect(server.home / "store.db")
    try:
        return [tuple(row) for row in conn.execute(sql, args)]
    finally:
        conn.close()


def flushed(server: Server, interaction_id: str, timeout: float = 10) -> tuple:
    sql = ("SELECT status, finish_reason, response_text, request, workload, version, client, "
           "prompt_tokens FROM interactions WHERE id = ?")  # fmt: skip
    found = wait_until(lambda: query(server, sql, interaction_id), timeout=timeout,
                       what=f"{interaction_id} recorded")  # fmt: skip
    return found[0]


@pytest.fixture
def client(embedded: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=embedded.url + "/v1", api_key="unused", max_retries=0)


def test_an_answer_is_recorded_with_its_request(client: openai.OpenAI, embedded: Server) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="byllm", messages=[{"role": "user", "content": "What is 2+2?"}], max_tokens=8
    )
    iid = raw.headers["x-loragate-interaction-id"]
    status, finish, text, request, workload, version, agent, prompt = flushed(embedded, iid)
    assert (status, finish, workload, version) == (
        "complete",
        raw.parse().choices[0].finish_reason,
        "jac",  # `byllm` names Jac's workload
        "smollm2-135m-instruct@v0",
    )
    assert text == raw.parse().choices[0].message.content and prompt > 0
    assert json.loads(request)["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert agent.startswith("OpenAI/Python")


def test_an_abandoned_stream_is_kept_and_marked(client: openai.OpenAI, embedded: Server) -> None:
    stream = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "Write a long essay about rivers."}],
        max_tokens=2000,
        stream=True,
    )
    iid = stream.headers["x-loragate-interaction-id"]
    chunks = stream.parse()
    for _, _chunk in zip(range(4), chunks, strict=False):
        pass
    chunks.close()
    status, finish, text, *_ = flushed(embedded, iid)
    assert status == "aborted" and finish is None and text


ESSAY = "Write a very long essay about the sea."  # at temperature 0: 3,000 tokens, ~25 s


def abandoned(server: Server, marker: str, timeout: float = 10) -> tuple:
    """(status, completion tokens, latency in s) of the request whose prompt has `marker`."""
    sql = "SELECT status, completion_tokens, latency_ms FROM interactions WHERE request LIKE ?"
    found = wait_until(lambda: query(server, sql, f"%{marker}%"), timeout=timeout,
                       what=f"a record of {marker}")  # fmt: skip
    status, tokens, latency = found[0]
    return status, tokens, latency / 1000


def test_a_whole_answer_abandoned_by_its_client_stops_and_is_kept(embedded: Server) -> None:
    """A client that gives up on a non-streaming request (a timeout, a killed program) no
    longer leaves the engine generating for it: the next request is served at once."""
    impatient = openai.OpenAI(base_url=embedded.url + "/v1", api_key="none", max_retries=0,
                              timeout=2)  # fmt: skip
    marker = f"[{time.time_ns()}]"
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(
            model="auto", max_tokens=3000, temperature=0,
            messages=[{"role": "user", "content": f"{ESSAY} {marker}"}],
        )  # fmt: skip
    started = time.monotonic()
    openai.OpenAI(base_url=embedded.url + "/v1", api_key="none").chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    waited = time.monotonic() - started
    status, tokens, latency = abandoned(embedded, marker)
    assert status == "aborted"
    assert latency < 4 and waited < 4, (latency, waited)
    assert tokens is None or tokens < 3000


def test_an_ollama_client_that_gives_up_stops_the_generation(embedded: Server) -> None:
    marker = f"[{time.time_ns()}]"
    with pytest.raises(httpx.TimeoutException):
        ollama.Client(host=embedded.url, timeout=2).chat(
            model="auto", options={"num_predict": 3000, "temperature": 0},
            messages=[{"role": "user", "content": f"{ESSAY} {marker}"}],
        )  # fmt: skip
    status, _, latency = abandoned(embedded, marker)
    assert status == "aborted" and latency < 4


def status_of(server: Server, marker: str) -> list[str]:
    return [row[0] for row in query(server, "SELECT status FROM interactions WHERE request "
                                    "LIKE ?", f"%{marker}%")]  # fmt: skip


def test_sigterm_lets_a_generation_finish_within_the_grace_then_stops_it_and_keeps_all(
    tmp_path: Path,
) -> None:
    with gateway(tmp_path, env={"LORAGATE_SHUTDOWN_GRACE": "2"}) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
        short = client.chat.completions.with_raw_response.create(
            model="auto", max_tokens=3, messages=[{"role": "user", "content": "Hi"}]
        )
        marker = f"[{time.time_ns()}]"
        with ThreadPoolExecutor(1) as pool:
            essay = pool.submit(
                client.chat.completions.create, model="auto", max_tokens=3000, temperature=0,
                messages=[{"role": "user", "content": f"{ESSAY} {marker}"}],
            )  # fmt: skip
            time.sleep(1)  # generating: ~25 s to go
            server.process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            time.sleep(0.3)
            with pytest.raises(openai.APIStatusError) as refused:
                client.chat.completions.create(
                    model="auto", max_tokens=3, messages=[{"role": "user", "content": "Hi"}]
                )
            assert refused.value.status_code == 503
            assert refused.value.body["code"] == "shutting_down"
            assert httpx.get(server.url + "/healthz").json()["status"] == "stopping"
            assert server.process.wait(timeout=15) == 0
            took = time.monotonic() - stopped
            with pytest.raises(openai.APIError):
                essay.result()
    assert 2 <= took < 2 + 2, took  # the grace, then at most 2 s to stop
    assert status_of(server, marker) == ["aborted"]
    stored = query(server, "SELECT status FROM interactions WHERE id = ?",
                   short.headers["x-loragate-interaction-id"])  # fmt: skip
    assert stored == [("complete",)]
    assert "stopping: 1 request(s) get up to 2 s to finish" in server.output()


def test_a_second_signal_exits_at_once_and_what_was_accepted_is_kept(tmp_path: Path) -> None:
    with gateway(tmp_path, env={"LORAGATE_SHUTDOWN_GRACE": "60"}) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
        answered = [
            client.chat.completions.with_raw_response.create(
                model="auto", max_tokens=2, messages=[{"role": "user", "content": f"Hi {i}"}]
            ).headers["x-loragate-interaction-id"]
            for i in range(5)
        ]
        with ThreadPoolExecutor(1) as pool:
            essay = pool.submit(
                client.chat.completions.create, model="auto", max_tokens=3000, temperature=0,
                messages=[{"role": "user", "content": ESSAY}],
            )  # fmt: skip
            time.sleep(1)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            assert server.process.wait(timeout=10) == 1
            assert time.monotonic() - stopped < 2  # not the 60 s of grace
            with pytest.raises(openai.APIError):
                essay.result()
        assert "second signal: exiting now" in server.output()
    with gateway(tmp_path) as again:  # the next start replays whatever was journaled
        rows = query(again, f"SELECT id FROM interactions WHERE id IN ({','.join('?' * 5)})",
                     *answered)  # fmt: skip
    assert sorted(r[0] for r in rows) == sorted(answered)


def test_feedback_is_joined_to_its_interaction(client: openai.OpenAI, embedded: Server) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=5
    )
    iid = raw.headers["x-loragate-interaction-id"]
    reply = httpx.post(
        embedded.url + "/v1/feedback",
        json={
            "interaction_id": iid,
            "accepted": False,
            "correction": "Apple.",
            "comment": "too long",
        },
    )
    assert reply.status_code == 200 and reply.json()["status"] == "recorded"
    wait_until(
        lambda: query(embedded, "SELECT 1 FROM corrections WHERE interaction_id = ?", iid),
        timeout=10,
    )
    assert query(embedded, "SELECT content FROM corrections WHERE interaction_id = ?", iid) == [
        ("Apple.",)
    ]
    kinds = query(
        embedded, "SELECT kind, value FROM outcomes WHERE interaction_id = ? ORDER BY kind", iid
    )
    assert kinds == [("accepted", 0.0), ("comment", 0.0)]


def test_a_tool_call_correction_is_checked_against_the_request_and_stored(
    client: openai.OpenAI, embedded: Server
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="continue", messages=[{"role": "user", "content": "Show me src/app.py"}],
        tools=[READ], max_tokens=5,
    )  # fmt: skip
    iid = raw.headers["x-loragate-interaction-id"]
    wanted = {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_x", "type": "function",
        "function": {"name": "read_file", "arguments": '{"path": "src/app.py"}'}}]}  # fmt: skip
    reply = httpx.post(embedded.url + "/v1/feedback",
                       json={"interaction_id": iid, "correction": wanted})  # fmt: skip
    assert reply.status_code == 200
    for problem, call in (
        ("unknown tool 'Write'", {"name": "Write", "arguments": {}}),
        ("missing required path", {"name": "read_file", "arguments": {}}),
        ("not JSON", {"name": "read_file", "arguments": "{path"}),
    ):
        refused = httpx.post(embedded.url + "/v1/feedback", json={
            "interaction_id": iid, "correction": {"tool_calls": [{"function": call}]}})  # fmt: skip
        error = refused.json()["error"]
        assert refused.status_code == 400 and error["param"] == "correction"
        assert error["code"] == "invalid_correction" and error["type"] == "invalid_request_error"
        assert problem in error["message"]
    sql = "SELECT content FROM corrections WHERE interaction_id = ?"
    stored = wait_until(lambda: query(embedded, sql, iid), timeout=10)
    assert stored == [('<tool_call>\n{"name": "read_file", "arguments": {"path":"src/app.py"}}'
                       "\n</tool_call>",)]  # fmt: skip


def test_feedback_for_an_unknown_interaction_or_without_content_is_refused(
    embedded: Server,
) -> None:
    unknown = httpx.post(
        embedded.url + "/v1/feedback", json={"interaction_id": "ia_nope", "accepted": True}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "interaction_not_found"
    empty = httpx.post(embedded.url + "/v1/feedback", json={"interaction_id": "ia_nope"})
    assert empty.status_code == 400


@pytest.fixture
def instant_upstream(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, str(REPO / "tests" / "support" / "instant_upstream.py"), str(port)]
    with running(argv, port=port, log=tmp_path / "upstream.log", ready_path="/v1/models"):
        yield f"http://127.0.0.1:{port}/v1"


async def _load(url: str, seconds: float, concurrency: int) -> list[tuple[str, float]]:
    """Send chat requests until `seconds` pass; returns (interaction id, time answered)."""
    answered: list[tuple[str, float]] = []
    body = {"model": "instant", "messages": [{"role": "user", "content": "hi"}]}
    end = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=10) as http:

        async def worker() -> None:
            while time.monotonic() < end:
                try:
                    reply = await http.post(url + "/v1/chat/completions", json=body)
                except httpx.HTTPError:
                    return  # the gateway was killed
                if reply.status_code == 200:
                    answered.append((reply.headers["x-loragate-interaction-id"], time.time()))

        await asyncio.gather(*[worker() for _ in range(concurrency)])
    return answered


@pytest.mark.slow
async def test_every_request_is_recorded_exactly_once(
    tmp_path: Path, instant_upstream: str
) -> None:
    with gateway(tmp_path, "--backend", "openai", "--upstream", instant_upstream) as server:
        answered = await _load(server.url, seconds=3, concurrency=16)
    # The context manager stopped the gateway with SIGTERM: the queue was drained first.
    ids = {iid for iid, _ in answered}
    stored = query(
        server,
        "SELECT id FROM interactions WHERE status = 'complete' "
        "AND response_text = 'ok' AND request LIKE '%hi%'",
    )
    # every answered request, whatever this machine's speed (hundreds here)
    assert len(answered) > 50 and {row[0] for row in stored} == ids


@pytest.mark.slow
async def test_kill_9_under_load_loses_at_most_the_last_200_ms(
    tmp_path: Path, instant_upstream: str
) -> None:
    args = ("--backend", "openai", "--upstream", instant_upstream)
    with gateway(tmp_path, *args) as server:
        load = asyncio.create_task(_load(server.url, seconds=10, concurrency=16))
        await asyncio.sleep(2.5)
        killed_at = time.time()
        os.kill(server.process.pid, signal.SIGKILL)
        answered = await load
    with gateway(tmp_path, *args) as restarted:  # same home: the store opens and migrates
        stored = {row[0] for row in query(restarted, "SELECT id FROM interactions")}
        assert query(restarted, "PRAGMA integrity_check") == [("ok",)]
    settled = {iid for iid, at in answered if at < killed_at - 0.2}
    assert len(settled) > 50
    assert settled <= stored, f"{len(settled - stored)} settled interactions lost"


def test_continue_dev_data_destination_accepts_events(
    client: openai.OpenAI, embedded: Server
) -> None:
    raw = client.completions.with_raw_response.create(
        model="autocomplete", prompt="def add(a, b):\n    return", max_tokens=6, temperature=0
    )
    completion = raw.parse().choices[0].text
    flushed(embedded, raw.headers["x-loragate-interaction-id"])
    event = {
        "name": "autocomplete",
        "schema": "0.2.0",
        "level": "all",
        "profileId": "local",
        "data": {"accepted": True, "completion": completion, "completionId": "c1"},
    }
    reply = httpx.post(embedded.url + "/devdata", json=event)
    assert reply.json() == {"status": "recorded", "name": "autocomplete"}
    iid = raw.headers["x-loragate-interaction-id"]
    wait_until(
        lambda: query(embedded, "SELECT 1 FROM outcomes WHERE interaction_id = ?", iid), timeout=10
    )
    assert query(
        embedded, "SELECT kind, value, source FROM outcomes WHERE interaction_id = ?", iid
    ) == [("accepted", 1.0, "continue.autocomplete")]
    other = httpx.post(embedded.url + "/devdata", json={**event, "name": "tokensGenerated"})
    assert other.json()["status"] == "ignored"
    assert httpx.post(embedded.url + "/devdata", json={"name": "x"}).status_code == 400


@pytest.mark.slow
async def test_postgresql_keeps_every_request_too(
    tmp_path: Path, instant_upstream: str, postgres: str
) -> None:
    db = Database(tmp_path, fresh_database(postgres))
    args = ("--backend", "openai", "--upstream", instant_upstream)
    with gateway(tmp_path, *args, env={"LORAGATE_STORE_URL": str(db.url)}) as server:
        answered = await _load(server.url, seconds=2, concurrency=16)
    ids = {iid for iid, _ in answered}
    stored = db.rows("SELECT id FROM interactions WHERE status = 'complete'")
    assert len(answered) > 50 and {row[0] for row in stored} == ids


async def test_an_unreachable_database_is_journaled_and_caught_up_later(
    tmp_path: Path, instant_upstream: str, postgres: str
) -> None:
    args = ("--backend", "openai", "--upstream", instant_upstream)
    nowhere = f"postgresql://loragate@127.0.0.1:{free_port()}/loragate"
    with gateway(tmp_path, *args, env={"LORAGATE_STORE_URL": nowhere}) as server:
        answered = await _load(server.url, seconds=0.5, concurrency=2)
    assert answered and list((tmp_path / "home" / "journal").glob("*.jsonl"))
    db = Database(tmp_path, fresh_database(postgres))
    with gateway(tmp_path, *args, env={"LORAGATE_STORE_URL": str(db.url)}):
        pass  # the database is up now: the journal is replayed at start
    stored = {row[0] for row in db.rows("SELECT id FROM interactions")}
    assert stored == {iid for iid, _ in answered}
    assert not list((tmp_path / "home" / "journal").glob("*.jsonl"))
