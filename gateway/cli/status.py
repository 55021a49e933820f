"""`loragate status`: the overview of `gateway.versions.overview` as a table."""

from __future__ import annotations

import time
from typing import Any


def render(report: dict[str, Any]) -> str:
    lines = [f"gateway: serving this home at {report['gateway']}" if report["gateway"]
             else "gateway: none is serving this home",
             f"{'WORKLOAD':<10} {'VERSION':<32} {'ROLE':<10} {'SHARE':>6} {'JUDGED':>7}  "
             "REWARD (95 % CI)"]  # fmt: skip
    for lane in report["lanes"]:
        for i, v in enumerate(lane["versions"]):
            low, high = v["interval"]
            reward = f"{v['reward']:.3f} ({low:.3f}-{high:.3f})" if v["judged"] else "-"
            lines.append(
                f"{lane['workload'] if i == 0 else '':<10} {v['version']:<32} {v['role']:<10} "
                f"{v['share'] * 100:>5.1f}% {v['judged']:>7}  {reward}"
            )
        if lane["p_better"] is not None:
            lines.append(f"{'':<10} P(candidate better) {lane['p_better']:.3f}")
            shadow = lane["versions"][1]["shadow"]
            if shadow["checked"]:
                low, high = shadow["interval"]
                lines.append(f"{'':<10} shadow answers: {shadow['passed']}/{shadow['checked']} "
                             f"passed the automatic checks ({low:.3f}-{high:.3f})")  # fmt: skip
        change = lane["last_change"]
        if change:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(change["at"]))
            previous = f" over {change['previous']}" if change["previous"] else ""
            lines.append(
                f"{'':<10} last change {when}: {change['action']} {change['version']}{previous}"
                f" ({change['reason'] or 'no reason given'})"
            )
    nxt = report["next_retrain"]
    if nxt is None:
        lines.append("next retrain: not scheduled (retrain_every is not set)")
    elif nxt["due"]:
        lines.append(f"next retrain: due now ({nxt['reason']})")
    else:
        lines.append(f"next retrain: checked again in {nxt['check_in_s'] / 60:.0f} min "
                     f"({nxt['reason']})")  # fmt: skip
    return "\n".join(lines)
