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
    names = {t.get("function", t).get("name") for t in request.tools or []}
    if "finish_tool" in names:
        return "byllm"
    if len(names & CONTINUE_TOOLS) >= 3:
        return "continue"
    if _mentions_libcst(request):
        return "libcst"
    return "agent" if names else "chat"


# Tool names Continue sends: the CLI's, and the IDE extensions' built-in tools.
CONTINUE_TOOLS = frozenset({
    "Read", "Write", "List", "Bash", "Fetch", "Checklist", "CheckBackgroundJob", "AskQuestion",
    "Edit", "MultiEdit", "Exit", "Skills", "read_file", "edit_existing_file", "create_new_file",
    "run_terminal_command", "grep_search", "file_glob_search", "view_diff", "ls",
    "read_currently_open_file", "fetch_url_content", "view_subdirectory", "view_repo_map",
    "single_find_and_replace", "multi_edit", "create_rule_block", "search_web",
})  # fmt: skip


def _mentions_libcst(request: GenerationRequest) -> bool:
    """The LibCST code-repair agent asks for LibCST transformer scripts."""
    for message in (request.messages or [])[:2]:
        if "libcst" in (message.get("content") or "").lower():
            return True
    return "libcst" in (request.prompt or "").lower()[:2000]
