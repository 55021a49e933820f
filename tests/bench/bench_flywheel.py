"""The loop on a real client's traffic: a day of Continue CLI work, corrected, makes the next
day's work right. `loragate bench flywheel` runs this file.

    python tests/bench/bench_flywheel.py [--day-one N] [--day-two N] [--out DIR] [-- retrain flags]

A copy of `tests/fixtures/flywheel_repo` (a git repository) is the developer's project. The
real Continue CLI (`cn -p TASK --config ... --auto`) runs each day-one task through
`loragate serve` on the embedded default model; a scripted developer who knows the call each
task should start with reads the first step cn's model took (from the gateway's store), accepts
it when it is that call and otherwise posts the call (or, for a plain question, the answer) it
wanted to `/v1/feedback`, as a structured correction. Only the first step is judged: the
developer stops cn there (as one presses Esc on a wrong step), and the project is reset
between tasks. Then `loragate retrain`, with the user's defaults. Then the day-two tasks (other
files, folders, words and phrasings, plain questions), answered through cn by the base version
and by the new one, each pinned by name (`model@vN`), after the retrain, so nothing of day two
is ever trained on.

Prints, for both versions, with Wilson 95 % intervals: right tool, full call (the arguments
exactly), valid JSON (of the calls attempted), no call on plain questions; the general set;
the time of each stage. Writes `flywheel.json` and `flywheel.png` into `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import httpx

from gateway.versions.bandit import wilson
from tests.support.flywheel_tasks import DAY_ONE, DAY_TWO, FIXTURE_REPO, Task, take
from tests.support.servers import REPO, gateway

BASE = "smollm2-135m-instruct"
TARGETS = {"right_tool": 0.95, "full_call": 0.90, "valid_json": 1.0, "no_call": 0.95}
TASK_TIMEOUT_S = 240
# A first step still running after this long is not a tool call (one takes a few seconds):
# the developer stops cn, as one presses Esc on an agent that rambles; the gateway records
# what was said so far, and the developer judges that.
PATIENCE_S = 15
# cn writes the working directory into its system prompt: the project lives at one path.
PROJECT = Path(tempfile.gettempdir()) / "loragate-flywheel" / "inventory"

CN_CONFIG = """\
name: flywheel
version: 0.0.1
schema: v1
models:
  - name: loragate
    provider: openai
    model: {model}
    apiBase: {url}/v1/
    apiKey: none
    roles: [chat]
    capabilities: [tool_use]
"""


@dataclass
class Step:
    """The first step cn's model took on a task, as the gateway recorded it."""

    task: Task
    interaction_id: str
    version: str
    text: str
    calls: list[dict[str, Any]]
    seconds: float

    @property
    def attempted(self) -> bool:
        return bool(self.calls) or "<tool_call>" in self.text

    @property
    def valid_json(self) -> bool:
        """Every call attempted parsed, with a JSON object as its arguments."""
        if "<tool_call>" in self.text:  # a block the gateway could not parse as a call
            return False
        return all(_json_object(c["arguments"]) is not None for c in self.calls)

    @property
    def tool(self) -> str | None:
        return self.calls[0]["name"] if self.calls else None

    @property
    def right_tool(self) -> bool:
        return self.task.tool is not None and self.tool == self.task.tool

    @property
    def full_call(self) -> bool:
        return self.right_tool and _json_object(self.calls[0]["arguments"]) == self.task.arguments

    @property
    def no_call(self) -> bool:
        return not self.attempted

    @property
    def as_wanted(self) -> bool:
        """The call wanted, arguments exact; for a plain question, no call."""
        return self.full_call if self.task.tool else self.no_call


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _cn() -> str:
    local = REPO / "node_modules" / ".bin" / "cn"
    found = shutil.which("cn") or (str(local) if local.exists() else None)
    if found is None:
        raise SystemExit("the Continue CLI is missing: run `make test` (it installs it)")
    return found


