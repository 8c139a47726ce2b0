"""Figures of a replication run: simulated against target effect sizes, and run/persona variance.

Like :mod:`simulacra.plots`, each function returns a :class:`~matplotlib.figure.Figure`
drawn with matplotlib's object API only (headless; close figures you create in loops).
Markers as well as colours tell effect groups apart; a legend lists only what is
drawn, and sits below its axes so that long labels fit. Titles and axes name the
battery's own ``source`` (``"Many Labs 1"``; "target" when none is declared).

Rows of ``summary.csv`` fall into three kinds: main effects counted across effects
(``in_overall``), drawn against their target; main effects left out of the
across-effect criteria (exploratory, or a target from another source); and subgroup
rows (``level`` a moderator level or ``interaction``). The last two are *drawn
apart*, in a second panel per model: each row's simulated d with its 95% CI, and
its target where it has one.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["main_rows", "plot_effects_vs_target", "plot_variance_ratio", "subgroup_rows"]

_LEGEND = {"fontsize": 7, "loc": "upper left", "bbox_to_anchor": (0.0, -0.12), "frameon": False}


def _level(summary: pd.DataFrame) -> pd.Series:
    if "level" not in summary:
        return pd.Series("", index=summary.index)
    return summary["level"].fillna("").astype(str)


def main_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The main-effect rows (``level`` empty) of ``summary.csv``."""
    return summary[_level(summary) == ""]


