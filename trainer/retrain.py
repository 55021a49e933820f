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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import LoragateError
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
from trainer.progress import Say, Stage, to_stderr

if TYPE_CHECKING:
    from gateway.versions.ollama_tags import OllamaDeployer
    from trainer.export.gguf import Artifacts
    from trainer.lora.runs import Run

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


@dataclass(frozen=True)
class RetrainOptions:
    """What `loragate retrain` was asked for. `quant`: how the served GGUF is quantized (None:
    by the base's size, `quant_for`);
    `gated`: a version that fails the promotion gate is registered as `failed` (with False it
    becomes a candidate anyway, the gate's verdict recorded); `llama_cpp_dir`: a llama.cpp
    checkout whose converters export uses; `recipe_file`: hyperparameters over the defaults
    (the command line's `overrides` over both)."""

    workload: str | None = None
    engine: str = "torch"
    overrides: dict[str, Any] = field(default_factory=dict)
    recipe_file: Path | None = None
    dry_run: bool = False
    gated: bool = True
    quant: str | None = None
    llama_cpp_dir: Path | None = None
    eval_fraction: float = 0.1  # of each workload's conversations, held out for evaluation


def retrain(
    registry: Registry, gguf: Path, base_name: str, options: RetrainOptions = RetrainOptions(),
    *, ollama: OllamaDeployer | None = None, say: Say = to_stderr,
) -> RetrainResult:  # fmt: skip
    """The stages in order, on the store of `registry`. With `ollama`, the candidate is also
    created there (before registering it, so that a failure there leaves nothing registered)."""
    registry.ensure_base(gguf, base_name)
    return _Retrain(registry, gguf, base_name, options, ollama, say).run()


class _Retrain:
    def __init__(self, registry: Registry, gguf: Path, base_name: str, options: RetrainOptions,
                 ollama: OllamaDeployer | None, say: Say) -> None:  # fmt: skip
        self.registry, self.gguf, self.base_name = registry, gguf, base_name
        self.options, self.ollama, self.say = options, ollama, say
        self.home, self.store = registry.home, registry.store
        self.lane = options.workload or ALL
        self.active = registry.active(base_name, self.lane)
        self.seconds: dict[str, float] = {}
        self.stages = [s for s in STAGES if s != "deploy" or ollama is not None]
        self.suite_runs: dict[str, tuple[SuiteRun, SuiteRun]] = {}
        self.planned: Version | None = None  # the version as pushed to Ollama

    def stage(self, name: str) -> Stage:
        label = f"[{self.stages.index(name) + 1}/{len(self.stages)}] {name}"
        return Stage(name, self.seconds, self.say, label=label)

    def run(self) -> RetrainResult:
        from trainer.data.dataset import BuildOptions, build, gguf_token_counter
        from trainer.lora.train import train_run

        with self.stage("dataset"):
            workloads = [self.options.workload] if self.options.workload else []
            dataset = build(self.store, self.home, BuildOptions(workloads=workloads,
                            eval_fraction=self.options.eval_fraction),
                            count_tokens=gguf_token_counter(self.gguf))  # fmt: skip
        active = self.active.name if self.active else None
        result = RetrainResult(dataset.manifest, self.seconds, active=active)
        if self.options.dry_run:
            self.say("dry run: nothing trained or registered")
            return result
        with self.stage("train"):
            options = self.options
            run = train_run(self.home, self.store, dataset=dataset.hash, base=self.gguf,
                            engine=options.engine, recipe_file=options.recipe_file,
                            overrides=options.overrides)  # fmt: skip
        staging = self.registry.folder_for(self.base_name)
        try:
            self._make(result, run, dataset.hash, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if self.planned is not None and self.ollama is not None and result.version is None:
                with contextlib.suppress(LoragateError):
                    self.ollama.remove(self.planned.name)
            raise
        if self.planned is not None and result.version is not None and (
                result.version.name != self.planned.name):  # fmt: skip
            raise LoragateError(
                f"registered as {result.version.name} while another retrain ran; Ollama has it "
                f"as {self.planned.name}: run `loragate models promote` or `rollback` to "
                "resynchronize"
            )
        return result

    def _make(self, result: RetrainResult, run: Run, dataset_hash: str, staging: Path) -> None:
        """Export, evaluate, deploy and register: everything after training that leaves files."""
        from trainer.export.gguf import ExportOptions, export, quant_for

        with self.stage("export"):
            base_dir = bases.resolve(self.gguf, self.home)
            quant = self.options.quant or quant_for(bases.count_parameters(base_dir))
            options = ExportOptions(quant=quant, reference_gguf=self.gguf,
                                    llama_cpp_dir=self.options.llama_cpp_dir)  # fmt: skip
            artifacts = export(run.adapter, base_dir, staging, self.home, options, self.say)
        with self.stage("evaluate"):
            result.metrics = self._evaluate(run, artifacts, dataset_hash)
        if self.ollama is not None and result.passed:  # a failed version is kept, not deployed
            with self.stage("deploy"):
                self._deploy(artifacts)
        with self.stage("register"):
            result.version = self.registry.add(
                self.base_name, staging,
                {"gguf": artifacts.gguf, "adapter_gguf": artifacts.adapter_gguf,
                 "peft": artifacts.peft},
                workload=self.lane, state="candidate" if result.passed else "failed",
                reason=result.metrics.get("gate", {}).get("reason") or "retrained",
                parent=self.active.name if self.active else None, run_id=run.id,
                dataset_hash=dataset_hash, metrics=result.metrics,
            )  # fmt: skip
            for mine, _ in self.suite_runs.values():
                mine.version = result.version.name
                store_run(self.store, mine)

    def _evaluate(self, run: Run, artifacts: Artifacts, dataset_hash: str) -> dict[str, Any]:
        """The held-out split's loss (the new adapter's, the base's, the active trained
        version's), then the suites against the active version and the promotion gate."""
        from trainer.lora.train import eval_loss

        metrics: dict[str, Any] = {
            "eval_loss": run.metrics.get("eval_loss"),
            "base_eval_loss": run.metrics.get("base_eval_loss"),
            "train_loss": run.metrics.get("train_loss"),
            "checks": artifacts.checks,
        }
        active = self.active
        if active is not None and "peft" in active.files:
            adapter = Path(active.files["peft"]["path"])
            metrics["active_eval_loss"] = eval_loss(self.home, dataset_hash, self.gguf, adapter)
        if active is not None:
            self.suite_runs = _suites(self.registry, artifacts.gguf, active, dataset_hash,
                                      self.say)  # fmt: skip
            metrics.update(_gate_metrics(self.suite_runs, self.options.gated))
        return metrics

    def _deploy(self, artifacts: Artifacts) -> None:
        assert self.ollama is not None
        number = self.registry.next_number(self.base_name)
        self.planned = Version(
            name=f"{self.base_name}@v{number}", base=self.base_name, number=number,
            files={"gguf": file_record(artifacts.gguf)}, created_at=time.time(),
        )  # fmt: skip
        self.say(f"Ollama: created {self.ollama.push(self.planned, self.lane)}")


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
