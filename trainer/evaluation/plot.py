"""`loragate eval --plot FILE.png`: two versions side by side, per category of the held-out
questions (right rate, seconds per answer) and on the general set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.errors import EvalError


def plot(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise EvalError("the plot needs matplotlib: pip install 'loragate[plot]'") from exc
    names = [report["version"], *([report["against"]] if report["against"] else [])]
    groups = _groups(report, names)
    if not groups:
        raise EvalError("nothing to plot: no suite was scored")
    fig, (rates, times) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(names)
    labels = list(groups)
    for k, name in enumerate(names):
        xs = [i + (k - (len(names) - 1) / 2) * width for i in range(len(labels))]
        rates.bar(xs, [groups[g].get(name, (0.0, 0.0))[0] for g in labels], width, label=name)
        times.bar(xs, [groups[g].get(name, (0.0, 0.0))[1] for g in labels], width, label=name)
    for axis, title in ((rates, "right"), (times, "seconds per answer")):
        axis.set_xticks(range(len(labels)), labels, rotation=15)
        axis.set_title(title)
    rates.set_ylim(0, 1)
    rates.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise EvalError(f"cannot write the plot to {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)


def _groups(report: dict[str, Any], names: list[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """label → version → (right rate, seconds per answer): each held-out category, then each
    suite as a whole."""
    groups: dict[str, dict[str, tuple[float, float]]] = {}
    held = report["suites"].get("held-out", {})
    for name in names:
        for category, row in (held.get(name, {}).get("by_category") or {}).items():
            groups.setdefault(category, {})[name] = (row["right"], row["seconds"])
    for suite, entry in report["suites"].items():
        for name in names:
            metrics = entry.get(name, {})
            seconds = (metrics.get("seconds") or {}).get("value", 0.0)
            groups.setdefault(suite, {})[name] = (metrics["right"]["rate"], seconds)
    return groups