def subgroup_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The moderator rows: levels and interactions (omnibus rows left out: no single d)."""
    rows = summary[_level(summary) != ""]
    if "comparison" in rows:
        rows = rows[rows["comparison"].fillna("") != "all levels"]
    return rows


def _counted(rows: pd.DataFrame) -> pd.Series:
    if "in_overall" not in rows:
        return pd.Series(True, index=rows.index)
    return rows["in_overall"].fillna(False).astype(bool)


def _answers_label(row: pd.Series) -> str:
    mode = (
        "sampled answers" if row["mode"] == "sampled" else "expected (probability-weighted) answers"
    )
    persona = "personas" if bool(row["persona"]) else "no persona (bare model)"
    return f"{mode}, {persona}"


def _name(source: str | None) -> str:
    return source or "target"


def _style(row: pd.Series) -> tuple[str, str, str]:
    """Marker, colour and legend label of a counted main effect."""
    if bool(row.get("negative_control", False)):
        return "s", "tab:red", "negative control"
    if bool(row.get("weak_control", False)):
        return "D", "tab:orange", "weak control"
    return "o", "tab:blue", "effect"


def _scatter(ax: Axes, rows: pd.DataFrame, source: str | None) -> None:
    """Counted main effects against their targets; the identity line."""
    finite = rows[np.isfinite(rows["d"].astype(float))]
    values = np.concatenate(
        [
            finite["ci_low"].astype(float),
            finite["ci_high"].astype(float),
            rows["target_ci_low"].astype(float),
            rows["target_ci_high"].astype(float),
        ]
    )
    values = values[np.isfinite(values)]
    low = min(-0.5, float(values.min()) - 0.2) if len(values) else -0.5
    high = max(2.7, float(values.max()) + 0.2) if len(values) else 2.7
    ax.plot([low, high], [low, high], "--", color="grey", lw=1, label="identity")
    ax.axhline(0, color="lightgrey", lw=0.8)
    ax.axvline(0, color="lightgrey", lw=0.8)
    drawn: dict[str, tuple[str, str]] = {}
    undefined: list[str] = []
    for _, row in rows.iterrows():
        marker, color, label = _style(row)
        x, y = float(row["target_d"]), float(row["d"])
        if not math.isfinite(y):
            undefined.append(str(row["effect"]))
            continue
        drawn[label] = (marker, color)
        ax.errorbar(
            x,
            y,
            xerr=[[x - float(row["target_ci_low"])], [float(row["target_ci_high"]) - x]],
            yerr=[[y - float(row["ci_low"])], [float(row["ci_high"]) - y]],
            fmt=marker,
            color=color,
            ms=5,
            capsize=2,
            lw=1,
        )
        ax.annotate(
            str(row["effect"]), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6
        )
    for label, (marker, color) in drawn.items():
        ax.plot([], [], marker, color=color, label=label)
    if undefined:
        ax.text(
            0.99,
            0.01,
            "d undefined (reasons in summary.csv):\n" + "\n".join(undefined),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=6,
            color="grey",
        )
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel(f"{_name(source)} d (its published CI)")
    ax.set_ylabel("simulated d (95% CI)")
    ax.legend(**_LEGEND)


def _apart_label(row: pd.Series) -> str:
    level = str(row.get("level", "") or "")
    if not level or level == "nan":
        return f"{row['effect']} (main)"
    if level == "interaction":
        return f"{row['effect']} · {row['moderator']}: {row['comparison']}"
    return f"{row['effect']} · {row['moderator']} = {level}"


def _forest(ax: Axes, rows: pd.DataFrame, source: str | None) -> None:
    """Rows drawn apart: simulated d (95% CI) per row, targets as crosses."""
    kinds = {
        "main": ("o", "black", "effect left out of the criteria (main row)"),
        "level": ("^", "tab:purple", "subgroup: d within a moderator level"),
        "interaction": ("D", "tab:green", "interaction: difference of ds (bootstrap CI)"),
    }
    drawn: set[str] = set()
    labels = []
    y = len(rows) - 1
    has_target = False
    for _, row in rows.iterrows():
        level = str(row.get("level", "") or "")
        kind = "interaction" if level == "interaction" else ("level" if level else "main")
        marker, color, _ = kinds[kind]
        labels.append(_apart_label(row))
        d = float(row["d"])
        if math.isfinite(d):
            low, high = float(row["ci_low"]), float(row["ci_high"])
            xerr = [[d - low], [high - d]] if math.isfinite(low) and math.isfinite(high) else None
            ax.errorbar(
                d,
                y,
                xerr=xerr,
                fmt=marker,
                color=color,
                ms=5,
                capsize=2,
                lw=1,
                mfc="white" if kind == "interaction" else color,
            )
            drawn.add(kind)
        else:
            ax.text(0, y, "  d undefined (see reason)", fontsize=6, color="grey", va="center")
        target = float(row.get("target_d", math.nan))
        if math.isfinite(target):
            ax.plot(target, y, "x", color="tab:red", ms=6)
            has_target = True
        y -= 1
    ax.axvline(0, color="lightgrey", lw=0.8)
    ax.set_yticks(np.arange(len(rows))[::-1], labels, fontsize=6)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("simulated d (95% CI)")
    for kind in ("main", "level", "interaction"):
        if kind in drawn:
            marker, color, label = kinds[kind]
            mfc = "white" if kind == "interaction" else color
            ax.plot([], [], marker, color=color, mfc=mfc, label=label)
    if has_target:
        ax.plot([], [], "x", color="tab:red", label=f"{_name(source)} (or declared) target")
    if drawn or has_target:
        ax.legend(**_LEGEND)
    ax.set_title("drawn apart: not in the across-effect criteria", fontsize=8)


def plot_effects_vs_target(summary: pd.DataFrame, source: str | None = None) -> Figure:
    """Simulated d (95% CI) against the target d (its CI), one row of panels per model.

    The left panel holds the main effects counted across effects, against their
    targets, the identity line dashed: negative controls are red squares, weak
    controls orange diamonds, the other effects blue circles. Exploratory effects,
    effects whose target is not from the battery's source and subgroup rows (moderator
    levels: triangles; interactions: hollow diamonds) are drawn apart in a right panel,
    with their targets as red crosses. Each model's title says which answers
    (sampled or expected, with or without personas) it shows.

    Args:
        summary: ``summary.csv`` rows (one main row per model and effect, subgroup rows
            beside them).
        source: the battery's source, named in the title and the axes.

    Returns:
        The figure.
    """
    models = list(dict.fromkeys(summary["model"]))
    main = main_rows(summary)
    apart_all = pd.concat([main[~_counted(main)], subgroup_rows(summary)])
    counted_all = main[_counted(main)]
    has_scatter = not counted_all.empty
    has_apart = not apart_all.empty
    columns = int(has_scatter) + int(has_apart) or 1
    heights = max(6.0, 0.28 * max((len(apart_all) // max(len(models), 1)), 1) + 2.5)
    fig, axes = plt.subplots(
        len(models),
        columns,
        figsize=(6.4 * columns, heights * len(models)),
        squeeze=False,
        constrained_layout=True,
    )
    for k, model in enumerate(models):
        panels = list(axes[k])
        everything = summary[summary["model"] == model]
        rows = main[main["model"] == model]
        counted = rows[_counted(rows)]
        # the summary's own order: each effect's subgroup rows follow its main row
        apart = everything[everything.index.isin(apart_all.index)]
        n = int(rows["n"].max()) if len(rows) else 0
        title = f"{model}\n{_answers_label(everything.iloc[0])}, up to n = {n} per effect"
        if has_scatter:
            ax = panels.pop(0)
            _scatter(ax, counted, source)
            ax.set_title(title, fontsize=9)
        if has_apart:
            ax = panels.pop(0)
            _forest(ax, apart, source)
            if not has_scatter:
                ax.set_title(title + "\n(no effect counted across effects)", fontsize=9)
    fig.suptitle(f"Simulated vs {_name(source)} effect sizes", fontsize=11)
    return fig


def _variance_reason(reason: object) -> str:
    """The ``run_persona_ratio`` part of a row's reason."""
    for part in str(reason or "").split("; "):
        if part.startswith("run_persona_ratio: "):
            return part.removeprefix("run_persona_ratio: ")
    return "undefined"


