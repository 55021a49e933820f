"""Two versions on the same items: paired wins and losses, the sign test, and the promotion
gate built on them."""

from __future__ import annotations

import math
from typing import Any, Literal

from trainer.evaluation.scoring import RIGHT, right_rate


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of `wins` vs `losses` under no difference."""
    return min(1.0, 2 * one_sided_p(max(wins, losses), min(wins, losses)))


def one_sided_p(wins: int, losses: int) -> float:
    """P(at least `wins` of the discordant items favour A) if A and B were alike."""
    n = wins + losses
    return sum(math.comb(n, i) for i in range(wins, n + 1)) / 2**n if n else 1.0


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """`a` against `b` on the same items: wins, losses, ties on being right, and whether the
    difference is significant (sign test, p < 0.05). `scores`: the same test on the items'
    scores themselves (higher, lower, equal), which sees a graded score (token F1, field
    match) move on items that stay on one side of right."""
    pairs = list(zip(a, b, strict=True))
    wins = sum(x >= RIGHT > y for x, y in pairs)
    losses = sum(y >= RIGHT > x for x, y in pairs)
    p = sign_test(wins, losses)
    difference = right_rate(a) - right_rate(b)
    higher = sum(x > y for x, y in pairs)
    lower = sum(x < y for x, y in pairs)
    by_score = sign_test(higher, lower)
    return {"wins": wins, "losses": losses, "ties": len(a) - wins - losses,
            "difference": difference, "p_value": p, "significant": p < 0.05,
            "scores": {"higher": higher, "lower": lower, "equal": len(a) - higher - lower,
                       "mean_difference": (sum(a) - sum(b)) / max(len(a), 1),
                       "p_value": by_score, "significant": by_score < 0.05}}  # fmt: skip


MAX_GENERAL_DROP = 0.02
# All wins on 5 items is p = 0.031: the fewest held-out items that can show a win beyond noise.
MIN_ITEMS_FOR_A_WIN = 5

Verdict = Literal["better", "undecided", "failed"]


def gate(held_out: dict[str, Any], general: tuple[list[float], list[float]]) -> tuple[Verdict, str]:
    """The promotion gate, on the candidate's held-out pairs against the active version and
    both versions' general-set scores. `failed` on evidence of harm (held-out losses beyond
    noise, or more than 2 points of mean general score lost), when the held-out set could
    show a win and shows none, or when a set too small to show one has more losses than
    wins; `better` for a held-out win beyond noise (one-sided sign test, p < 0.05);
    otherwise `undecided`: the version serves as a candidate and live results decide.
    Returns the verdict and its one-line reason."""
    wins, losses, ties = held_out["wins"], held_out["losses"], held_out["ties"]
    n = wins + losses + ties
    p = one_sided_p(wins, losses)
    held = f"held-out: {wins} wins, {losses} losses, {ties} ties (p = {p:.3f})"
    mine, theirs = (sum(s) / max(len(s), 1) for s in general)
    drop = mine - theirs
    general_text = f"general: {mine:.3f} vs {theirs:.3f} ({drop * 100:+.1f} points)"
    if drop < -MAX_GENERAL_DROP:
        lost = f"more than {MAX_GENERAL_DROP * 100:.0f} points lost"
        return "failed", f"failed the gate: {general_text}, {lost}; {held}"
    if one_sided_p(losses, wins) < 0.05:
        return "failed", f"failed the gate: {held}, worse beyond noise; {general_text}"
    if n < MIN_ITEMS_FOR_A_WIN:
        if losses > wins:
            worse = "fewer right than the active version"
            return "failed", f"failed the gate: {held}, {worse}; {general_text}"
        return "undecided", (f"{n} held-out items cannot show a win: serving as a candidate, "
                             f"live results decide ({held}; {general_text})")  # fmt: skip
    if wins <= losses:
        return "failed", f"failed the gate: {held}, no win; {general_text}"
    if p >= 0.05:
        return "undecided", (f"{held}: a win not yet beyond noise: serving as a candidate, "
                             f"live results decide; {general_text}")  # fmt: skip
    return "better", f"passed the gate: {held}; {general_text}"
