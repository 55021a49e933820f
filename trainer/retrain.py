"""`loragate retrain`: store → dataset → LoRA → GGUF → checks → evaluation → candidate.

Each stage says what it is doing and how long it took; the first one that fails stops the
run with its one-line reason. The version is registered by the last step, in one transaction,
so a failure anywhere before leaves nothing half-registered (its files are removed too).
Registering it as a candidate is the deployment: serving gateways watch the registry and
load it beside the active version (`gateway/versions/rollout.py`).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import LoragateError
from gateway.store import Store
from gateway.versions.registry import ALL, Registry, Version, file_record
from trainer.evaluation import (
    SUITES,
    SuiteRun,
    fresh_process,
    gate,
    items_of,
    paired,
    right_rate,
    run_suite,
    store_run,
    stored_run,
)
from trainer.lora import base_model as bases

if TYPE_CHECKING:
    from gateway.versions.ollama_tags import OllamaDeployer

STAGES = ("dataset", "train", "export", "evaluate", "deploy", "register")


@dataclass
class RetrainResult:
    dataset: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    version: Version | None = None
    active: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether the version may take live traffic (no gate run: yes)."""
        return bool(self.metrics.get("gate", {}).get("admitted", True))

    def summary(self) -> str:
        counts = self.dataset["counts"]
        lines = [
            f"data: dataset {self.dataset['hash']}: {counts['train']} train / {counts['eval']} "
            f"eval examples, ~{self.dataset['tokens']['train_target']:,} tokens trained on",
            "time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
            + f" (total {sum(self.seconds.values()):.0f} s)",
        ]  # fmt: skip
        m = self.metrics
        if m.get("eval_loss") is not None:
            others = [f"{name} {m[key]:.3f}" for key, name in
                      (("active_eval_loss", f"active {self.active}"), ("base_eval_loss", "base"))
                      if m.get(key) is not None]  # fmt: skip
            lines.append(f"eval loss {m['eval_loss']:.3f}" + (f" ({', '.join(others)})"
                                                             if others else ""))  # fmt: skip
        for suite in ("held_out", "general"):
            if suite in m:
                mine, theirs = m[suite]["right"], m[suite]["active_right"]
                lines.append(f"{suite.replace('_', '-')}: right {mine:.1%} vs {theirs:.1%} for "
                             f"{self.active} ({m[suite]['n']} items)")  # fmt: skip
        if "gate" in m:
            skipped = " (gate off)" if m["gate"]["verdict"] == "failed" and self.passed else ""
            lines.append(f"{m['gate']['reason']}{skipped}")
        if self.version is not None:
            role = "candidate beside" if self.passed else "failed; still served:"
            lines.append(
                f"{self.version.name}: {role} {self.active} "
                f"({self.version.size / 1e6:.0f} MB {self.version.files['gguf']['path']})"
            )
        return "\n".join(lines)