def plot_variance_ratio(summary: pd.DataFrame) -> Figure | None:
    """Per effect, the run/persona variance ratio of the re-asked participants (log scale).

    A ratio of 1 (dotted) means the same persona asked again differs as much as two
    personas do. An infinite ratio (no persona variance left) is drawn as a triangle
    at the right edge, a zero ratio (no run variance) at the left edge; an undefined
    one is left out and listed with its reason. Only main-effect rows are drawn.

    Args:
        summary: ``summary.csv`` rows.

    Returns:
        The figure; None when no effect has a ratio (nobody re-asked, or no spread at
        all), so that no empty figure is drawn: ``summary.csv``'s ``reason`` says why.
    """
    summary = main_rows(summary)
    ratios = summary["run_persona_ratio"].astype(float).to_numpy()
    if not np.any(~np.isnan(ratios)):
        return None
    models = list(dict.fromkeys(summary["model"]))
    effects = list(dict.fromkeys(summary["effect"]))
    fig, ax = plt.subplots(figsize=(8.0, 0.35 * len(effects) + 2.6), constrained_layout=True)
    finite = ratios[np.isfinite(ratios) & (ratios > 0)]
    low = float(finite.min()) / 2 if len(finite) else 0.1
    high = float(finite.max()) * 2 if len(finite) else 10.0
    low, high = min(low, 0.5), max(high, 2.0)
    markers = ("o", "s", "^", "D", "v", "P")
    offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]
    for k, model in enumerate(models):
        rows = summary[summary["model"] == model].set_index("effect").reindex(effects)
        values = rows["run_persona_ratio"].astype(float).to_numpy()
        positions = np.arange(len(effects)) + offsets[k]
        shown = np.isfinite(values) & (values > 0)
        line = ax.plot(
            values[shown],
            positions[shown],
            markers[k % len(markers)],
            label=f"{model} ({_answers_label(rows.dropna(subset=['mode']).iloc[0])})",
        )[0]
        infinite, zero = np.isposinf(values), values == 0
        ax.plot(np.full(infinite.sum(), high), positions[infinite], ">", color=line.get_color())
        ax.plot(np.full(zero.sum(), low), positions[zero], "<", color=line.get_color())
        for position, value, reason in zip(positions, values, rows["reason"], strict=True):
            if np.isnan(value):  # left out, with its reason on its own line
                who = f"{model}: " if len(models) > 1 else ""
                ax.text(
                    low * 1.1,
                    position,
                    f"{who}undefined: {_variance_reason(reason)}",
                    fontsize=6,
                    color="grey",
                    va="center",
                )
    ax.set_xscale("log")
    ax.set_xlim(low * 0.95, high * 1.05)
    ax.axvline(1, ls=":", color="black", lw=1)
    ax.set_yticks(np.arange(len(effects)), effects, fontsize=7)
    ax.set_xlabel(
        "run variance / persona variance (re-asked participants);\n"
        "> at the right edge: infinite (no persona variance), "
        "< at the left: zero (no run variance)",
        fontsize=8,
    )
    ax.set_title("Run-to-run against persona-to-persona variance", fontsize=10)
    ax.legend(**(_LEGEND | {"bbox_to_anchor": (0.0, -0.18)}))
    return fig
