"""Why a cell of a replication ``summary.csv`` main-effect row is empty.

Every NaN of a main-effect row gets a reason in the row's ``reason`` column, grouped
by the column that leads each group (:data:`GROUPS`): ``"d: no spread in either
group: every score is 0; target_d: no target (exploratory effect); run_persona_ratio:
nobody re-asked"``. :func:`main_row_reason` reads a finished row and the facts behind
it; the moderator rows carry their own reasons (:mod:`simulacra.analysis.moderators`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from simulacra.analysis.moderators import MIN_PER_CELL

__all__ = ["GROUPS", "main_row_reason", "nan_groups"]

GROUPS: dict[str, tuple[str, ...]] = {
    "d": (
        "d",
        "ci_low",
        "ci_high",
        "ci99_low",
        "ci99_high",
        "p",
        "mean_treatment",
        "mean_control",
        "sd_treatment",
        "sd_control",
    ),
    "target_d": ("target_d", "target_ci_low", "target_ci_high"),
    "original_d": ("original_d", "original_n"),
    "d33": ("d33", "small_telescopes_p"),
    "published_d": ("published_d",),
    "run_persona_ratio": (
        "run_persona_ratio",
        "var_run",
        "var_persona",
        "share_condition",
        "share_persona",
        "share_run",
    ),
}
"""Each reason's lead column and the columns it explains."""


def _nan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return value is None


def nan_groups(row: Mapping[str, Any]) -> list[str]:
    """The lead columns of the groups with a NaN cell in ``row``, in :data:`GROUPS` order."""
    return [lead for lead, columns in GROUPS.items() if any(_nan(row.get(c)) for c in columns)]


def _d_reason(row: Mapping[str, Any], unparsed: int) -> str:
    n_t, n_c = int(row["n_treatment"]), int(row["n_control"])
    lost = []
    if unparsed:
        lost.append(f"{unparsed} numeric answers held no number")
    excluded = int(row.get("excluded") or 0)
    if excluded:
        lost.append(f"{excluded} scores missing after the scoring steps")
    why = f" ({'; '.join(lost)})" if lost else ""
    if n_t < MIN_PER_CELL or n_c < MIN_PER_CELL:
        return (
            f"too few parsed answers{why}: treatment {n_t}, control {n_c} "
            f"(d needs {MIN_PER_CELL} in each)"
        )
    if _nan(row["d"]):
        m_t, m_c = float(row["mean_treatment"]), float(row["mean_control"])
        if m_t == m_c:
            return f"no spread in either group: every score is {m_t:g}"
        return f"no spread in either group: every treatment score {m_t:g}, control {m_c:g}"
    return "no spread in a group of two or more (its SD is 0)"


def _variance_reason(row: Mapping[str, Any], runs: int, scored: int) -> str:
    reasked = int(row["reasked"])
    if reasked == 0:
        if runs <= 1:
            return (
                "nobody re-asked: every answer is from run 0 (re-asking off: R = 0, "
                "--reask-runs 1, or M below [variance] min_participants)"
            )
        return "nobody re-asked for this effect (no re-asked participant had scores for it)"
    var_run, var_persona = float(row["var_run"]), float(row["var_persona"])
    if var_run == 0 and var_persona == 0:
        return f"no spread among the {reasked} re-asked participants' answers"
    if _nan(var_persona) or _nan(var_run):
        return (
            f"too few re-asked participants with scores: {scored} of {reasked} "
            "(the persona variance needs two in a condition, the run variance two runs)"
        )
    return f"no persona variance left among the {reasked} re-asked participants"


def main_row_reason(
    row: Mapping[str, Any],
    *,
    has_target: bool,
    exploratory: bool,
    unparsed: int = 0,
    runs: int = 2,
    scored: int = 0,
) -> str:
    """Why the NaN cells of one main-effect row are NaN (empty when none is).

    Args:
        row: the finished ``summary.csv`` row.
        has_target: whether the effect file gives a ``[target]``.
        exploratory: whether the effect is exploratory.
        unparsed: unparsed numeric answers in run 0 (they leave scores out).
        runs: the answer runs in the model's answers (1: nobody was re-asked).
        scored: the re-asked participants with at least one score.

    Returns:
        ``"lead: reason; ..."`` over the groups with a NaN cell (several leads
        sharing a reason are listed together: ``"target_d, d33: no target"``).
    """
    parts = []
    leads = nan_groups(row)
    if not has_target:  # one reason for every target column
        untargeted = [g for g in ("target_d", "original_d", "d33", "published_d") if g in leads]
        what = "no target (exploratory effect)" if exploratory else "no target in the effect file"
        if untargeted:
            parts.append(f"{', '.join(untargeted)}: {what}")
        leads = [g for g in leads if g not in untargeted]
    for lead in leads:
        if lead == "d":
            reason = _d_reason(row, unparsed)
        elif lead == "original_d":
            reason = "the effect file gives no original study"
        elif lead == "d33":
            if _nan(row.get("original_d")) or _nan(row.get("original_n")):
                reason = "small telescopes need the original study's d and N"
            else:
                reason = "small telescopes need a defined simulated d"
        elif lead == "published_d":
            reason = "no published figure besides the target"
        else:
            reason = _variance_reason(row, runs, scored)
        parts.append(f"{lead}: {reason}")
    return "; ".join(parts)
