"""The stability report: ``summary.csv``, the retention curves and half-lives, the figures.

:func:`write_report` is what ``simulacra report OUT --out FIG`` calls for a
stability run. It summarises the run's tables with :mod:`simulacra.analysis.stability`
(using the battery's ``[analysis]`` settings, recorded in the manifest) and draws the
figures of :mod:`simulacra.plots.stability`. Every file is written to a temporary
name and renamed into place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd

from simulacra.analysis.stability import (
    ABDULHAI_REDUCTION,
    StabilitySettings,
    axis_curves,
    dialogue_scores,
    half_lives,
    line_retention,
    retention_curves,
    summarize,
)
from simulacra.batteries.goal_guarding.report import _atomic, _save_csv
from simulacra.plots.stability import (
    plot_axis_drift,
    plot_capping_effect,
    plot_half_life_forest,
    plot_retention_curves,
)

if TYPE_CHECKING:
    from simulacra.batteries.runner import BatteryResult

__all__ = ["FIGURES", "TABLES", "stat_settings", "write_report"]

DPI = 120
TABLES = (
    "summary.csv",
    "retention_curves.csv",
    "half_lives.csv",
    "dialogue_scores.csv",
    "axis_curves.csv",
)
FIGURES = ("retention_curves.png", "half_life_forest.png", "axis_drift.png", "capping_effect.png")
"""The figures; the last two only for runs that read projections (and capped)."""


def stat_settings(manifest: Mapping[str, Any]) -> StabilitySettings:
    """The analysis settings a run's manifest recorded (the defaults when absent)."""
    analysis = (manifest.get("battery") or {}).get("analysis") or {}
    default = StabilitySettings()
    return StabilitySettings(
        n_boot=int(analysis.get("bootstrap", default.n_boot)),
        confidence=float(analysis.get("confidence", default.confidence)),
        seed=int(analysis.get("seed", default.seed)),
    )


def write_report(result: BatteryResult, figdir: str | os.PathLike[str]) -> list[Path]:
    """Write the tables of :data:`TABLES` and the figures of :data:`FIGURES`.

    Args:
        result: a finished stability run.
        figdir: the output directory (created).

    Returns:
        The paths written.
    """
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    settings = stat_settings(result.manifest)
    turns = result.tables["turns"]
    self_report = result.tables.get("self_report", pd.DataFrame())
    qa = result.tables.get("qa", pd.DataFrame())
    written: list[Path] = []
    lines = None
    beliefs = result.tables.get("beliefs")
    if beliefs is not None and not beliefs.empty:
        belief = (result.manifest.get("battery") or {}).get("belief") or {}
        lines = line_retention(
            beliefs,
            turns,
            beta=float(belief.get("beta", 1.0)),
            per_token=belief.get("normalize", "per_token") == "per_token",
        )
    summary = summarize(turns, self_report, qa, settings, lines)
    curves = retention_curves(turns, settings)
    _save_csv(summary, figdir / "summary.csv", written)
    _save_csv(curves, figdir / "retention_curves.csv", written)
    _save_csv(half_lives(turns, settings), figdir / "half_lives.csv", written)
    _save_csv(
        dialogue_scores(turns, self_report, qa, lines), figdir / "dialogue_scores.csv", written
    )
    axis = axis_curves(turns, settings)
    chance = float(turns["prior"].iloc[0]) if not turns.empty else None
    horizon = float((turns["turns"] - turns["warmup"]).max()) if not turns.empty else None
    figures = [
        ("retention_curves.png", lambda: plot_retention_curves(curves, chance)),
        ("half_life_forest.png", lambda: plot_half_life_forest(summary, horizon)),
    ]
    if not axis.empty:
        _save_csv(axis, figdir / "axis_curves.csv", written)
        figures.append(("axis_drift.png", lambda: plot_axis_drift(axis)))
    if (summary["metric"] == "capping_drift_reduction").any():
        figures.append(
            ("capping_effect.png", lambda: plot_capping_effect(summary, ABDULHAI_REDUCTION))
        )
    for name, draw in figures:
        fig = draw()
        path = figdir / name
        try:
            _atomic(path, lambda tmp, fig=fig: fig.savefig(tmp, dpi=DPI, format="png"))
        finally:
            plt.close(fig)
        written.append(path)
    return written
