"""Figures of the stability battery, drawn from its analysis tables.

- :func:`plot_retention_curves`: the observer's mass on the assigned identity by
  turn, one panel per pressure, one line (with its bootstrap band) per model and
  source; the warm-up is shaded and chance is a dotted line;
- :func:`plot_half_life_forest`: each condition's half-life with its interval;
  censored half-lives (never halved) are drawn as arrows at the dialogue's end;
- :func:`plot_axis_drift`: each reply's projection on the Assistant axis by turn,
  one panel per pressure, capped runs dashed;
- :func:`plot_capping_effect`: the capping drift reduction (%) per pressure with its
  interval, beside Abdulhai et al.'s 55% anchor, and retention capped minus uncapped
  per source and pressure.

They use matplotlib's object API only (headless); sources are told apart by marker
as well as colour.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_axis_drift",
    "plot_capping_effect",
    "plot_half_life_forest",
    "plot_retention_curves",
]

SOURCE_STYLE = {
    "prompted": ("#1b6ca8", "o"),
    "none": ("#8f8f8f", "s"),
    "steered": ("#d1495b", "^"),
    "prompted_steered": ("#2e8b57", "D"),
}
LINESTYLES = ("-", "--", ":", "-.")


def _curve_panels(
    curves: pd.DataFrame,
    ylabel: str,
    *,
    warm_start: float,
    linestyle: Callable[[int, str], str],
    alpha: float,
    chance: float | None = None,
) -> tuple[Figure, np.ndarray]:
    """One panel per pressure, one line with its bootstrap band per model, source and capping.

    Args:
        curves: a curves table (``pressure, phase, model, source, capping, turn,
            estimate, ci_low, ci_high``).
        ylabel: the y axis' label.
        warm_start: where the shaded warm-up begins on the turn axis.
        linestyle: the line style of (model index, capping).
        alpha: the opacity of the bands.
        chance: a dotted horizontal line, if given.

    Returns:
        The figure and its axes.
    """
    pressures = sorted(set(curves["pressure"]), key=lambda p: (p != "none", p))
    n = max(len(pressures), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), sharey=True, squeeze=False)
    models = list(dict.fromkeys(curves["model"]))
    for ax, pressure in zip(axes[0], pressures, strict=False):
        panel = curves[curves["pressure"] == pressure]
        warm = panel.loc[panel["phase"] == "warmup", "turn"]
        if not warm.empty:
            ax.axvspan(warm_start, warm.max() + 0.5, color="#eeeeee", zorder=0)
        if chance is not None:
            ax.axhline(chance, color="black", lw=0.8, ls=":")
        for (model, source, capping), line in panel.groupby(["model", "source", "capping"]):
            color, marker = SOURCE_STYLE.get(source, ("black", "x"))
            label = f"{source}" + (" capped" if capping == "on" else "")
            label += f" ({model})" if len(models) > 1 else ""
            ax.plot(
                line["turn"],
                line["estimate"],
                color=color,
                marker=marker,
                ls=linestyle(models.index(model), capping),
                ms=3,
                label=label,
            )
            ax.fill_between(line["turn"], line["ci_low"], line["ci_high"], color=color, alpha=alpha)
        ax.set_title(pressure)
        ax.set_xlabel("turn")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig, axes


def plot_retention_curves(curves: pd.DataFrame, chance: float | None = None) -> Figure:
    """Retention curves per pressure (:func:`~simulacra.analysis.stability.retention_curves`).

    Args:
        curves: the curves table.
        chance: the prior mass on the assigned identity, drawn as a dotted line.

    Returns:
        The figure.
    """
    fig, axes = _curve_panels(
        curves,
        "posterior mass on assigned identity",
        warm_start=0,
        linestyle=lambda model, _capping: LINESTYLES[model % len(LINESTYLES)],
        alpha=0.15,
        chance=chance,
    )
    for ax in axes[0]:
        ax.set_ylim(0, 1)
    return fig


def plot_half_life_forest(summary: pd.DataFrame, horizon: float | None = None) -> Figure:
    """The ``half_life`` rows of the summary as a forest plot.

    Args:
        summary: the summary table.
        horizon: the pressure turns of the dialogues: censored half-lives (never
            halved) are drawn as arrows just past it.

    Returns:
        The figure.
    """
    rows = summary[summary["metric"] == "half_life"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6, 0.35 * max(len(rows), 1) + 1.2))
    finite = rows[["estimate", "ci_low", "ci_high"]].to_numpy(float)
    finite = finite[np.isfinite(finite)]
    last = max([*finite.tolist(), *([horizon] if horizon is not None else []), 1.0])
    right = last + 0.5
    for y, row in rows.iterrows():
        source = str(row["condition"]).split(" / ")[0]
        color, marker = SOURCE_STYLE.get(source, ("black", "x"))
        est, lo, hi = (float(row[k]) for k in ("estimate", "ci_low", "ci_high"))
        if np.isfinite(lo):
            ax.plot([lo, min(hi, right)], [y, y], color=color, lw=1.5)
        if np.isinf(est):
            ax.plot([right], [y], marker=">", color=color, ms=8)
        elif np.isfinite(est):
            ax.plot([est], [y], marker=marker, color=color)
    _label_rows(ax, rows)
    if horizon is not None:
        ax.axvline(horizon, color="black", lw=0.8, ls=":")
    ax.set_xlabel("half-life (pressure turns; ▶ never halved within the dialogue)")
    ax.set_xlim(0, right + 0.5)
    fig.tight_layout()
    return fig


def plot_axis_drift(curves: pd.DataFrame) -> Figure:
    """Drift along the Assistant axis (:func:`~simulacra.analysis.stability.axis_curves`).

    Args:
        curves: the axis curves table (estimate: the mean projection of the replies).

    Returns:
        The figure (one panel per pressure; higher is nearer the default assistant;
        capped runs dashed).
    """
    fig, _ = _curve_panels(
        curves,
        "projection on the Assistant axis",
        warm_start=0.5,
        linestyle=lambda model, capping: "--" if capping == "on" else LINESTYLES[model % 2 * 2],
        alpha=0.12,
    )
    return fig


def _label_rows(ax: Axes, rows: pd.DataFrame) -> None:
    """Summary rows top to bottom, labelled by condition (and model where several)."""
    labels = [
        f"{r.condition} ({r.model})" if rows["model"].nunique() > 1 else str(r.condition)
        for r in rows.itertuples()
    ]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(max(len(rows), 1) - 0.5, -0.5)


def _interval_rows(ax: Axes, rows: pd.DataFrame, color_of: Callable[[str], str]) -> None:
    """One row per summary row: its interval as a line and its estimate as a dot."""
    for y, row in rows.iterrows():
        color = color_of(str(row["condition"]))
        est, lo, hi = (float(row[k]) for k in ("estimate", "ci_low", "ci_high"))
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [y, y], color=color, lw=1.5)
        if np.isfinite(est):
            ax.plot([est], [y], marker="o", color=color)
    _label_rows(ax, rows)
    ax.axvline(0, color="black", lw=0.8)


def plot_capping_effect(summary: pd.DataFrame, anchor: float = 55.0) -> Figure:
    """The capping drift reduction beside the anchor, and what capping did to retention.

    The left panel draws the ``capping_drift_reduction`` rows with Abdulhai et al.'s
    reduction as a dotted line (a NaN reduction, where the uncapped mean drift was not
    positive, is marked undefined). Where the summary has ``capping_contrast`` rows, a
    right panel draws them: retention capped minus uncapped per source and pressure,
    with its interval.

    Args:
        summary: the summary table.
        anchor: the reference reduction (Abdulhai et al.'s 55%), drawn dotted.

    Returns:
        The figure (an empty axis with a note when the run had no capping).
    """
    rows = summary[
        (summary["metric"] == "capping_drift_reduction")
        & ~summary["model"].astype(str).str.contains("anchor")
    ].reset_index(drop=True)
    contrasts = summary[summary["metric"] == "capping_contrast"].reset_index(drop=True)
    height = 0.35 * max(len(rows), len(contrasts), 1) + 1.4
    panels = 2 if len(contrasts) else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, height), squeeze=False)
    ax = axes[0][0]
    _interval_rows(ax, rows, lambda c: "#d1495b" if "axis" in c else "#1b6ca8")
    for y, estimate in enumerate(rows["estimate"].astype(float)):
        if not np.isfinite(estimate):
            ax.text(1, y, "undefined: no drift to reduce", fontsize=7, va="center")
    ax.axvline(anchor, color="black", lw=0.8, ls=":", label=f"Abdulhai et al. 2025 ({anchor:g}%)")
    if rows.empty:
        ax.text(0.5, 0.5, "no capped dialogues in this run", ha="center", transform=ax.transAxes)
    ax.set_xlabel("drift reduction by capping (%)")
    ax.legend(fontsize=7, loc="best")
    if panels == 2:
        right = axes[0][1]
        _interval_rows(right, contrasts, lambda c: "#1b6ca8" if c.startswith("none") else "#d1495b")
        right.set_xlabel("retention, capped - uncapped")
    fig.tight_layout()
    return fig