class Project:
    """The developer's repository: a git checkout of the fixture, reset after each task."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(REPO / FIXTURE_REPO, root)
        author = ["-c", "user.name=dev", "-c", "user.email=dev@example.com"]
        for argv in (["init", "-q"], ["add", "-A"], [*author, "commit", "-qm", "inventory 0.3.1"]):
            subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True)

    def reset(self) -> None:
        for argv in (["checkout", "-q", "--", "."], ["clean", "-qfd"]):
            subprocess.run(["git", *argv], cwd=self.root, check=True, capture_output=True)


class ContinueCLI:
    """`cn -p TASK --auto` in the project, against the gateway, with one model name."""

    def __init__(self, url: str, store: Path, project: Project, scratch: Path) -> None:
        self.url, self.store, self.project, self.scratch = url, store, project, scratch
        self.cn = _cn()

    def first_step(self, task: Task, model: str) -> Step:
        """Run cn on `task` until the gateway has recorded its first answer, then stop it."""
        config = self.scratch / f"{model.replace('@', '-')}.yaml"
        if not config.exists():
            config.write_text(CN_CONFIG.format(model=model, url=self.url), encoding="utf-8")
        since = time.time()
        process = subprocess.Popen(
            [self.cn, "-p", task.prompt, "--config", str(config), "--auto"],
            cwd=self.project.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "HOME": str(self.scratch)}, start_new_session=True,
        )  # fmt: skip
        try:
            row = self._wait_first(since, process, task.prompt)
        finally:
            _stop(process)
            self.project.reset()
        interaction_id, version, text, calls = row
        step = Step(task, interaction_id, version, text or "", json.loads(calls or "[]"),
                    time.time() - since)  # fmt: skip
        return step

    def _wait_first(
        self, since: float, process: subprocess.Popen, prompt: str
    ) -> tuple[str, str, str, str]:
        """The recorded answer to `prompt` as a first turn. Not merely the first record since
        the task began: cn under `--auto` runs a call at once and asks again with its result,
        and that follow-up, cut off when cn is stopped, can be recorded after the next task
        has begun."""
        started, stopped = time.monotonic(), False
        with sqlite3.connect(f"file:{self.store}?mode=ro", uri=True) as db:
            while time.monotonic() < started + TASK_TIMEOUT_S:
                rows = db.execute(
                    "SELECT id, version, response_text, tool_calls, request FROM interactions "
                    "WHERE created_at >= ? ORDER BY created_at",
                    (since,),
                ).fetchall()
                for *row, request in rows:
                    if _first_turn(request, prompt):
                        return row[0], row[1], row[2], row[3]
                if not stopped and process.poll() is not None and process.returncode != 0:
                    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    raise RuntimeError(f"cn exited {process.returncode}: {err[-800:]}")
                if not stopped and time.monotonic() > started + PATIENCE_S:
                    _stop(process)
                    stopped = True
                time.sleep(0.2)
        raise TimeoutError(f"no answer recorded within {TASK_TIMEOUT_S} s")


def _first_turn(request: str, prompt: str) -> bool:
    """Whether a recorded request asks `prompt` with nothing answered yet."""
    return first_task(json.loads(request).get("messages") or []) == prompt


def first_task(messages: list[dict[str, Any]]) -> str | None:
    """The text a conversation's user turn asks when nothing is answered yet, else None."""
    if not messages or any(m.get("role") in ("assistant", "tool") for m in messages):
        return None
    content = messages[-1].get("content")
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if messages[-1].get("role") == "user" else None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Developer:
    """Knows the first step each task needs; accepts it or says which it wanted."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        self.accepted = self.corrected = 0

    def judge(self, step: Step) -> None:
        right = step.full_call if step.task.tool else step.no_call and _same(step.text, step.task)
        body: dict[str, Any] = {"interaction_id": step.interaction_id, "accepted": right}
        if not right:
            body["correction"] = step.task.correction()
        reply = self.http.post("/v1/feedback", json=body)
        reply.raise_for_status()
        self.accepted += right
        self.corrected += not right


def _same(text: str, task: Task) -> bool:
    return text.strip().lower() == task.reference.strip().lower()


@dataclass
class Scores:
    version: str
    steps: list[Step] = field(default_factory=list)

    def rates(self) -> dict[str, dict[str, Any]]:
        tool_steps = [s for s in self.steps if s.task.tool]
        plain = [s for s in self.steps if not s.task.tool]
        attempted = [s for s in self.steps if s.attempted]
        return {
            "right_tool": _rate([s.right_tool for s in tool_steps]),
            "full_call": _rate([s.full_call for s in tool_steps]),
            "valid_json": _rate([s.valid_json for s in attempted]),
            "no_call": _rate([s.no_call for s in plain]),
        }

    def by_tool(self) -> dict[str, str]:
        out: dict[str, list[bool]] = {}
        for s in self.steps:
            out.setdefault(s.task.kind, []).append(s.as_wanted)
        return {k: f"{sum(v)}/{len(v)}" for k, v in sorted(out.items())}


def _rate(hits: list[bool]) -> dict[str, Any]:
    low, high = wilson(sum(hits), len(hits))
    return {"rate": sum(hits) / len(hits) if hits else None, "n": len(hits),
            "interval": [round(low, 3), round(high, 3)]}  # fmt: skip


def run_day(cli: ContinueCLI, tasks: list[Task], model: str, label: str,
            developer: Developer | None = None) -> Scores:  # fmt: skip
    scores = Scores(model)
    started = time.monotonic()
    for i, task in enumerate(tasks, 1):
        step = cli.first_step(task, model)
        scores.steps.append(step)
        if developer is not None:
            developer.judge(step)
        elapsed = time.monotonic() - started
        eta = elapsed / i * (len(tasks) - i)
        what = step.tool or ("(text)" if not step.attempted else "(invalid call)")
        print(f"\r{label}: {i}/{len(tasks)} tasks, {elapsed:.0f} s, ETA {eta:.0f} s; "
              f"last: {task.kind} → {what}   ", end="", file=sys.stderr, flush=True)  # fmt: skip
    print(file=sys.stderr)
    return scores


def retrain(home: Path, port: int, flags: list[str]) -> tuple[str, str]:
    """(the new version's name, retrain's report) — `loragate retrain` as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "retrain", "--home", str(home), *flags],
        stdout=subprocess.PIPE, text=True, check=False,
        env={**os.environ, "LORAGATE_PORT": str(port)},
    )  # fmt: skip
    print(done.stdout, end="")
    if done.returncode != 0:
        raise SystemExit(f"retrain failed (exit {done.returncode})")
    found = re.search(rf"({re.escape(BASE)}@v\d+): ", done.stdout)
    assert found is not None, done.stdout
    return found.group(1), done.stdout


