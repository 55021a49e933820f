"""LibCST transformer scripts as training data and as answers to score.

A target of the `libcst` workload is learned only if its script parses (with libcst) and
defines a transformer class; evaluation runs a script on the target file in a separate Python
process (model-written code, with a time limit) and compares the change with the recorded diff.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from typing import Any

from gateway.prompts.scripts import fenced_blocks, script_in

WORKLOAD = "libcst"
TRANSFORMER_BASES = frozenset({
    "CSTTransformer", "MatcherDecoratableTransformer", "ContextAwareTransformer",
    "VisitorBasedCodemodCommand", "Codemod", "CodemodCommand",
})  # fmt: skip
TRACEBACK = "Traceback (most recent call last)"


def script_problem(answer: str) -> str | None:
    """Why an answer's script is unfit to learn, or None."""
    import libcst as cst

    script = script_in(answer)
    if script is None:
        return "the answer carries no script"
    try:
        module = cst.parse_module(script)
    except cst.ParserSyntaxError as exc:
        return f"the script does not parse: {exc.message.splitlines()[0]}"
    for node in module.body:
        if isinstance(node, cst.ClassDef) and any(
            _last_name(base.value) in TRANSFORMER_BASES for base in node.bases
        ):
            return None
    return "the script defines no LibCST transformer class (a cst.CSTTransformer subclass)"


def _last_name(expression: Any) -> str:
    """`cst.CSTTransformer` → `CSTTransformer`; `CSTTransformer` → itself."""
    import libcst as cst

    if isinstance(expression, cst.Attribute):
        return expression.attr.value
    if isinstance(expression, cst.Name):
        return expression.value
    return ""


def target_source(messages: list[dict[str, Any]]) -> str | None:
    """The file the agent asked to change, as its first request quotes it: the first fenced
    block of a user message that is not itself a LibCST script."""
    for message in messages:
        if message.get("role") != "user":
            continue
        for block in fenced_blocks(message.get("content") or ""):
            if "libcst" not in block:
                return block
    return None


def is_repair(messages: list[dict[str, Any]], target: int) -> bool:
    """Whether a target answer follows a traceback sent back for an earlier script."""
    before = [m for m in messages[:target] if m.get("role") == "user"]
    return bool(before) and TRACEBACK in (before[-1].get("content") or "")


# Run in a fresh interpreter: the script's transformer on the source, the result as JSON.
_RUNNER = """
import json, sys
import libcst as cst
job = json.load(sys.stdin)
namespace = {}
exec(compile(job["script"], "<script>", "exec"), namespace)
bases = (cst.CSTTransformer,)
found = [v for v in namespace.values() if isinstance(v, type) and issubclass(v, bases)
         and v.__module__ != "libcst" and not v.__module__.startswith("libcst.")]
if not found:
    raise SystemExit("the script defines no cst.CSTTransformer subclass")
print(json.dumps(cst.parse_module(job["source"]).visit(found[0]()).code))
"""


def apply(script: str, source: str, timeout: float = 20.0) -> str | None:
    """`source` after `script`'s transformer, run in another Python process; None when the
    script fails or runs over `timeout` seconds."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RUNNER],
            input=json.dumps({"script": script, "source": source}),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout) if done.returncode == 0 else None


def changed_lines(before: str, after: str) -> list[str]:
    """The removed and added lines of a change, as a unified diff lists them."""
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
    return [line for line in diff
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]  # fmt: skip
