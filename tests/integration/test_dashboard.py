"""The dashboard in a real browser (headless Chromium) against a real gateway on the embedded
model: every page renders the store's data without a console error, a correction made in the
review queue lands in the store and in the next `loragate dataset build`, the promote and
rollback buttons change the version that answers, a retrain started from the page shows its
stages live, and the API key guards it all. Each page's screenshot is saved under
`build/screenshots/`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import Browser, expect

from gateway.store import Store
from tests.support.browser import Watched, chromium
from tests.support.cli import loragate
from tests.support.history import add_history
from tests.support.servers import Server, gateway, served_by_in_a_row

pytestmark = pytest.mark.slow
BASE = "smollm2-135m-instruct"
TOOLS = [
    {"type": "function", "function": {
        "name": "read_file", "description": "Read a file of the project",
        "parameters": {"type": "object", "required": ["path"], "properties": {
            "path": {"type": "string", "description": "relative to the project root"},
            "lines": {"type": "integer"}}}}},
    {"type": "function", "function": {
        "name": "list_dir", "description": "List a folder",
        "parameters": {"type": "object", "required": ["dir"], "properties": {
            "dir": {"type": "string"}, "recursive": {"type": "boolean"},
            "format": {"type": "string", "enum": ["short", "long"]}}}}},
]  # fmt: skip


@dataclass
class Seeded:
    server: Server
    rejected_call: str  # a tool request whose answer the user rejected
    rejected_text: str  # a plain question whose answer the user rejected, earlier
    accepted: str

    @property
    def home(self) -> Path:
        assert self.server.home is not None
        return self.server.home

    def store(self) -> Store:
        return Store(self.home / "store.db")


def ask(
    server: Server, text: str, tools: list | None = None, model: str = "auto"
) -> tuple[str, str]:
    """One chat through the openai SDK; (interaction id, version that answered)."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="none", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=24,
        **({"tools": tools} if tools else {}),
    )  # fmt: skip
    return raw.headers["x-loragate-interaction-id"], raw.headers["x-loragate-model-version"]


def feedback(server: Server, iid: str, accepted: bool) -> None:
    sent = httpx.post(
        f"{server.url}/v1/feedback", json={"interaction_id": iid, "accepted": accepted}
    )
    assert sent.status_code == 200, sent.text


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with gateway(tmp_path_factory.mktemp("dashboard"), "--n-ctx", "2048") as server:
        rejected_text, _ = ask(server, "Name the capital of France.")
        accepted, _ = ask(server, "Say hello.")
        rejected_call, _ = ask(server, "Show me README.md", TOOLS)
        feedback(server, rejected_text, False)
        feedback(server, accepted, True)
        feedback(server, rejected_call, False)
        assert server.home is not None
        store = Store(server.home / "store.db")
        add_history(server.home, store, {f"{BASE}@v0": 0.25, f"{BASE}@v1": 0.75})
        store.close()
        yield Seeded(server, rejected_call, rejected_text, accepted)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1320, "height": 900})
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.errors == []


def chart_traces(page: object, selector: str) -> list[str]:
    return page.eval_on_selector(selector, "box => box.data.map(trace => trace.name)")  # type: ignore[attr-defined]


def test_every_page_shows_the_stores_data(seeded: Seeded, watched: Watched) -> None:
    url = seeded.server.url
    page = watched.open(f"{url}/ui")
    expect(page.locator(".lane[data-workload='*'] td code").first).to_have_text(f"{BASE}@v0")
    expect(page.locator(".lane .chart[data-drawn='yes'] .main-svg").first).to_be_visible()
    assert chart_traces(page, ".lane .chart") == [f"{BASE}@v0"]
    expect(page.get_by_text("review queue: 2 failed")).to_be_visible()
    watched.screenshot("workloads")

    page = watched.open(f"{url}/ui/interactions")
    expect(page.locator("table.interactions tbody tr")).to_have_count(3)
    expect(page.locator(f"tr[data-id='{seeded.accepted}'] .badge.good")).to_have_text("accepted 1")
    page.select_option("select[name=outcome]", "failed")
    page.click("text=Filter")
    page.wait_for_load_state("networkidle")
    expect(page.locator("table.interactions tbody tr")).to_have_count(2)
    watched.screenshot("interactions")

    page.click(f"tr[data-id='{seeded.rejected_call}'] a")
    page.wait_for_load_state("networkidle")
    expect(page.locator(".msg.user")).to_contain_text("Show me README.md")
    expect(page.locator("details.tools summary")).to_have_text("2 tools offered")
    expect(page.locator("table.compact .badge.bad")).to_have_text("accepted 0")
    watched.screenshot("interaction")

    page = watched.open(f"{url}/ui/training")
    expect(page.locator(".chart[data-drawn='yes'] .main-svg").first).to_be_visible()
    assert len(chart_traces(page, ".chart")) == 1
    expect(page.locator("text=held-out · right")).to_be_visible()
    expect(page.locator("text=75.0 %")).to_be_visible()
    watched.screenshot("training")