def models(home: Path) -> dict[str, dict[str, Any]]:
    listed = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "models", "--home", str(home), "--json"],
        stdout=subprocess.PIPE, text=True, check=True,
    )  # fmt: skip
    return {v["name"]: v for v in json.loads(listed.stdout)}


def main(n_one: int | None, n_two: int | None, flags: list[str], out: Path,
         record: Path | None = None, replay: Path | None = None,
         work: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """`record`: keep a copy of the home after day one there; `replay`: start from such a
    copy instead of running day one (to compare retrain settings on the same day); `work`:
    where the gateway's home and logs go (a new temporary folder by default)."""
    one, two = take(DAY_ONE, n_one), take(DAY_TWO, n_two)
    tmp = Path(tempfile.mkdtemp(prefix="bench-flywheel-", dir=work))
    seconds: dict[str, float] = {}
    if replay is not None:
        shutil.copytree(replay, tmp / "home")
    with gateway(tmp, "--n-ctx", "4096") as server:
        assert server.home is not None
        cli = ContinueCLI(server.url, server.home / "store.db", Project(PROJECT), tmp)
        developer = Developer(server.url)
        started = time.monotonic()
        if replay is None:
            day_one = run_day(cli, one, "continue", "day one (cn, corrected)", developer)
            first = {"tasks": len(one), "accepted": developer.accepted,
                     "corrected": developer.corrected, **day_one.rates()}  # fmt: skip
            (server.home / "flywheel-day-one.json").write_text(json.dumps(first), "utf-8")
            if record is not None:
                _copy_home(server.home, record)
        else:
            first = json.loads((server.home / "flywheel-day-one.json").read_text("utf-8"))
        seconds["day_one"] = time.monotonic() - started
        started = time.monotonic()
        version, report = retrain(server.home, server.port, flags)
        seconds["retrain"] = time.monotonic() - started
        registered = models(server.home)[version]
        after = {}
        for name in (f"{BASE}@v0", version):
            started = time.monotonic()
            after[name] = run_day(cli, two, name, f"day two on {name}")
            seconds[f"day_two {name}"] = time.monotonic() - started
    stages = dict(re.findall(r"(\w+) (\d+) s", report.split("time: ")[1].splitlines()[0]))
    general = registered["metrics"].get("general", {})
    result = {
        "day_one": first,
        "day_two": {name: {**s.rates(), "by_kind": s.by_tool()} for name, s in after.items()},
        "version": version, "state": registered["states"]["*"]["state"],
        "general": {"right": general.get("right"), "base_right": general.get("active_right")},
        "gate": registered["metrics"].get("gate", {}).get("reason"),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "retrain_stages_s": {k: int(v) for k, v in stages.items()}, "targets": TARGETS,
        "steps": {name: [_step_row(s) for s in sc.steps] for name, sc in after.items()},
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "flywheel.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _plot(result, out / "flywheel.png")
    _print(result)
    return result


def _copy_home(home: Path, to: Path) -> None:
    """A consistent copy of a serving gateway's home (SQLite's backup, then the rest)."""
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(home, to, ignore=shutil.ignore_patterns("store.db*", "gateway.json"))
    with sqlite3.connect(home / "store.db") as src, sqlite3.connect(to / "store.db") as dst:
        src.backup(dst)


def _step_row(step: Step) -> dict[str, Any]:
    return {"prompt": step.task.prompt, "wanted": step.task.tool, "arguments": step.task.arguments,
            "got": [(c["name"], c["arguments"]) for c in step.calls],
            "text": step.text[:200], "seconds": round(step.seconds, 1)}  # fmt: skip


def _print(result: dict[str, Any]) -> None:
    d1 = result["day_one"]
    print(f"day one: {d1['tasks']} tasks through cn, {d1['accepted']} accepted, "
          f"{d1['corrected']} corrected")  # fmt: skip
    for name, rates in result["day_two"].items():
        print(f"day two on {name}:")
        print_rates(rates)
    g = result["general"]
    if g["right"] is not None:
        moved = (g["right"] - g["base_right"]) * 100
        print(f"general set: right {g['right']:.1%} vs {g['base_right']:.1%} for the base "
              f"({moved:+.1f} points; target: at most 2 lost)")  # fmt: skip
    print(f"gate: {result['gate']} → {result['version']} is {result['state']}")
    s = result["seconds"]
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in s.items())
          + f"; retrain stages {result['retrain_stages_s']} (target: retrain ≤ 600 s)")  # fmt: skip


