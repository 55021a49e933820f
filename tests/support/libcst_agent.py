"""A small LibCST code-repair agent that works as the real one does, and a scripted model for it.

The agent asks the model (through the gateway, with the `openai` SDK) for a LibCST transformer
script, runs it with libcst on the target file, sends the traceback back when it fails, and
when a script validates it writes the file, saves the patch set under `.autopatches/<issue>/`
and appends a line to `.agent_data/success_memory.jsonl` with the seed's fields.

`script_writer` stands in for a model that can write such scripts (the 135M default cannot):
its first script for a rename is wrong in a realistic way for some issues (a misspelt keyword,
an attribute that does not exist) and right once it has seen the traceback; for an issue that
asks for something it cannot do, every script fails.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import libcst as cst

SYSTEM = (
    "You are a code-repair assistant. You write LibCST transformer scripts: Python that "
    "imports libcst as cst and defines one cst.CSTTransformer subclass. Answer with the script "
    "in a single ```python block."
)


@dataclass(frozen=True)
class Issue:
    id: str
    file: str
    old: str
    new: str

    @property
    def description(self) -> str:
        return f"Rename the function `{self.old}` to `{self.new}` in {self.file}, calls included."


def ask(issue: Issue, source: str) -> str:
    return (
        f"Issue {issue.id}: {issue.description}\n\nTarget file {issue.file}:\n```python\n"
        f"{source}```\n\nWrite a LibCST transformer script for this change."
    )


def retry(failure: str) -> str:
    return (
        f"The script failed when run on the target file:\n```\n{failure}```\n"
        "Fix the script and answer with the whole corrected script."
    )


def apply_script(script: str, source: str) -> str:
    """Run a transformer script on `source` as the agent validates it; raises on any failure."""
    namespace: dict[str, Any] = {}
    exec(compile(script, "<script>", "exec"), namespace)  # the agent runs the model's script
    classes = [v for v in namespace.values()
               if isinstance(v, type) and issubclass(v, cst.CSTTransformer)
               and v is not cst.CSTTransformer]  # fmt: skip
    if not classes:
        raise ValueError("the script defines no cst.CSTTransformer subclass")
    changed = cst.parse_module(source).visit(classes[0]()).code
    if changed == source:
        raise ValueError("the transformer changed nothing")
    compile(changed, "<changed>", "exec")
    return changed


def extract(answer: str) -> str:
    match = re.search(r"```(?:python)?\n(.*?)```", answer, re.DOTALL)
    return match.group(1) if match else answer


class RepairAgent:
    def __init__(self, client: Any, project: Path, *, model: str = "libcst", attempts: int = 3):
        self.client, self.project, self.model, self.attempts = client, project, model, attempts

    def fix(self, issue: Issue) -> bool:
        path = self.project / issue.file
        source = path.read_text(encoding="utf-8")
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": ask(issue, source)}]  # fmt: skip
        for attempt in range(self.attempts):
            answer = (
                self.client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0
                )
                .choices[0]
                .message.content
                or ""
            )
            script = extract(answer)
            try:
                changed = apply_script(script, source)
            except Exception:
                failure = traceback.format_exc()
                messages += [{"role": "assistant", "content": answer},
                             {"role": "user", "content": retry(failure)}]  # fmt: skip
                continue
            self._succeed(issue, source, changed, script, attempt)
            return True
        return False

    def _succeed(self, issue: Issue, source: str, changed: str, script: str, attempt: int) -> None:
        path = self.project / issue.file
        diff = "".join(difflib.unified_diff(source.splitlines(True), changed.splitlines(True),
                                            f"a/{issue.file}", f"b/{issue.file}"))  # fmt: skip
        path.write_text(changed, encoding="utf-8")
        patches = self.project / ".autopatches" / issue.id
        patches.mkdir(parents=True, exist_ok=True)
        (patches / "transform.py").write_text(script, encoding="utf-8")
        (patches / "changes.diff").write_text(diff, encoding="utf-8")
        stage = (
            "LLMCore_generate" if attempt == 0 else f"LLMCore_polish_after_repair_attempt_{attempt}"
        )
        line = {
            "timestamp_utc": datetime.now(UTC).isoformat(),
            "spec_issue_id": issue.id,
            "spec_issue_description": issue.description,
            "spec_target_files": [issue.file],
            "spec_operations_summary": [f"rename function {issue.old} -> {issue.new}"],
            "successful_diff_summary": diff[:1000],
            "successful_script_hash": hashlib.sha256(script.encode()).hexdigest(),
            "patch_source": stage,
        }
        memory = self.project / ".agent_data" / "success_memory.jsonl"
        memory.parent.mkdir(parents=True, exist_ok=True)
        with memory.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


def rename_script(old: str, new: str, *, mistake: str | None = None) -> str:
    """A rename transformer; `mistake` makes it fail the way model-written scripts do."""
    keyword = "nmae" if mistake == "keyword" else "name"
    attribute = "identifier" if mistake == "attribute" else "value"
    return f'''import libcst as cst


class Rename{new.title().replace("_", "")}(cst.CSTTransformer):
    def leave_FunctionDef(self, original_node, updated_node):
        if updated_node.name.{attribute} == "{old}":
            return updated_node.with_changes({keyword}=cst.Name("{new}"))
        return updated_node

    def leave_Call(self, original_node, updated_node):
        if isinstance(updated_node.func, cst.Name) and updated_node.func.value == "{old}":
            return updated_node.with_changes(func=cst.Name("{new}"))
        return updated_node
'''


MISTAKES = ("keyword", "attribute", None)


def script_writer(messages: list[dict[str, Any]]) -> str:
    """The scripted model: reads the issue from the first request, the traceback from a retry."""
    asked = next(m["content"] for m in messages if m["role"] == "user")
    found = re.search(r"Issue (\S+): Rename the function `(\w+)` to `(\w+)`", asked)
    if found is None:
        return "I can only rename functions."
    issue, old, new = found.groups()
    retried = "Traceback" in messages[-1]["content"]
    number = int(re.sub(r"\D", "", issue) or 0)
    if number % 7 == 6:  # beyond this model: the same wrong script every time
        script = rename_script(old, new, mistake="attribute")
    elif retried:
        script = rename_script(old, new)
    else:
        script = rename_script(old, new, mistake=MISTAKES[number % 3])
    return (
        f"Here is the transformer:\n```python\n{script}```\nIt renames the function and its calls."
    )
