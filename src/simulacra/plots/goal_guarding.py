"""Figures of the goal-guarding battery, drawn from its summary tables.

Each function draws one figure from :func:`simulacra.analysis.goal_guarding.summarize`
(or :func:`~simulacra.analysis.goal_guarding.belief_summary`, or the raw
``decisions`` table) and returns the :class:`~matplotlib.figure.Figure`. They use
matplotlib's object API only, so they work headless; close the figures you create
in loops (``plt.close(fig)``). Conditions are told apart by marker as well as
colour, so the figures stay readable in greyscale.

- :func:`plot_rates_by_peer`: SP and PP by peer condition with CIs, per model (rows)
  and channel (columns), the no-peer baseline first in every panel;
- :func:`plot_par_forest`: the peer amplification ratio as a forest plot;
- :func:`plot_controls_beside_effects`: the peer effects (ΔSP) next to their
  length-matched control and the positive and negative controls;
- :func:`plot_guarding_mass`: the subject's mass on ``guarding`` simulacra before and
  after the peer material;
- :func:`plot_position_bias`: P(B) with A listed first against B listed first;
- :func:`plot_steered_control`: the activation positive control, the shift of P(B)
  by steering coefficient, beside the instruction controls.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "plot_controls_beside_effects",
    "plot_guarding_mass",
    "plot_par_forest",
    "plot_position_bias",
    "plot_rates_by_peer",
    "plot_steered_control",
]

PEER_ORDER: tuple[str, ...] = ("none", "good", "neutral", "bad")
CHANNEL_ORDER: tuple[str, ...] = ("dialogue", "memory", "system", "file")
MARKERS = {"SP": "o", "PP": "s", "delta_SP": "o", "length_control": "D"}
COLORS = {"SP": "#1b6ca8", "PP": "#d1495b", "delta_SP": "#1b6ca8", "length_control": "#8f8f8f"}


def _ordered(values: Sequence[str], order: Sequence[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    return [v for v in order if v in present] + sorted(v for v in present if v not in order)


def _errors(rows: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bar lengths from estimate, ci_low and ci_high (NaN-safe)."""
    low = (rows["estimate"] - rows["ci_low"]).clip(lower=0).fillna(0)
    high = (rows["ci_high"] - rows["estimate"]).clip(lower=0).fillna(0)
    return np.vstack([low.to_numpy(float), high.to_numpy(float)])


def _empty(message: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5, 2), layout="constrained")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