def print_rates(rates: dict[str, Any]) -> None:
    """One version's day-two figures against the targets, and full calls by kind."""
    for key, target in TARGETS.items():
        r = rates[key]
        shown = "n/a" if r["rate"] is None else f"{r['rate']:.2f}"
        low, high = r["interval"]
        print(f"  {key:<10} {shown} [{low:.2f}, {high:.2f}] of {r['n']}  (target ≥ {target})")
    print(f"  by kind (full call / no call): {rates['by_kind']}")


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(TARGETS)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(result["day_two"])
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        rates = result["day_two"][name]
        values = [rates[k]["rate"] or 0 for k in keys]
        # nothing measured (no call attempted: no JSON to judge) is drawn as nothing
        pairs = list(zip(keys, values, strict=True))
        low = [v - rates[k]["interval"][0] if rates[k]["n"] else 0 for k, v in pairs]
        high = [rates[k]["interval"][1] - v if rates[k]["n"] else 0 for k, v in pairs]
        errors = [low, high]
        ax.bar([x + i * width for x in range(len(keys))], values, width, yerr=errors, label=name)
    for x, key in enumerate(keys):
        ax.hlines(TARGETS[key], x - 0.1, x + 0.9, colors="black", linestyles="dashed")
    ax.set_xticks([x + width / 2 for x in range(len(keys))], [k.replace("_", " ") for k in keys])
    ax.set_ylim(0, 1.05)
    ax.set_title("Day-two Continue CLI tasks, before and after one retrain")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day-one", type=int, default=None, help="day-one tasks (all: 100)")
    parser.add_argument("--day-two", type=int, default=None, help="day-two tasks (all: 58)")
    parser.add_argument("--out", type=Path, default=Path("flywheel-report"))
    parser.add_argument("--record", type=Path, help="keep the home after day one here")
    parser.add_argument("--replay", type=Path, help="start from a recorded day one")
    parser.add_argument("--work", type=Path, help="put the gateway's home here [a temp folder]")
    parser.add_argument("flags", nargs="*", help="passed to loragate retrain (after --)")
    args = parser.parse_args()
    result = main(args.day_one, args.day_two, args.flags, args.out, args.record, args.replay,
                  args.work)  # fmt: skip
    print(json.dumps({k: v for k, v in result.items() if k != "steps"}))
