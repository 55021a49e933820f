"""Which workload a request belongs to: training, evaluation and routing all work per workload.

An explicit choice wins (the `X-Loragate-Workload` header, then a workload alias as model
name); otherwise the request's shape tells.
"""

from __future__ import annotations

from gateway.generation import GenerationRequest

WORKLOAD_HEADER = "x-loragate-workload"


def identify(request: GenerationRequest, *, header: str | None, alias: str | None, api: str) -> str:
    """`api` is the endpoint family: `chat`, `completions`, `ollama-chat` or `ollama-generate`."""
    if header:
        return header.strip().lower()
    if alias and alias != "auto":
        return alias
    if api == "completions":
        return "autocomplete"
    if api == "ollama-generate":
        return "ollama-generate"
    if request.json_schema is not None:
        return "byllm"
    if request.tools and any(_is_finish_tool(t) for t in request.tools):
        return "byllm"
    if request.tools:
        return "agent"
    return "chat"


def _is_finish_tool(tool: dict) -> bool:
    return tool.get("function", tool).get("name") == "finish_tool"
