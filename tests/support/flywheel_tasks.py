"""A developer's two days in `tests/fixtures/flywheel_repo`: day-one tasks (what they ask the
Continue CLI while working, and the tool call each one should have started with) and day-two
tasks (other files, folders, words and phrasings, the same tools, and plain questions that
need no tool). Day two never shares a request with day one. Deterministic: the same lists on
every run; `take(tasks, n)` keeps the mix of kinds when a run asks for fewer."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

FIXTURE_REPO = "tests/fixtures/flywheel_repo"


@dataclass(frozen=True)
class Task:
    """One prompt to `cn -p`, with the first step a careful developer expects: a call to
    `tool` with exactly `arguments`, or (`tool` None) a plain answer such as `reference`."""

    prompt: str
    tool: str | None
    arguments: dict[str, Any] | None = None
    reference: str = ""

    @property
    def kind(self) -> str:
        return self.tool or "none"

    def correction(self) -> dict[str, Any]:
        """The assistant message the developer wanted, in OpenAI shape."""
        if self.tool is None:
            return {"role": "assistant", "content": self.reference}
        function = {"name": self.tool, "arguments": json.dumps(self.arguments)}
        return {"role": "assistant", "content": "", "tool_calls": [{"function": function}]}


def _read(phrasings: list[str], files: list[str], n: int) -> list[Task]:
    return [Task(p.format(f=f), "Read", {"filepath": f}) for p, f in _pairs(phrasings, files, n)]


def _list(phrasings: list[str], dirs: list[str], n: int) -> list[Task]:
    return [Task(p.format(d=d), "List", {"dirpath": d}) for p, d in _pairs(phrasings, dirs, n)]


def _bash(asks: list[tuple[str, str]]) -> list[Task]:
    return [Task(ask, "Bash", {"command": command}) for ask, command in asks]


def _write(phrasings: list[str], files: list[tuple[str, str]]) -> list[Task]:
    return [
        Task(p.format(f=f, c=c), "Write", {"filepath": f, "content": c})
        for p, (f, c) in _pairs(phrasings, files)
    ]


def _edit(phrasings: list[str], edits: list[tuple[str, str, str]]) -> list[Task]:
    return [
        Task(p.format(f=f, a=a, b=b), "Edit", {"file_path": f, "old_string": a, "new_string": b})
        for p, (f, a, b) in _pairs(phrasings, edits)
    ]


def _fetch(phrasings: list[str], urls: list[str]) -> list[Task]:
    return [Task(p.format(u=u), "Fetch", {"url": u}) for p, u in _pairs(phrasings, urls)]


def _plain(pairs: list[tuple[str, str]]) -> list[Task]:
    return [Task(question, None, None, answer) for question, answer in pairs]


def _pairs(phrasings: list[str], values: list[Any], n: int | None = None) -> list[tuple[str, Any]]:
    """`n` distinct (phrasing, value) pairs (default: each value once), phrasings in turn;
    each further round over the values shifts the phrasings by one."""
    n = max(len(values), len(phrasings)) if n is None else n
    assert n <= len(values) * len(phrasings), "not that many distinct pairs"
    return [(phrasings[(i + i // len(values)) % len(phrasings)], values[i % len(values)])
            for i in range(n)]  # fmt: skip


DAY_ONE_FILES = ["src/inventory/store.py", "src/inventory/pricing.py", "README.md",
                 "tests/test_store.py", "docs/usage.md", "pyproject.toml",
                 "src/inventory/config.py", "docs/index.md"]  # fmt: skip
DAY_TWO_FILES = ["src/inventory/models.py", "src/inventory/reports.py", "src/inventory/cli.py",
                 "tests/test_pricing.py", "docs/changelog.md", "Makefile",
                 "scripts/release.sh", "src/inventory/utils.py"]  # fmt: skip

DAY_ONE: list[Task] = [
    *_read(["Show me {f}", "What is in {f}?", "Open {f}", "Read {f} and tell me what it does"],
           DAY_ONE_FILES, 16),
    *_list(["List the files in {d}", "What files are in {d}?", "Show the contents of the {d} "
            "folder"], ["src", "docs", "tests", "src/inventory"], 12),
    *_bash([("Run the tests", "pytest -q"), ("Please run the test suite", "pytest -q"),
            ("Run the tests in tests/test_store.py", "pytest tests/test_store.py"),
            ("Run tests/test_models.py", "pytest tests/test_models.py"),
            ("Check git status", "git status"), ("What is the git status?", "git status"),
            ("Search for TODO comments", "grep -rn TODO src"),
            ("Search the code for Store", "grep -rn Store src"),
            ("Find where TAX_RATE is used", "grep -rn TAX_RATE src"),
            ("Show the last 3 commits", "git log -3 --oneline"),
            ("Show the last 5 commits", "git log -5 --oneline"),
            ("Run the linter", "ruff check ."), ("Lint the code", "ruff check ."),
            ("Install the package", "pip install -e ."),
            ("Count the lines in src/inventory/store.py", "wc -l src/inventory/store.py"),
            ("Count the lines in README.md", "wc -l README.md"),
            ("Show the git diff", "git diff"), ("What changed since the last commit?", "git diff"),
            ("Run make test", "make test"), ("Search for print calls", "grep -rn print src")]),
    *_write(["Create {f} containing: {c}", "Write a new file {f} with: {c}"],
            [("notes.md", "first draft"), ("TODO.txt", "ship 0.4"),
             ("src/inventory/constants.py", "MAX_ITEMS = 500"), ("docs/faq.md", "# FAQ"),
             ("CHANGES.txt", "nothing yet"), ("data/empty.csv", "sku,name"),
             ("src/inventory/errors.py", "class StockError(Exception): pass"),
             ("docs/setup.md", "pip install -e ."), ("scripts/hello.sh", "echo hello"),
             ("notes/plan.md", "- add tests"), ("VERSION", "0.3.1"),
             ("tests/conftest.py", "import pytest")]),
    *_edit(["In {f}, replace `{a}` with `{b}`", "Edit {f}: change `{a}` to `{b}`"],
           [("src/inventory/store.py", "debug = True", "debug = False"),
            ("src/inventory/config.py", "timeout = 10", "timeout = 30"),
            ("src/inventory/config.py", "retries = 3", "retries = 5"),
            ("src/inventory/pricing.py", "TAX_RATE = 0.2", "TAX_RATE = 0.21"),
            ("src/inventory/store.py", "print(", "log.info("),
            ("README.md", "pytest -q", "make test"),
            ("src/inventory/config.py", 'currency = "EUR"', 'currency = "USD"'),
            ("src/inventory/pricing.py", "DISCOUNT = 0.1", "DISCOUNT = 0.15"),
            ("docs/usage.md", "report", "summary"),
            ("src/inventory/__init__.py", '"0.3.1"', '"0.4.0"'),
            ("pyproject.toml", "0.3.1", "0.4.0"),
            ("tests/test_store.py", "bolt", "screw")]),
    *_fetch(["Fetch {u} and summarize it", "Get {u}"],
            ["https://docs.python.org/3/library/csv.html", "https://peps.python.org/pep-0008/",
             "https://example.com/changelog", "https://pytest.org/en/stable/",
             "https://docs.python.org/3/library/dataclasses.html",
             "https://example.com/api/status", "https://packaging.python.org/en/latest/",
             "https://docs.astral.sh/ruff/", "https://example.org/release-notes",
             "https://docs.python.org/3/tutorial/", "https://semver.org/",
             "https://example.com/inventory"]),
    *_plain([("What is a Python decorator?",
              "A function that takes a function and returns a new one, applied with @name."),
             ("What does HTTP status 404 mean?", "Not Found: the server has nothing at that URL."),
             ("What is the difference between a list and a tuple?",
              "A list can be changed after it is made; a tuple cannot."),
             ("Explain what a git branch is", "A movable name for a line of commits."),
             ("What does pip do?", "It installs Python packages."),
             ("What is 12 times 12?", "144"),
             ("What is a unit test?", "A test of one small piece of code on its own."),
             ("What does JSON stand for?", "JavaScript Object Notation."),
             ("What is recursion?", "A function calling itself on a smaller problem."),
             ("What is a virtual environment?",
              "An isolated Python installation with its own packages."),
             ("Say hello", "Hello!"), ("What is a dataclass?",
              "A class whose __init__, __repr__ and __eq__ are generated from its fields."),
             ("What does CSV stand for?", "Comma-separated values."),
             ("Thanks, that is all", "You're welcome."),
             ("What is an exception?", "An error raised while a program runs."),
             ("What is the capital of France?", "Paris.")]),
]  # fmt: skip

DAY_TWO: list[Task] = [
    *_read(["Print the contents of {f}", "Let me see {f}", "What does {f} contain?",
            "Display {f}"], DAY_TWO_FILES, 10),
    *_list(["List everything in {d}", "Which files does {d} have?"],
           ["scripts", "data", "docs", "tests"], 6),
    *_bash([("Run tests/test_pricing.py", "pytest tests/test_pricing.py"),
            ("Run the tests in tests/test_reports.py", "pytest tests/test_reports.py"),
            ("Run the whole test suite", "pytest -q"),
            ("Show me the git status", "git status"),
            ("Search the code for Item", "grep -rn Item src"),
            ("Find where DISCOUNT is used", "grep -rn DISCOUNT src"),
            ("Show the last 2 commits", "git log -2 --oneline"),
            ("Show the last 10 commits", "git log -10 --oneline"),
            ("Count the lines in src/inventory/cli.py", "wc -l src/inventory/cli.py"),
            ("Run the linter on the code", "ruff check ."),
            ("Show me the git diff", "git diff"),
            ("Search for quantity in the code", "grep -rn quantity src")]),
    *_write(["Make a new file {f} containing: {c}", "Create the file {f} with: {c}"],
            [("ideas.md", "faster reports"), ("docs/api.md", "# API"),
             ("src/inventory/units.py", "GRAMS = 1"), ("data/skus.txt", "a1"),
             ("LICENSE", "MIT"), ("scripts/clean.sh", "rm -rf build")]),
    *_edit(["In {f}, change `{a}` to `{b}`", "Edit {f}: replace `{a}` with `{b}`"],
           [("src/inventory/reports.py", "threshold=5", "threshold=10"),
            ("src/inventory/models.py", "quantity: int = 0", "quantity: int = 1"),
            ("Makefile", "pytest -q", "pytest -x"),
            ("docs/changelog.md", "0.3.1", "0.3.2"),
            ("src/inventory/cli.py", "total value", "stock value"),
            ("scripts/release.sh", "set -e", "set -eu")]),
    *_fetch(["Fetch {u} and summarize it", "Get {u} for me"],
            ["https://docs.python.org/3/library/json.html", "https://example.com/pricing",
             "https://pip.pypa.io/en/stable/", "https://example.org/faq",
             "https://docs.python.org/3/library/pathlib.html", "https://keepachangelog.com/"]),
    *_plain([("What is a Python generator?", "A function that yields values one at a time."),
             ("What does HTTP status 500 mean?", "Internal Server Error."),
             ("What is the difference between a set and a list?",
              "A set has no order and no duplicates."),
             ("What does git commit do?", "It records the staged changes in the history."),
             ("What is 7 times 8?", "56"), ("Say goodbye", "Goodbye!"),
             ("What does API stand for?", "Application Programming Interface."),
             ("What is a Python module?", "A file of Python code that can be imported."),
             ("What is the capital of Italy?", "Rome."),
             ("What is a linter?", "A tool that checks code for errors and style problems."),
             ("Thank you!", "You're welcome."),
             ("What does SQL stand for?", "Structured Query Language.")]),
]  # fmt: skip


def take(tasks: list[Task], n: int | None) -> list[Task]:
    """`n` tasks (all when None), round-robin over kinds so every kind keeps its share."""
    if n is None or n >= len(tasks):
        return list(tasks)
    by_kind: dict[str, list[Task]] = {}
    for task in tasks:
        by_kind.setdefault(task.kind, []).append(task)
    mixed = [t for group in itertools.zip_longest(*by_kind.values()) for t in group if t]
    return mixed[:n]
