"""Which workload a request belongs to: training, evaluation and routing all work per workload.

An explicit choice wins (the `X-Loragate-Workload` header, then a workload alias as model
name); otherwise the request's shape tells.
"""

from __future__ import annotations

from gateway.generation import GenerationRequest
from gateway.prompts import mtllm

WORKLOAD_HEADER = "x-loragate-workload"
# Jac's two LLM plugins, MTLLM (`[Output]` text) and byllm (JSON schemas), are one workload.
SYNONYMS = {"byllm": mtllm.WORKLOAD}


def identify(request: GenerationRequest, *, header: str | None, alias: str | None, api: str) -> str:
    """`api` is the endpoint family: `chat`, `completions`, `ollama-chat` or `ollama-generate`."""
    if header:
        named = header.strip().lower()
        return SYNONYMS.get(named, named)
    if alias and alias != "auto":
        return SYNONYMS.get(alias, alias)
    if api == "completions":
        return "autocomplete"
    if api == "ollama-generate":
        return "ollama-generate"
    if request.json_schema is not None:
        return mtllm.WORKLOAD
    names = {t.get("function", t).get("name") for t in request.tools or []}
    if "finish_tool" in names or (not names and mtllm.read_call(request) is not None):
        return mtllm.WORKLOAD
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


_LIBCST_WORDS = ("libcst", "csttransformer", "cstvisitor")
_TRACEBACK = "Traceback (most recent call last)"


def _mentions_libcst(request: GenerationRequest) -> bool:
    """The LibCST code-repair agent's requests: its instructions or first question ask for a
    LibCST transformer script, or a repair turn sends back the traceback of a script an earlier
    answer wrote with libcst."""
    messages = request.messages or []
    head = [m for m in messages if m["role"] == "system"][:1]
    head += [m for m in messages if m["role"] == "user"][:1]
    if any(_says_libcst(m.get("content") or "") for m in head):
        return True
    if messages and _TRACEBACK in (messages[-1].get("content") or ""):
        return any(
            m["role"] == "assistant" and _says_libcst(m.get("content") or "") for m in messages
        )
    return _says_libcst((request.prompt or "")[:2000])


def _says_libcst(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _LIBCST_WORDS)
