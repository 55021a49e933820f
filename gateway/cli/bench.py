"""`loragate bench NAME`: a benchmark of this checkout (tests/bench)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from gateway.errors import LoragateError

BENCH_DIR = Path(__file__).resolve().parents[2] / "tests" / "bench"


def add_parser(sub: argparse._SubParsersAction) -> None:
    names = sorted(f.stem.removeprefix("bench_") for f in BENCH_DIR.glob("bench_*.py"))
    p = sub.add_parser(
        "bench",
        help="run a benchmark of this checkout (tests/bench): " + ", ".join(names),
        description="Run tests/bench/bench_NAME.py of the loragate checkout; ARGS go to it "
        "(`loragate bench flywheel --help` lists its own).",
    )
    p.add_argument("name", metavar="NAME", help=f"one of: {', '.join(names) or '(none here)'}")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the benchmark's flags")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> None:
    script = BENCH_DIR / f"bench_{args.name}.py"
    if not script.is_file():
        where = f"{BENCH_DIR} has no {script.name}" if BENCH_DIR.is_dir() else (
            f"benchmarks run from a loragate checkout ({BENCH_DIR} is missing)")  # fmt: skip
        raise LoragateError(where)
    done = subprocess.run([sys.executable, str(script), *args.args], check=False)
    if done.returncode != 0:
        raise LoragateError(f"bench {args.name} failed (exit {done.returncode})")
