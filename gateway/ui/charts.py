"""Plotly figures as plain data (traces and layout); the page's script draws them with the
plotly.js that ships in plotly's wheel."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from gateway.versions.router import ALL

_LAYOUT = {
    "margin": {"l": 48, "r": 12, "t": 8, "b": 36},
    "height": 220,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "legend": {"orientation": "h", "y": -0.25},
}


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(at))


def lane_traffic(
    traffic: dict[str, dict[str, dict[float, int]]],
    lanes: list[str],
    window: tuple[float, float],
    bucket: float,
) -> dict[str, dict[str, Any]]:
    """Per lane, each version's share of the lane's answers per time bucket (stacked bars
    normalised to 100 %) across `window` (start, end). The `*` lane takes the workloads that
    have no lane of their own."""
    own = set(lanes) - {ALL}
    merged: dict[str, dict[str, dict[float, int]]] = {
        lane: defaultdict(lambda: defaultdict(int)) for lane in lanes
    }
    for workload, versions in traffic.items():
        lane = workload if workload in own else ALL
        if lane not in merged:
            continue
        for version, counts in versions.items():
            for at, n in counts.items():
                merged[lane][version][at] += n
    figures = {}
    for lane, versions in merged.items():
        slots = sorted({at for counts in versions.values() for at in counts})
        traces = [
            {"type": "bar", "name": version, "x": [_iso(at + bucket / 2) for at in slots],
             "y": [counts.get(at, 0) for at in slots], "width": bucket * 1000 * 0.9,
             "hovertemplate": "%{y} answers<extra>" + version + "</extra>"}
            for version, counts in sorted(versions.items())
        ]  # fmt: skip
        shown = [_iso(window[0]), _iso(window[1])]
        layout = {**_LAYOUT, "barmode": "stack", "barnorm": "percent", "bargap": 0.1,
                  "yaxis": {"title": {"text": "% of answers"}, "range": [0, 100]},
                  "xaxis": {"type": "date", "range": shown}}  # fmt: skip
        figures[lane] = {"data": traces, "layout": layout}
    return figures


def loss_curves(runs: list[dict[str, Any]], most: int = 400) -> dict[str, Any]:
    """Training loss per optimizer step of each run (from its `loss.jsonl`), thinned to at
    most `most` points a run."""
    traces = []
    for run in runs:
        steps, losses = _losses(Path(run["path"]) / "loss.jsonl")
        if not steps:
            continue
        every = max(1, len(steps) // most)
        traces.append({"type": "scatter", "mode": "lines", "name": run["id"],
                       "x": steps[::every], "y": losses[::every]})  # fmt: skip
    layout = {**_LAYOUT, "height": 260, "xaxis": {"title": {"text": "step"}},
              "yaxis": {"title": {"text": "loss"}}}  # fmt: skip
    return {"data": traces, "layout": layout}


def _losses(path: Path) -> tuple[list[int], list[float]]:
    steps: list[int] = []
    losses: list[float] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return steps, losses
    for line in text.splitlines():
        try:
            point = json.loads(line)
            steps.append(int(point["step"]))
            losses.append(float(point["loss"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a run that was stopped
    return steps, losses
