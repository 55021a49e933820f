"""`loragate dataset build`: recorded work becomes a validated, de-duplicated, mixed and split
training set, and nothing judged bad is ever a target."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.generation import Assembled, AssembledCall, Finish, GenerationRequest
from gateway.recording.corrections import Correction
from gateway.recording.recorder import Recorder
from gateway.recording.records import FeedbackRecord, InteractionRecord
from gateway.store import Store
from tests.support.tools import READ
from trainer.data.curate import problem
from trainer.data.dataset import BuildOptions, EmptyDataset, build
from trainer.data.examples import Example

SYSTEM = "You are an agent in the user's repository."
RUN = {
    "type": "function",
    "function": {
        "name": "run",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}
TOOLS = [READ, RUN]
_clock = [1_790_000_000.0]


def exchange(
    iid: str, messages: list[dict], *, text: str = "", calls: list[AssembledCall] | None = None
) -> InteractionRecord:
    _clock[0] += 1
    request = GenerationRequest(model="m", messages=messages, tools=TOOLS)
    return InteractionRecord(
        id=iid, created_at=_clock[0], api="chat", workload="continue", model_requested="continue",
        version="m@v0", request=request, status="complete",
        answer=Assembled(text=text, calls=calls or [], finish=Finish("stop", 10, 2)),
    )  # fmt: skip


def call_message(call: AssembledCall) -> dict:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": call.arguments}}
        ],
    }  # fmt: skip


async def record_work(home: Path) -> None:
    """An agent conversation (a good call, a failed call, an accepted answer), a corrected
    answer, a rejected one, a question asked twice, and unjudged chatter."""
    recorder = Recorder(home)
    await recorder.start()
    ask = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Why does main fail?"},
    ]
    good = AssembledCall("call_good", "read_file", '{"path": "main.py"}')
    recorder.submit(exchange("ia_t1", ask, calls=[good]))
    turn2 = [*ask, call_message(good), {"role": "tool", "tool_call_id": "call_good",
                                        "content": "import sys\nsys.exit(2)"}]  # fmt: skip
    bad = AssembledCall("call_bad", "run", '{"command": "python main.py"}')
    recorder.submit(exchange("ia_t2", turn2, calls=[bad]))
    turn3 = [*turn2, call_message(bad), {"role": "tool", "tool_call_id": "call_bad",
                                         "content": "Error: exit code 2"}]  # fmt: skip
    recorder.submit(exchange("ia_t3", turn3, text="main.py exits with status 2 on purpose."))
    fix = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Rename x to y"}]
    recorder.submit(exchange("ia_fix", fix, text="I renamed it."))
    nope = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Delete all tests"}]
    recorder.submit(exchange("ia_no", nope, text="Done, deleted."))
    for iid, question in (("ia_q1", "List the files"), ("ia_q2", "list the files!")):
        lst = AssembledCall(f"call_{iid}", "run", '{"command": "ls"}')
        asked = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        recorder.submit(exchange(iid, asked, calls=[lst]))
    chatter = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}]
    recorder.submit(exchange("ia_hi", chatter, text="Hello!"))
    await recorder.flush()
    now = time.time()
    recorder.submit(FeedbackRecord("ia_t3", now, accepted=True))
    recorder.submit(FeedbackRecord("ia_fix", now, accepted=False, correction="`y = x`; done."))
    recorder.submit(FeedbackRecord("ia_no", now, accepted=False))
    for iid in ("ia_q1", "ia_q2"):
        recorder.submit(FeedbackRecord(iid, now, accepted=True))
    await recorder.close()


@pytest.fixture
async def home(tmp_path: Path) -> Path:
    await record_work(tmp_path)
    return tmp_path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def own(examples: list[dict]) -> list[dict]:
    return [e for e in examples if e["trust"] != "replay"]


def build_all(home: Path, **options: object) -> tuple[Path, dict]:
    store = Store(home / "store.db")
    try:
        options = {"eval_fraction": 0.0, **options}
        dataset = build(store, home, BuildOptions(**options), progress=False)  # type: ignore[arg-type]
    finally:
        store.close()
    return dataset.path, dataset.manifest


def test_a_conversation_is_kept_whole_with_loss_only_on_good_turns(home: Path) -> None:
    path, _ = build_all(home)
    [thread] = [e for e in own(lines(path / "train.jsonl")) if e["id"] == "ia_t3"]
    roles = [m["role"] for m in thread["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant"]
    # the good call (2) and the accepted answer (6) carry loss; the failed call (4) does not
    assert thread["targets"] == [2, 6] and thread["sources"] == ["ia_t1", "ia_t2", "ia_t3"]
    assert thread["trust"] == "accepted"


def test_corrections_replace_the_answer_and_rejections_are_only_negatives(home: Path) -> None:
    path, manifest = build_all(home)
    train = {e["id"]: e for e in own(lines(path / "train.jsonl"))}
    assert train["ia_fix"]["messages"][-1] == {"role": "assistant", "content": "`y = x`; done."}
    assert train["ia_fix"]["trust"] == "corrected"
    assert "ia_no" not in train and "ia_hi" not in train  # rejected; unjudged
    negatives = {n["id"]: n for n in lines(path / "negatives.jsonl")}
    assert set(negatives) == {"ia_t2", "ia_no"}
    assert negatives["ia_no"]["rejected"]["content"] == "Done, deleted."
    assert manifest["filters"]["unjudged_not_used"] == 1


def test_unjudged_answers_are_used_only_when_asked(home: Path) -> None:
    path, _ = build_all(home, include_unjudged=True)
    assert "ia_hi" in {e["id"] for e in lines(path / "train.jsonl")}


def test_near_identical_prompts_are_kept_once(home: Path) -> None:
    path, manifest = build_all(home)
    ids = {e["id"] for e in lines(path / "train.jsonl")}
    assert len(ids & {"ia_q1", "ia_q2"}) == 1 and manifest["filters"]["duplicates"] == 1


def test_tool_workloads_get_no_call_examples_and_every_set_gets_replay(home: Path) -> None:
    # 2 of the 3 continue examples end in plain text; 90 % asks for one more
    path, manifest = build_all(home, no_call_share=0.9, replay_fraction=0.2)
    train = lines(path / "train.jsonl")
    no_call = [e for e in train if e["id"].startswith("replay-nocall-continue")]
    assert len(no_call) == 1 and manifest["counts"]["no_call_added"] == 1
    assert all(e["messages"][0] == {"role": "system", "content": SYSTEM} for e in no_call)
    assert all(e["tools"] == TOOLS and "tool_calls" not in e["messages"][-1] for e in no_call)
    tokens = manifest["tokens"]  # replay holds a fifth of the tokens that carry loss
    assert tokens["replay_target"] >= 0.2 * tokens["train_target"] * 0.95


def test_the_split_is_deterministic_and_keeps_conversations_on_one_side(home: Path) -> None:
    first, manifest = build_all(home, eval_fraction=0.5, seed=3)
    again, _ = build_all(home, eval_fraction=0.5, seed=3)
    assert first == again and first.name == manifest["hash"]
    train = {e["conversation_id"] for e in lines(first / "train.jsonl") if e["conversation_id"]}
    held = {e["conversation_id"] for e in lines(first / "eval.jsonl") if e["conversation_id"]}
    assert held and not train & held
    other, _ = build_all(home, eval_fraction=0.5, seed=4)
    assert other != first


async def test_a_corrected_call_gives_the_same_dataset_on_every_build(home: Path) -> None:
    recorder = Recorder(home)
    await recorder.start()
    ask = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Show me main.py"}]
    recorder.submit(exchange("ia_show", ask, text="It is a Python file."))
    await recorder.flush()
    wanted = {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "read_file", "arguments": '{"path": "main.py"}'}}]}  # fmt: skip
    correction = Correction.from_message(wanted).text()
    recorder.submit(FeedbackRecord("ia_show", time.time(), accepted=False, correction=correction))
    await recorder.close()
    first, manifest = build_all(home)
    again, _ = build_all(home)
    assert first == again and first.name == manifest["hash"]
    [shown] = [e for e in lines(first / "train.jsonl") if e["id"] == "ia_show"]
    [call] = shown["messages"][-1]["tool_calls"]
    assert call["function"] == {"name": "read_file", "arguments": '{"path": "main.py"}'}


def test_mlx_layout_has_one_line_per_target_turn(home: Path) -> None:
    path, _ = build_all(home)
    mlx = lines(path / "mlx" / "train.jsonl")
    assert all(set(line) <= {"messages", "tools"} for line in mlx)
    cut = [line for line in mlx if line["messages"][1]["content"] == "Why does main fail?"]
    assert sorted(len(line["messages"]) for line in cut) == [3, 7]


def test_an_empty_window_is_one_clear_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(EmptyDataset, match="no trainable examples"):
        build_all(home, since=time.time() + 3600)
    code = main(["dataset", "--home", str(home), "build", "--since", "2099-01-01"])
    last = capsys.readouterr().err.splitlines()[-1]
    assert code == 1 and last.startswith("loragate: error: no trainable examples")


def test_the_cli_builds_and_summarises(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["dataset", "--home", str(home), "build", "--json"])
    manifest = json.loads(capsys.readouterr().out)
    assert code == 0 and (home / "datasets" / manifest["hash"] / "train.jsonl").exists()
    assert manifest["counts"]["per_workload"]["continue"]["train"] >= 3
    assert "characters per token, measured on" in manifest["tokens"]["method"]


@pytest.mark.parametrize(
    ("arguments", "name", "why"),
    [
        ('{"path": "a.py"}', "write_file", "unknown tool 'write_file'"),
        ('{"path": ', "read_file", "are not JSON"),
        ("[1]", "read_file", "not a JSON object"),
        ("{}", "read_file", "missing required path"),
        ('{"path": 3}', "read_file", "3 is not of type 'string'"),
        ('{"path": "[REDACTED]"}', "read_file", "redacted secret"),
    ],
)
def test_invalid_target_calls_are_named_not_fixed(arguments: str, name: str, why: str) -> None:
    call = AssembledCall("c", name, arguments)
    messages = [{"role": "user", "content": "open a.py"}, call_message(call)]
    example = Example("ia_x", "continue", None, messages, [READ], [1], "accepted", ["ia_x"])
    assert why in (problem(example) or "")
