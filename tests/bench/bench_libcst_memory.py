"""The LibCST agent's success memory, collected: how fast, and that a second run adds nothing.

Prints, measured in one run, for `loragate collect libcst` over 10,000 memory lines (the
issue's bar: under 5 s) into a SQLite store holding 3,000 recorded `libcst` answers, with
1,000 scripts under `.autopatches/`: a third of the lines name a recorded answer's script, a
third a patch-set file, a third nothing that exists:
  - seconds and lines/s of the first run, what it found;
  - seconds of a second run, and that it added no row.

    python tests/bench/bench_libcst_memory.py [--lines 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from collectors.libcst_agent import MemoryFiles, collect
from gateway.store import Store
from tests.support.libcst_agent import rename_script
from tests.support.recordings import chat, record

ANSWERS = 3_000
PATCHES = 1_000
TABLES = ("interactions", "outcomes", "agent_memory", "collected_lines")


def fenced(script: str) -> str:
    return f"Here it is:\n```python\n{script}```"


def build(root: Path, lines: int) -> tuple[Path, Path]:
    home, project = root / "home", root / "project"
    asked = [
        chat(f"ia_{n}", f"Write a LibCST script renaming f{n}",
             fenced(rename_script(f"f{n}", f"g{n}")), 1_700_000_000 + n, workload="libcst")
        for n in range(ANSWERS)
    ]  # fmt: skip
    asyncio.run(record(home, asked, []))
    for n in range(PATCHES):
        folder = project / ".autopatches" / f"set-{n}"
        folder.mkdir(parents=True)
        (folder / "transform.py").write_text(rename_script(f"p{n}", f"q{n}"), encoding="utf-8")
    memory = project / ".agent_data" / "success_memory.jsonl"
    memory.parent.mkdir(parents=True)
    with memory.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            kind = i % 3
            if kind == 0:
                script = rename_script(f"f{i % ANSWERS}", f"g{i % ANSWERS}")
            elif kind == 1:
                script = rename_script(f"p{i % PATCHES}", f"q{i % PATCHES}")
            else:
                script = f"# gone {i}\n"
            line = {
                "timestamp_utc": "2026-11-26T08:00:00+00:00", "spec_issue_id": f"I-{i}",
                "spec_issue_description": f"Rename for issue {i}.",
                "spec_target_files": [f"mod{i}.py"], "spec_operations_summary": ["rename"],
                "successful_diff_summary": "-def f():\n+def g():\n",
                "successful_script_hash": hashlib.sha256(script.encode()).hexdigest(),
                "patch_source": "LLMCore_generate",
            }  # fmt: skip
            fh.write(json.dumps(line) + "\n")
    return home, project


def counts(store: Store) -> dict[str, int]:
    return {t: store.one(f"SELECT count(*) FROM {t}")[0] for t in TABLES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home, project = build(Path(tmp), args.lines)
        store = Store(home / "store.db")
        try:
            started = time.perf_counter()
            report = collect(store, MemoryFiles.open(project, home))
            first = time.perf_counter() - started
            after_first = counts(store)
            started = time.perf_counter()
            again = collect(store, MemoryFiles.open(project, home))
            second = time.perf_counter() - started
            after_second = counts(store)
        finally:
            store.close()
    print(f"collect libcst, {args.lines:,} memory lines ({ANSWERS:,} recorded answers, "
          f"{PATCHES:,} patch-set scripts): {first:.2f} s, {args.lines / first:,.0f} lines/s "
          f"(target: under 5 s)")  # fmt: skip
    print(f"  {report}")
    print(f"second run: {second:.2f} s, {again}; rows added: "
          f"{ {t: after_second[t] - after_first[t] for t in TABLES} }")  # fmt: skip


if __name__ == "__main__":
    main()
