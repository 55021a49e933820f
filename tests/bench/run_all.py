"""Run every benchmark and print its figures: `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

RUNS = [
    ["bench_proxy.py"],
    ["bench_engine.py"],
    ["bench_recorder.py"],
    ["bench_dataset.py"],
    ["bench_devdata.py"],
    ["bench_libcst_memory.py"],
    ["bench_docs.py"],
    ["bench_train.py", "throughput"],
    ["bench_train.py", "prefix"],
    ["bench_routing.py"],
    ["bench_swap.py"],
    ["bench_retrain.py"],
    ["bench_taught_fact.py"],
    ["bench_threads.py"],
    ["bench_soak.py"],
    ["bench_flywheel.py"],
]

if __name__ == "__main__":
    for script, *args in RUNS:
        print(f"== {script} {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *args], check=True)