def plot_rates_by_peer(summary: pd.DataFrame) -> Figure:
    """SP and PP by peer condition with CIs; one row of panels per model, one column per channel.

    Args:
        summary: the output of :func:`~simulacra.analysis.goal_guarding.summarize`.

    Returns:
        The figure. The no-peer rate (condition ``"none"``) is drawn first in
        every panel; a dotted line marks 0.5, a coin flip.
    """
    rates = summary[summary["metric"].isin(["SP", "PP"])]
    if rates.empty:
        return _empty("no SP or PP rows")
    models = list(dict.fromkeys(rates["model"]))
    channels = _ordered(
        [c for c in rates["channel"] if c not in ("none", "all", "")], CHANNEL_ORDER
    ) or ["none"]
    fig, axes = plt.subplots(
        len(models),
        len(channels),
        figsize=(3.2 * len(channels) + 1, 2.8 * len(models) + 0.6),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for r, model in enumerate(models):
        for c, channel in enumerate(channels):
            ax = axes[r][c]
            own = rates[(rates["model"] == model) & rates["channel"].isin([channel, "none"])]
            peers = _ordered(own["peer"], PEER_ORDER)
            x = {p: i for i, p in enumerate(peers)}
            for k, metric in enumerate(("SP", "PP")):
                rows = own[own["metric"] == metric]
                if rows.empty:
                    continue
                xs = np.array([x[p] for p in rows["peer"]]) + (k - 0.5) * 0.18
                ax.errorbar(
                    xs,
                    rows["estimate"],
                    yerr=_errors(rows),
                    fmt=MARKERS[metric],
                    color=COLORS[metric],
                    capsize=3,
                    label=metric,
                )
            ax.axhline(0.5, color="0.6", linestyle=":", linewidth=1)
            ax.set_xticks(range(len(peers)), peers)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{model}\n{channel}", fontsize=9)
            if c == 0:
                ax.set_ylabel("P(protective action B)")
            if r == len(models) - 1:
                ax.set_xlabel("peer")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return fig


def plot_par_forest(summary: pd.DataFrame) -> Figure:
    """The peer amplification ratio PAR = SP_peer / SP_nopeer as a forest plot.

    Args:
        summary: the output of :func:`~simulacra.analysis.goal_guarding.summarize`.

    Returns:
        One line per model × condition with its CI; the line at 1 is no amplification.
        Rows whose model failed its controls are drawn hollow.
    """
    rows = summary[summary["metric"] == "PAR"].reset_index(drop=True)
    if rows.empty:
        return _empty("no PAR rows")
    labels = [f"{m}  {c}" for m, c in zip(rows["model"], rows["condition"], strict=True)]
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(rows) + 1.4), layout="constrained")
    y = np.arange(len(rows))[::-1]
    ok = rows["interpretable"].astype(bool).to_numpy()
    for filled in (True, False):
        pick = ok if filled else ~ok
        if not pick.any():
            continue
        ax.errorbar(
            rows["estimate"][pick],
            y[pick],
            xerr=_errors(rows[pick]),
            fmt="o",
            color="#1b6ca8",
            mfc="#1b6ca8" if filled else "white",
            capsize=3,
            label="controls passed" if filled else "controls failed: not interpretable",
        )
    ax.axvline(1.0, color="0.4", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("PAR = SP with peer / SP without peer")
    fig.legend(loc="outside lower center", frameon=False, fontsize=8)
    return fig


def plot_controls_beside_effects(summary: pd.DataFrame) -> Figure:
    """Peer effects (ΔSP) beside their length-matched controls and the instruction controls.

    Args:
        summary: the output of :func:`~simulacra.analysis.goal_guarding.summarize`.

    Returns:
        One panel per model: shifts of P(B) against the no-peer baseline with CIs.
        The positive and negative controls come first; then each channel/peer
        condition shows its peer effect (circle) and its length control (diamond).
    """
    wanted = ["positive_control", "negative_control", "delta_SP", "length_control"]
    rows = summary[summary["metric"].isin(wanted) & (summary["channel"] != "all")]
    if rows.empty:
        return _empty("no control or peer-effect rows")
    models = list(dict.fromkeys(rows["model"]))
    conditions = list(dict.fromkeys(rows.loc[rows["metric"] == "delta_SP", "condition"]))
    conditions += [
        c
        for c in dict.fromkeys(rows.loc[rows["metric"] == "length_control", "condition"])
        if c not in conditions
    ]
    labels = ["positive", "negative", *conditions]
    fig, axes = plt.subplots(
        1,
        len(models),
        figsize=(4.2 * len(models) + 0.5, 0.38 * len(labels) + 1.6),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    y = {label: len(labels) - 1 - i for i, label in enumerate(labels)}
    for ax, model in zip(axes[0], models, strict=True):
        own = rows[rows["model"] == model]
        for metric, offset, color, marker, name in (
            ("positive_control", 0.0, "#2e933c", "^", "positive control"),
            ("negative_control", 0.0, "#d1495b", "v", "negative control"),
            ("delta_SP", 0.15, COLORS["delta_SP"], MARKERS["delta_SP"], "peer effect ΔSP"),
            (
                "length_control",
                -0.15,
                COLORS["length_control"],
                MARKERS["length_control"],
                "length control",
            ),
        ):
            part = own[own["metric"] == metric]
            if part.empty:
                continue
            ys = np.array([y[c] for c in part["condition"]], dtype=float) + offset
            ax.errorbar(
                part["estimate"],
                ys,
                xerr=_errors(part),
                fmt=marker,
                color=color,
                capsize=3,
                label=name,
            )
        ax.axvline(0.0, color="0.4", linestyle="--", linewidth=1)
        ok = bool(own["controls_ok"].iloc[0]) if "controls_ok" in own else False
        ax.set_title(
            f"{model}\ncontrols {'passed' if ok else 'FAILED: effects not interpretable'}",
            fontsize=9,
        )
        ax.set_xlabel("shift in P(B) vs no peer")
    axes[0][0].set_yticks(list(y.values()), list(y.keys()), fontsize=8)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=4, frameon=False, fontsize=8)
    return fig


def plot_guarding_mass(beliefs: pd.DataFrame) -> Figure:
    """The subject's mass on ``guarding`` simulacra before and after the material.

    Args:
        beliefs: the output of :func:`~simulacra.analysis.goal_guarding.belief_summary`.

    Returns:
        One panel per model; per condition a line from the prior (before) to the
        posterior after the peer material or the length-matched neutral text.
    """
    rows = beliefs[beliefs["channel"] != "none"]
    if rows.empty:
        return _empty("no belief rows with peer material")
    models = list(dict.fromkeys(rows["model"]))
    fig, axes = plt.subplots(
        1, len(models), figsize=(4.4 * len(models) + 0.5, 3.6), squeeze=False, layout="constrained"
    )
    for ax, model in zip(axes[0], models, strict=True):
        own = rows[rows["model"] == model].reset_index(drop=True)
        labels = [
            f"{ch}/{p if ctl == 'none' else 'length~' + m}"
            for ch, p, ctl, m in zip(
                own["channel"], own["peer"], own["control"], own["matched"], strict=True
            )
        ]
        x = np.arange(len(own))
        ax.scatter(
            x,
            own["guarding_before"],
            marker="o",
            facecolors="white",
            edgecolors="0.3",
            label="before",
        )
        ax.errorbar(
            x,
            own["guarding_after"],
            yerr=np.vstack(
                [
                    (own["shift"] - own["ci_low"]).clip(lower=0).fillna(0),
                    (own["ci_high"] - own["shift"]).clip(lower=0).fillna(0),
                ]
            ),
            fmt="s",
            color="#d1495b",
            capsize=3,
            label="after (CI of the shift over seeds)",
        )
        for i in x:
            ax.plot(
                [i, i], [own["guarding_before"][i], own["guarding_after"][i]], color="0.7", zorder=0
            )
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("mass on guarding simulacra")
        ax.set_title(model, fontsize=9)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    return fig


def plot_position_bias(decisions: pd.DataFrame) -> Figure:
    """P(B) with A listed first against P(B) with B listed first, per model.

    Args:
        decisions: the ``decisions`` table.

    Returns:
        One panel per model; points above the diagonal favour the option listed first.
    """
    if decisions.empty:
        return _empty("no decisions")
    models = list(dict.fromkeys(decisions["model"]))
    fig, axes = plt.subplots(
        1, len(models), figsize=(3.6 * len(models) + 0.4, 3.6), squeeze=False, layout="constrained"
    )
    for ax, model in zip(axes[0], models, strict=True):
        own = decisions[decisions["model"] == model]
        ax.scatter(own["p_b_order_0"], own["p_b_order_1"], s=8, alpha=0.5, color="#1b6ca8")
        ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("P(B), A listed first")
        ax.set_ylabel("P(B), B listed first")
        ax.set_title(model, fontsize=9)
    return fig


def plot_steered_control(summary: pd.DataFrame) -> Figure:
    """The activation positive control: the shift of P(B) by steering coefficient.

    Args:
        summary: the output of :func:`~simulacra.analysis.goal_guarding.summarize`.

    Returns:
        One panel per model: per subject, the paired shift of P(B) (steered minus the
        same items unsteered) against the coefficient, with CIs; dashed lines mark the
        instruction controls' shifts (order to protect, order to comply) for scale.
    """
    rows = summary[summary["metric"] == "steered_control"]
    if rows.empty:
        return _empty("no steered-control rows")
    models = list(dict.fromkeys(rows["model"]))
    fig, axes = plt.subplots(
        1, len(models), figsize=(4.4 * len(models) + 0.5, 3.6), squeeze=False, layout="constrained"
    )
    styles = {"self": ("o", COLORS["SP"], -0.08), "peer": ("s", COLORS["PP"], 0.08)}
    for ax, model in zip(axes[0], models, strict=True):
        own = rows[rows["model"] == model]
        for subject, (marker, color, offset) in styles.items():
            part = own[own["subject"] == subject]
            if part.empty:
                continue
            x = np.array([float(str(c).rsplit(":", 1)[1]) for c in part["condition"]])
            order = np.argsort(x)
            part = part.iloc[order]
            ax.errorbar(
                x[order] + offset,
                part["estimate"],
                yerr=_errors(part),
                fmt=f"{marker}-",
                color=color,
                capsize=3,
                label=f"steered, subject {subject}",
            )
        every = summary[summary["model"] == model]
        for metric, color, name in (
            ("positive_control", "#2e933c", "order to protect"),
            ("negative_control", "#d1495b", "order to comply"),
        ):
            hit = every[every["metric"] == metric]
            if len(hit):
                ax.axhline(
                    float(hit["estimate"].iloc[0]),
                    color=color,
                    linestyle="--",
                    linewidth=1,
                    label=name,
                )
        ax.axhline(0.0, color="0.4", linewidth=0.8)
        ax.set_xlabel("steering coefficient (+: toward guarding)")
        ax.set_ylabel("shift in P(B) vs unsteered")
        ax.set_title(model, fontsize=9)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    return fig