def test_a_correction_made_in_the_review_queue_trains_the_next_dataset(
    seeded: Seeded, watched: Watched
) -> None:
    page = watched.open(f"{seeded.server.url}/ui/review")
    expect(page.locator("#queued-because")).to_have_text("failed a check or was rejected")
    expect(page.locator(".msg.user")).to_contain_text("Show me README.md")
    page.keyboard.press("c")
    page.click("#mode button[data-mode=call]")
    page.select_option("#tool", "read_file")
    page.fill("#arg-path", "")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#problem")).to_have_text("path is required")  # checked before saving
    page.fill("#arg-path", "README.md")
    page.fill("#arg-lines", "40")
    watched.screenshot("review")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    page.wait_for_load_state("networkidle")

    store = seeded.store()
    (content, source), = store.query(
        "SELECT content, source FROM corrections WHERE interaction_id = ?", (seeded.rejected_call,)
    )  # fmt: skip
    assert source == "review"  # stored as the serving template renders the call
    assert content == ('<tool_call>\n{"name": "read_file", "arguments": '
                       '{"lines":40,"path":"README.md"}}\n</tool_call>')  # fmt: skip

    # the next in the queue: the earlier rejected answer, accepted with a key
    expect(page.locator(".msg.user")).to_contain_text("capital of France")
    with page.expect_navigation():
        page.keyboard.press("a")
    verdicts = store.query("SELECT kind, value FROM outcomes WHERE interaction_id = ? AND "
                           "source = 'review'", (seeded.rejected_text,))  # fmt: skip
    assert [tuple(v) for v in verdicts] == [("accepted", 1.0)]
    store.close()

    built = loragate(seeded.home, "dataset", "build", "--json")
    assert built.returncode == 0, built.stderr
    folder = seeded.home / "datasets" / json.loads(built.stdout)["hash"]
    examples = [json.loads(line) for name in ("train.jsonl", "eval.jsonl")
                for line in (folder / name).read_text().splitlines()]  # fmt: skip
    corrected = [e for e in examples if seeded.rejected_call in e["sources"]]
    assert len(corrected) == 1
    assert "read_file" in json.dumps(corrected[0]["messages"][-1])
    assert "README.md" in json.dumps(corrected[0]["messages"][-1])


def test_the_server_checks_a_correction_against_the_tools_offered(seeded: Seeded) -> None:
    bad = {"verdict": "correct", "correction": {"role": "assistant", "tool_calls": [
        {"function": {"name": "delete_everything", "arguments": {}}}]}}  # fmt: skip
    sent = httpx.post(f"{seeded.server.url}/ui/review/{seeded.rejected_call}", json=bad,
                      headers={"Origin": seeded.server.url})  # fmt: skip
    assert sent.status_code == 400
    assert "unknown tool 'delete_everything'" in sent.json()["error"]["message"]


def test_promoting_a_version_that_does_not_exist_names_the_known_ones(seeded: Seeded) -> None:
    url = seeded.server.url
    answer = httpx.post(f"{url}/ui/actions/promote", json={"version": f"{BASE}@v9"},
                        headers={"Origin": url})  # fmt: skip
    assert answer.status_code == 404
    assert answer.json()["error"]["message"].startswith(f"no model version '{BASE}@v9'; known: ")


def test_a_broken_cursor_is_a_clear_error(seeded: Seeded) -> None:
    for path, param in (("/ui/interactions?before=yesterday", "before"),
                        ("/ui/review?after=somewhere", "after")):  # fmt: skip
        answer = httpx.get(seeded.server.url + path)
        assert answer.status_code == 400
        assert answer.json()["error"]["param"] == param


PERSON = {"type": "object", "required": ["name", "age"], "additionalProperties": False,
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}  # fmt: skip


