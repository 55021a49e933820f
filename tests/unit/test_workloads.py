"""Requests are sorted into workloads by what they are, unless the client says."""

from __future__ import annotations

from gateway.generation import GenerationRequest
from gateway.serving.workloads import identify


def tools(*names: str) -> list[dict]:
    return [{"type": "function", "function": {"name": n}} for n in names]


def chat(**fields: object) -> GenerationRequest:
    return GenerationRequest(model="m", messages=[{"role": "user", "content": "hi"}], **fields)


def test_the_header_then_the_alias_win() -> None:
    request = chat(tools=tools("Read", "Write", "Bash"))
    assert identify(request, header="Docs", alias="byllm", api="chat") == "docs"
    assert identify(request, header=None, alias="jessy", api="chat") == "jessy"


def test_shapes_name_the_workload() -> None:
    assert (
        identify(
            chat(tools=tools("Read", "Write", "Bash", "Fetch")), header=None, alias=None, api="chat"
        )
        == "continue"
    )
    assert identify(chat(tools=tools("finish_tool")), header=None, alias=None, api="chat") == "jac"
    assert (
        identify(chat(json_schema={"type": "object"}), header=None, alias="auto", api="chat")
        == "jac"
    )
    assert identify(chat(tools=tools("search")), header=None, alias=None, api="chat") == "agent"
    libcst = GenerationRequest(
        model="m",
        messages=[
            {"role": "system", "content": "Write a LibCST transformer that fixes the issue."}
        ],
    )
    assert identify(libcst, header=None, alias=None, api="chat") == "libcst"
    assert identify(chat(), header=None, alias=None, api="completions") == "autocomplete"
    assert identify(chat(), header=None, alias=None, api="ollama-generate") == "ollama-generate"
    assert identify(chat(), header=None, alias=None, api="chat") == "chat"


def test_the_libcst_agent_is_known_by_its_requests_and_its_repair_turns() -> None:
    from tests.support.libcst_agent import SYSTEM, Issue, ask, rename_script, retry

    issue = Issue("ISSUE-1", "app.py", "load", "read_config")
    first = [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": ask(issue, "def load(): pass\n")}]  # fmt: skip
    assert (
        identify(GenerationRequest(model="m", messages=first), header=None, alias=None, api="chat")
        == "libcst"
    )
    # a repair turn whose opening says nothing of LibCST: the earlier script and traceback do
    plain = [
        {"role": "user", "content": "Rename load to read_config in app.py."},
        {"role": "assistant", "content": f"```python\n{rename_script('load', 'x')}```"},
        {"role": "user", "content": retry("Traceback (most recent call last):\n  ...")},
    ]
    assert (
        identify(GenerationRequest(model="m", messages=plain), header=None, alias=None, api="chat")
        == "libcst"
    )
    # a traceback alone is any coding question
    other = [{"role": "user", "content": retry("Traceback (most recent call last):\n  ...")}]
    assert (
        identify(GenerationRequest(model="m", messages=other), header=None, alias=None, api="chat")
        == "chat"
    )
