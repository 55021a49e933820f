"""Synthetic agent work shaped like the Continue CLI's: a long system prompt and eleven tool
schemas (~2,000 tokens, the same on every request) before a short request, answered by one
tool call. Deterministic from a seed; used by the training benchmarks and end-to-end tests."""

from __future__ import annotations

import json
import random
from typing import Any

_RULES = [
    "You are a coding agent working inside the user's repository from a terminal.",
    "Act through the tools: read before you edit, run commands to check your work, and keep "
    "changes small and focused on what the user asked for.",
    "When the user asks about a file, read it with the Read tool instead of guessing its "
    "contents. When the user asks to see what is in a folder, use List.",
    "Use Bash for commands: running tests, installing packages, searching with grep, checking "
    "git status. Never run commands that delete data the user did not ask to delete.",
    "Use Write to create a new file with the full content, and Edit to change part of an "
    "existing file by replacing an exact old string with a new one.",
    "Use Fetch to read a web page the user names. Use Checklist to track a multi-step plan. "
    "Use CheckBackgroundJob to look at a job started earlier. Use AskQuestion only when the "
    "request is ambiguous. Use Exit when the work is done. Use Skills to list what you can do.",
    "Answer in plain text, without a tool, when the user only asks a question you can answer.",
    "Prefer the project's existing style: naming, formatting, test layout and error handling. "
    "Explain briefly what you changed and why after the last tool result.",
]
SYSTEM_PROMPT = "\n\n".join(_RULES * 3)


def _tool(name: str, description: str, props: dict[str, Any], required: list[str]) -> dict:
    parameters = {"type": "object", "properties": props, "required": required}
    function = {"name": name, "description": description, "parameters": parameters}
    return {"type": "function", "function": function}


def _s(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


TOOLS = [
    _tool("Read", "Read a file from the repository and return its contents with line numbers. "
          "Use it before editing a file or when asked what a file does.",
          {"filepath": _s("Path of the file, relative to the repository root")}, ["filepath"]),
    _tool("Write", "Create or overwrite a file with the given content. Use it for new files; "
          "use Edit for changes to existing ones.",
          {"filepath": _s("Path of the file to write"), "content": _s("The full new content")},
          ["filepath", "content"]),
    _tool("List", "List the files and folders in a directory of the repository, one per line, "
          "folders marked with a trailing slash.",
          {"dirpath": _s("Directory to list, relative to the repository root")}, ["dirpath"]),
    _tool("Bash", "Run a shell command in the repository root and return its output and exit "
          "code. Use it for tests, builds, git and searching.",
          {"command": _s("The command line to run")}, ["command"]),
    _tool("Fetch", "Fetch a web page and return its text content.",
          {"url": _s("The URL to fetch, including the scheme")}, ["url"]),
    _tool("Checklist", "Create or update the task checklist shown to the user.",
          {"checklist": _s("The checklist in markdown, one item per line")}, ["checklist"]),
    _tool("CheckBackgroundJob", "Report the status and recent output of a background job.",
          {"jobId": _s("The id of the job")}, ["jobId"]),
    _tool("AskQuestion", "Ask the user a clarifying question and wait for the answer.",
          {"question": _s("The question to ask")}, ["question"]),
    _tool("Edit", "Replace an exact string in a file with a new string. The old string must "
          "occur exactly once in the file.",
          {"filepath": _s("File to edit"), "old_string": _s("Exact text to replace"),
           "new_string": _s("Replacement text")}, ["filepath", "old_string", "new_string"]),
    _tool("Exit", "End the session when the task is complete.", {}, []),
    _tool("Skills", "List the skills available in this environment.", {}, []),
]  # fmt: skip

_FILES = ["src/app.py", "src/utils.py", "tests/test_app.py", "README.md", "setup.cfg",
          "src/models/user.py", "src/api/routes.py", "docs/index.md", "Makefile",
          "src/config.py", "scripts/deploy.sh", "package.json"]  # fmt: skip
_DIRS = ["src", "tests", "docs", "src/models", "scripts", "src/api", "."]
_COMMANDS = [("run the tests", "pytest -q"), ("check git status", "git status"),
             ("install the requirements", "pip install -r requirements.txt"),
             ("search for TODO comments", "grep -rn TODO src"),
             ("show the last three commits", "git log -3 --oneline"),
             ("run the linter", "ruff check .")]  # fmt: skip
_URLS = ["https://docs.python.org/3/library/json.html", "https://peps.python.org/pep-0008/",
         "https://example.com/changelog"]  # fmt: skip


def task(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """(user request, tool name, arguments)."""
    kind = rng.choice(["read", "read", "list", "bash", "bash", "write", "edit", "fetch"])
    if kind == "read":
        f = rng.choice(_FILES)
        ask = rng.choice(["Show me {f}", "What is in {f}?", "Open {f} please",
                          "Read {f} and tell me what it does"]).format(f=f)  # fmt: skip
        return ask, "Read", {"filepath": f}
    if kind == "list":
        d = rng.choice(_DIRS)
        ask = rng.choice(["List the files in {d}", "What files are in {d}?",
                          "Show the contents of the {d} folder"]).format(d=d)  # fmt: skip
        return ask, "List", {"dirpath": d}
    if kind == "bash":
        what, command = rng.choice(_COMMANDS)
        ask = rng.choice(["Please {w}", "Can you {w}?", "{W} now"]).format(
            w=what, W=what.capitalize()
        )
        return ask, "Bash", {"command": command}
    if kind == "write":
        f = rng.choice(["notes.md", "TODO.txt", "src/constants.py", "docs/usage.md"])
        text = rng.choice(["first draft", "PI = 3.14159", "Remember to update the docs"])
        return f"Create {f} containing: {text}", "Write", {"filepath": f, "content": text}
    if kind == "edit":
        f = rng.choice(_FILES[:4])
        old, new = rng.choice([("debug = True", "debug = False"), ("timeout=10", "timeout=30"),
                               ("print(", "log.info(")])  # fmt: skip
        return (f"In {f}, replace `{old}` with `{new}`", "Edit",
                {"filepath": f, "old_string": old, "new_string": new})  # fmt: skip
    url = rng.choice(_URLS)
    return f"Fetch {url} and summarize it", "Fetch", {"url": url}


def examples(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Dataset-style examples: messages (system, user, the call), tools, targets."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ask, name, arguments = task(rng)
        call = {"id": f"call_{i}", "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": ask},
            {"role": "assistant", "content": "", "tool_calls": [call]},
        ]
        out.append({"id": f"task_{seed}_{i}", "workload": "continue", "conversation_id": None,
                    "trust": "accepted", "sources": [], "targets": [2], "messages": messages,
                    "tools": TOOLS})  # fmt: skip
    return out
