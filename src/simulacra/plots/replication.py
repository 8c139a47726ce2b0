"""Figures of a replication run: simulated against ML1 effect sizes, and run/persona variance.

Like :mod:`simulacra.plots`, each function returns a :class:`~matplotlib.figure.Figure`
drawn with matplotlib's object API only (headless; close figures you create in loops).
Markers as well as colours tell effect groups apart.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["plot_effects_vs_target", "plot_variance_ratio"]


def _answers_label(row: pd.Series) -> str:
    mode = (
        "sampled answers" if row["mode"] == "sampled" else "expected (probability-weighted) answers"
    )
    persona = "personas" if bool(row["persona"]) else "no persona (bare model)"
    return f"{mode}, {persona}"


def plot_effects_vs_target(summary: pd.DataFrame) -> Figure:
    """Simulated d (95% CI) against ML1's d (its 99% CI), one panel per model.

    The identity line is dashed; negative controls are red squares, the weak control
    an orange diamond, the other effects blue circles. Each panel's title says which
    answers (sampled or expected, with or without personas) it shows.

    Args:
        summary: ``summary.csv`` rows (one per model and effect).

    Returns:
        The figure.
    """
    models = list(dict.fromkeys(summary["model"]))
    fig, axes = plt.subplots(
        1, len(models), figsize=(6.2 * len(models), 6.0), squeeze=False, constrained_layout=True
    )
    for ax, model in zip(axes[0], models, strict=True):
        rows = summary[summary["model"] == model]
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
        undefined: list[str] = []
        for _, row in rows.iterrows():
            if bool(row["negative_control"]):
                style = {"marker": "s", "color": "tab:red"}
            elif bool(row.get("weak_control", False)):
                style = {"marker": "D", "color": "tab:orange"}
            else:
                style = {"marker": "o", "color": "tab:blue"}
            x, y = float(row["target_d"]), float(row["d"])
            if not math.isfinite(y):
                undefined.append(str(row["effect"]))
                continue
            ax.errorbar(
                x,
                y,
                xerr=[[x - float(row["target_ci_low"])], [float(row["target_ci_high"]) - x]],
                yerr=[[y - float(row["ci_low"])], [float(row["ci_high"]) - y]],
                fmt=style["marker"],
                color=style["color"],
                ms=5,
                capsize=2,
                lw=1,
            )
            ax.annotate(
                str(row["effect"]), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6
            )
        for marker, color, label in (
            ("o", "tab:blue", "effect ML1 replicated"),
            ("D", "tab:orange", "weak control (imagined contact)"),
            ("s", "tab:red", "negative control (did not replicate)"),
        ):
            ax.plot([], [], marker, color=color, label=label)
        if undefined:
            ax.text(
                0.99,
                0.01,
                "d undefined (no spread or a group under 2):\n" + "\n".join(undefined),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=6,
                color="grey",
            )
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_xlabel("Many Labs 1 d (99% CI)")
        ax.set_ylabel("simulated d (95% CI)")
        n = int(rows["n"].max()) if len(rows) else 0
        ax.set_title(
            f"{model}\n{_answers_label(rows.iloc[0])}, up to n = {n} per effect", fontsize=9
        )
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Simulated vs Many Labs 1 effect sizes", fontsize=11)
    return fig


def plot_variance_ratio(summary: pd.DataFrame) -> Figure:
    """Per effect, the run/persona variance ratio of the re-asked participants (log scale).

    A ratio of 1 (dotted) means the same persona asked again differs as much as two
    personas do. An infinite ratio (no persona variance left) is drawn as a triangle
    at the right edge; an undefined one (no spread at all) is left out and listed.

    Args:
        summary: ``summary.csv`` rows.

    Returns:
        The figure.
    """
    models = list(dict.fromkeys(summary["model"]))
    effects = list(dict.fromkeys(summary["effect"]))
    fig, ax = plt.subplots(figsize=(8.0, 0.35 * len(effects) + 1.8), constrained_layout=True)
    ratios = summary["run_persona_ratio"].astype(float).to_numpy()
    finite = ratios[np.isfinite(ratios) & (ratios > 0)]
    low = float(finite.min()) / 2 if len(finite) else 0.1
    high = float(finite.max()) * 2 if len(finite) else 10.0
    low, high = min(low, 0.5), max(high, 2.0)
    markers = ("o", "s", "^", "D", "v", "P")
    offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]
    missing = []
    for k, model in enumerate(models):
        rows = summary[summary["model"] == model].set_index("effect").reindex(effects)
        values = rows["run_persona_ratio"].astype(float).to_numpy()
        positions = np.arange(len(effects)) + offsets[k]
        shown = np.isfinite(values) & (values > 0)
        infinite = np.isposinf(values)
        line = ax.plot(
            values[shown],
            positions[shown],
            markers[k % len(markers)],
            label=f"{model} ({_answers_label(rows.iloc[0])})",
        )[0]
        ax.plot(
            np.full(infinite.sum(), high),
            positions[infinite],
            ">",
            color=line.get_color(),
        )
        missing += [f"{model}: {e}" for e, v in zip(effects, values, strict=True) if np.isnan(v)]
    ax.set_xscale("log")
    ax.set_xlim(low, high * 1.05)
    ax.axvline(1, ls=":", color="black", lw=1)
    ax.set_yticks(np.arange(len(effects)), effects, fontsize=7)
    ax.set_xlabel(
        "run variance / persona variance (re-asked participants); > at the edge: infinite"
    )
    ax.set_title("Run-to-run against persona-to-persona variance", fontsize=10)
    if missing:
        ax.text(
            0.99,
            0.01,
            "undefined (no spread):\n" + "\n".join(missing[:12]),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=6,
            color="grey",
        )
    ax.legend(fontsize=7, loc="upper left")
    return fig