def test_a_json_answer_is_corrected_in_an_editor_checked_against_its_schema(
    seeded: Seeded, watched: Watched
) -> None:
    client = openai.OpenAI(base_url=f"{seeded.server.url}/v1", api_key="none", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Who wrote the first program?"}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "person", "schema": PERSON, "strict": True}},
        max_tokens=40,
    )  # fmt: skip
    iid = raw.headers["x-loragate-interaction-id"]

    page = watched.open(f"{seeded.server.url}/ui/review?id={iid}")
    page.keyboard.press("c")
    page.fill("#answer", "Ada Lovelace")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#problem")).to_contain_text("not valid JSON")  # checked in the page
    page.fill("#answer", '{"name": "Ada Lovelace"}')
    page.keyboard.press("Control+Enter")  # valid JSON, not the schema: the server says why
    expect(page.locator("#problem")).to_contain_text("doesn't match the response schema")
    watched.errors.clear()  # the browser logs the 400
    page.fill("#answer", '{"name": "Ada Lovelace", "age": 36}')
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    store = seeded.store()
    corrections = store.query("SELECT content FROM corrections WHERE interaction_id = ?", (iid,))
    store.close()
    assert [json.loads(c[0]) for c in corrections] == [{"name": "Ada Lovelace", "age": 36}]


def test_promote_and_rollback_buttons_change_the_served_version(
    seeded: Seeded, watched: Watched, tmp_path: Path
) -> None:
    from gateway.backends.embedded import default_model_path

    copy = tmp_path / "retrained.gguf"
    shutil.copyfile(default_model_path(), copy)
    registered = loragate(seeded.home, "models", "register", str(copy), "--candidate")
    assert registered.returncode == 0, registered.stderr

    page = watched.open(f"{seeded.server.url}/ui")
    candidate = page.locator(".lane tr.candidate")
    expect(candidate.locator("code")).to_have_text(f"{BASE}@v1")
    with page.expect_navigation():
        candidate.locator("button", has_text="Promote").click()
    expect(page.locator(".lane tr.active code")).to_have_text(f"{BASE}@v1")
    served_by_in_a_row(seeded.server, f"{BASE}@v1", lambda: say_yes(seeded.server), timeout=30)
    watched.screenshot("workloads-promoted")

    with page.expect_navigation():
        page.locator(".lane button", has_text="Roll back").click()
    expect(page.locator(".lane tr.active code")).to_have_text(f"{BASE}@v0")
    served_by_in_a_row(seeded.server, f"{BASE}@v0", lambda: say_yes(seeded.server), timeout=30)


def say_yes(server: Server) -> tuple[str, str]:
    """(the version that answered `auto`, the interaction id)."""
    iid, version = ask(server, "Say yes.")
    return version, iid


KEY = "sk-dashboard-test-key"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with gateway(tmp_path_factory.mktemp("keyed"), "--n-ctx", "1024",
                 env={"LORAGATE_API_KEY": KEY}) as server:  # fmt: skip
        yield server


def test_with_an_api_key_the_dashboard_asks_for_it_and_keeps_it_in_a_cookie(
    keyed: Server, watched: Watched
) -> None:
    refused = httpx.get(f"{keyed.url}/ui/interactions")
    assert refused.status_code == 303
    assert refused.headers["location"] == "/ui/login?next=/ui/interactions"
    assert (
        httpx.post(f"{keyed.url}/ui/actions/retrain", headers={"Origin": keyed.url}).status_code
        == 401
    )

    page = watched.open(f"{keyed.url}/ui/interactions")
    assert page.url.endswith("/ui/login?next=/ui/interactions")
    page.fill("input[name=key]", "not-the-key")
    with page.expect_navigation():
        page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("That is not this gateway's API key.")
    watched.errors.clear()  # the browser logs the 401 of the refused sign-in
    page.fill("input[name=key]", KEY)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{keyed.url}/ui/interactions"
    cookie = next(c for c in page.context.cookies() if c["name"] == "loragate_ui")
    assert KEY not in cookie["value"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # a page from another local origin (allowed to call the API) cannot act on the dashboard
    other = httpx.post(f"{keyed.url}/ui/actions/rollback", json={"workload": "*"},
                       headers={"Origin": "http://localhost:3000",
                                "Cookie": f"loragate_ui={cookie['value']}"})  # fmt: skip
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden_origin"


def test_a_retrain_started_from_the_page_shows_its_stages_live(
    keyed: Server, watched: Watched
) -> None:
    page = watched.open(f"{keyed.url}/ui/login?next=/ui")
    page.fill("input[name=key]", KEY)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.click("#retrain-button")
    # nothing is judged in this home: the retrain stops at its first stage and says why
    expect(page.locator("#retrain-status")).to_have_text(
        "finished with exit code 1", timeout=60_000
    )
    expect(page.locator("#retrain-log")).to_contain_text("[1/5] dataset ...")
    expect(page.locator("#retrain-log")).to_contain_text("no trainable examples")
    expect(page.locator("#retrain-button")).to_be_enabled()
    watched.screenshot("workloads-retrain")
