"""The goal-guarding report: ``summary.csv``, the belief summary and the figures.

:func:`write_report` is what ``simulacra report OUT --out FIG`` calls for a
goal-guarding run. It summarises the run's tables with
:mod:`simulacra.analysis.goal_guarding` (using the battery's ``[analysis]``
settings, recorded in the manifest) and draws the figures of
:mod:`simulacra.plots.goal_guarding`. Every file is written to a temporary name
and renamed into place, so an interrupted report leaves no half-written file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np

from simulacra.analysis.goal_guarding import StatSettings, belief_summary, summarize
from simulacra.plots.goal_guarding import (
    plot_controls_beside_effects,
    plot_guarding_mass,
    plot_par_forest,
    plot_position_bias,
    plot_rates_by_peer,
    plot_steered_control,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from simulacra.batteries.runner import BatteryResult

__all__ = ["FIGURES", "figure_gaps", "stat_settings", "write_report"]

DPI = 120
FIGURES: tuple[str, ...] = (
    "rates_by_peer.png",
    "par_forest.png",
    "controls_beside_effects.png",
    "guarding_mass.png",
    "position_bias.png",
    "steered_control.png",
)
"""The figures :func:`write_report` draws, by file name."""


def stat_settings(manifest: Mapping[str, Any]) -> StatSettings:
    """The analysis settings a run's manifest recorded (the defaults when absent)."""
    analysis = (manifest.get("battery") or {}).get("analysis") or {}
    default = StatSettings()
    return StatSettings(
        n_boot=int(analysis.get("bootstrap", default.n_boot)),
        n_perm=int(analysis.get("permutations", default.n_perm)),
        confidence=float(analysis.get("confidence", default.confidence)),
        min_margin=float(analysis.get("min_margin", default.min_margin)),
        seed=int(analysis.get("seed", default.seed)),
    )


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a temporary file in the same directory, then rename."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _save_csv(table: pd.DataFrame, path: Path, written: list[Path]) -> None:
    _atomic(path, lambda tmp: table.to_csv(tmp, index=False))
    written.append(path)


def _save_figure(fig: Figure, path: Path, written: list[Path]) -> None:
    try:
        _atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight"))
    finally:
        plt.close(fig)
    written.append(path)


def figure_gaps(summary: pd.DataFrame, beliefs: pd.DataFrame | None) -> dict[str, str]:
    """The figures of :data:`FIGURES` that would be empty, with the reason.

    Args:
        summary: the run's ``summary.csv`` table.
        beliefs: its ``beliefs_summary.csv`` table, or None.

    Returns:
        File name -> why it is not drawn (no figure is drawn empty).
    """
    gaps = {}
    metric = summary["metric"]
    if not metric.isin(["SP", "PP"]).any():
        gaps["rates_by_peer.png"] = "no SP or PP rows"
    par = summary[metric == "PAR"]
    if par.empty:
        gaps["par_forest.png"] = "no PAR rows: the design has no peer condition"
    elif not np.isfinite(par["estimate"].astype(float)).any():
        gaps["par_forest.png"] = "every PAR is undefined (the no-peer baseline rate is 0)"
    wanted = ["positive_control", "negative_control", "delta_SP", "length_control"]
    if not metric.isin(wanted).any():
        gaps["controls_beside_effects.png"] = "no control or peer-effect rows"
    if not (metric == "steered_control").any():
        gaps["steered_control.png"] = "no steered-control rows (the design lacks 'steered')"
    if beliefs is None or beliefs.empty or not (beliefs["channel"] != "none").any():
        gaps["guarding_mass.png"] = "no belief trace on peer material (no channel in the design)"
    return gaps


def write_report(result: BatteryResult, figdir: str | os.PathLike[str]) -> list[Path]:
    """Write ``summary.csv``, ``beliefs_summary.csv`` and the figures of a run.

    Args:
        result: a finished goal-guarding run (:func:`simulacra.batteries.load_battery_result`).
        figdir: the output directory (created).

    Returns:
        The paths written: ``summary.csv`` (one row per model × metric × condition,
        see :func:`~simulacra.analysis.goal_guarding.summarize`),
        ``beliefs_summary.csv``, ``steer_texts.csv`` (the steered control's free-text
        answers, when the design steers) and the PNG figures of :data:`FIGURES`.
    """
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    settings = stat_settings(result.manifest)
    decisions = result.tables["decisions"]
    draws = result.tables.get("draws")
    beliefs = result.tables.get("beliefs")
    summary = summarize(decisions, draws, settings)
    written: list[Path] = []
    _save_csv(summary, figdir / "summary.csv", written)
    belief_rows = None
    if beliefs is not None and not beliefs.empty:
        belief_rows = belief_summary(beliefs, settings)
        _save_csv(belief_rows, figdir / "beliefs_summary.csv", written)
    texts = result.tables.get("steer_texts")
    if texts is not None and not texts.empty:
        _save_csv(texts, figdir / "steer_texts.csv", written)
    gaps = figure_gaps(summary, belief_rows)
    drawers: dict[str, Callable[[], Figure]] = {
        "rates_by_peer.png": lambda: plot_rates_by_peer(summary),
        "par_forest.png": lambda: plot_par_forest(summary),
        "controls_beside_effects.png": lambda: plot_controls_beside_effects(summary),
        "guarding_mass.png": lambda: plot_guarding_mass(belief_rows),
        "position_bias.png": lambda: plot_position_bias(decisions),
        "steered_control.png": lambda: plot_steered_control(summary),
    }
    for name, draw in drawers.items():
        if name in gaps:
            (figdir / name).unlink(missing_ok=True)  # no stale figure from an earlier report
            continue
        _save_figure(draw(), figdir / name, written)
    return written
