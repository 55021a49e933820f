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
    assert (
        identify(chat(tools=tools("finish_tool")), header=None, alias=None, api="chat") == "byllm"
    )
    assert (
        identify(chat(json_schema={"type": "object"}), header=None, alias="auto", api="chat")
        == "byllm"
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