def retrain(
    home: Path,
    store: Store,
    gguf: Path,
    base_name: str,
    *,
    workload: str | None = None,
    engine: str = "torch",
    overrides: dict[str, Any] | None = None,
    dry_run: bool = False,
    gated: bool = True,
    quant: str = "Q4_K_M",
    ollama: OllamaDeployer | None = None,
    say: Callable[[str], None] | None = None,
) -> RetrainResult:
    """`quant`: how the served GGUF is quantized (`trainer/export/gguf.py`); `gated`: a version
    that fails the promotion gate is registered as `failed` (with False it becomes a candidate
    anyway, the gate's verdict recorded); `ollama`: also create the candidate there (before
    registering it, so that a failure there leaves nothing registered)."""
    from trainer.data.dataset import BuildOptions, build, gguf_token_counter
    from trainer.export.gguf import export
    from trainer.lora.train import eval_loss, train_run

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    registry = Registry(store, home)
    registry.ensure_base(gguf, base_name)
    lane = workload or ALL
    active = registry.active(base_name, lane)
    seconds: dict[str, float] = {}

    stages = [s for s in STAGES if s != "deploy" or ollama is not None]
    suite_runs: dict[str, tuple[SuiteRun, SuiteRun]] = {}

    def stage(name: str) -> _Stage:
        return _Stage(name, stages, seconds, say)

    with stage("dataset"):
        options = BuildOptions(workloads=[workload] if workload else [])
        dataset = build(store, home, options, count_tokens=gguf_token_counter(gguf))
    result = RetrainResult(dataset.manifest, seconds, active=active.name if active else None)
    if dry_run:
        say("dry run: nothing trained or registered")
        return result
    with stage("train"):
        run = train_run(home, store, dataset=dataset.hash, base=gguf, engine=engine,
                        overrides=overrides)  # fmt: skip
    staging = registry.folder_for(base_name)
    planned: Version | None = None  # the version as pushed to Ollama
    try:
        with stage("export"):
            artifacts = export(run.adapter, bases.resolve(gguf, home), staging, home=home,
                               reference_gguf=gguf, quant=quant, say=say)  # fmt: skip
        with stage("evaluate"):
            # The held-out split's loss (the new adapter's, the base's, the active trained
            # version's), then the suites against the active version and the promotion gate.
            result.metrics = {
                "eval_loss": run.metrics.get("eval_loss"),
                "base_eval_loss": run.metrics.get("base_eval_loss"),
                "train_loss": run.metrics.get("train_loss"),
                "checks": artifacts.checks,
            }
            if active is not None and "peft" in active.files:
                result.metrics["active_eval_loss"] = eval_loss(
                    home, dataset.hash, gguf, Path(active.files["peft"]["path"])
                )
            if active is not None:
                suite_runs = _suites(registry, artifacts.gguf, active, dataset.hash, say)
                result.metrics.update(_gate_metrics(suite_runs, gated))
        if not result.passed:
            ollama = None  # a version that failed the gate is kept, not deployed
        if ollama is not None:
            with stage("deploy"):
                number = registry.next_number(base_name)
                planned = Version(
                    name=f"{base_name}@v{number}", base=base_name, number=number,
                    files={"gguf": file_record(artifacts.gguf)}, created_at=time.time(),
                )  # fmt: skip
                say(f"Ollama: created {ollama.push(planned, lane)}")
        with stage("register"):
            result.version = registry.add(
                base_name, staging,
                {"gguf": artifacts.gguf, "adapter_gguf": artifacts.adapter_gguf,
                 "peft": artifacts.peft},
                workload=lane, state="candidate" if result.passed else "failed",
                reason=result.metrics.get("gate", {}).get("reason") or "retrained",
                parent=active.name if active else None, run_id=run.id,
                dataset_hash=dataset.hash, metrics=result.metrics,
            )  # fmt: skip
            for mine, _ in suite_runs.values():
                mine.version = result.version.name
                store_run(registry.store, mine)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if planned is not None and ollama is not None and result.version is None:
            with contextlib.suppress(LoragateError):
                ollama.remove(planned.name)
        raise
    if planned is not None and result.version is not None and result.version.name != planned.name:
        raise LoragateError(
            f"registered as {result.version.name} while another retrain ran; Ollama has it "
            f"as {planned.name}: run `loragate models promote` or `rollback` to resynchronize"
        )
    return result


class _Stage:
    def __init__(
        self, name: str, stages: list[str], seconds: dict[str, float], say: Callable[[str], None]
    ) -> None:
        self.name, self.stages, self.seconds, self.say = name, stages, seconds, say

    def __enter__(self) -> None:
        self.started = time.perf_counter()
        self.say(f"[{self.stages.index(self.name) + 1}/{len(self.stages)}] {self.name} ...")

    def __exit__(self, kind: type | None, *_: object) -> None:
        elapsed = time.perf_counter() - self.started
        self.seconds[self.name] = round(elapsed, 1)
        if kind is not None and kind is not KeyboardInterrupt:
            self.say(f"{self.name} failed after {elapsed:.0f} s")


def _suites(
    registry: Registry, candidate: Path, active: Version, dataset_hash: str,
    say: Callable[[str], None],
) -> dict[str, tuple[SuiteRun, SuiteRun]]:  # fmt: skip
    """The held-out and general suites on the candidate's GGUF and on the active version (its
    stored run on the same items when there is one)."""
    runs = {}
    with fresh_process() as worker:  # llama.cpp is slower where torch has trained
        for suite in SUITES:
            items = items_of(registry.home, suite, dataset_hash)
            mine = run_suite("candidate", candidate, suite, items, worker=worker)
            theirs = stored_run(registry.store, active.name, suite, mine.items_hash)
            if theirs is not None:
                say(f"  {active.name} {suite}: its earlier run on these items")
            else:
                theirs = run_suite(active.name, active.gguf, suite, items, worker=worker)
                store_run(registry.store, theirs)
            runs[suite] = (mine, theirs)
    return runs


def _gate_metrics(runs: dict[str, tuple[SuiteRun, SuiteRun]], gated: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for suite, (mine, theirs) in runs.items():
        out[suite.replace("-", "_")] = {"n": len(mine.scores), "right": right_rate(mine.scores),
                                         "active_right": right_rate(theirs.scores),
                                         "paired": paired(mine.scores, theirs.scores),
                                         "metrics": mine.metrics}  # fmt: skip
    verdict, reason = gate(out["held_out"]["paired"],
                           (runs["general"][0].scores, runs["general"][1].scores))  # fmt: skip
    out["gate"] = {"verdict": verdict, "passed": verdict == "better",
                   "admitted": verdict != "failed" or not gated, "reason": reason}  # fmt: skip
    # where live routing starts (`gateway/versions/live.py`): both versions on the held-out items
    out["held_out"]["against"] = runs["held-out"][1].version
    return out
