"""Figures of the collapse of the superposition of simulacra.

Each function draws one figure from a tidy table produced by
:mod:`simulacra.analysis.collapse` (or the raw ``beliefs`` table) and returns the
:class:`~matplotlib.figure.Figure`. They use matplotlib's object API only, never
``plt.show()``, so they work headless; pass ``ax`` to draw into an existing axes,
and close figures you create in loops (``plt.close(fig)``).

Groups are told apart by line style and marker as well as colour, so the figures
stay readable in greyscale print.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import cycle

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

__all__ = [
    "plot_commitment_vs_entropy",
    "plot_entropy_curves",
    "plot_half_life_distribution",
    "plot_posterior_heatmap",
]

ENTROPY_LABEL = "normalised entropy (H / log K)"
LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
CMAP = "cividis"

Group = str | Sequence[str] | None


# ------------------------------------------------------------------ helpers


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 4.0)) -> tuple[Figure, Axes]:
    """Return ``ax``'s figure and ``ax``, or a new figure with one axes."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    try:
        fig = ax.get_figure(root=True)
    except TypeError:  # matplotlib < 3.10
        fig = ax.get_figure()
    return fig, ax


def _group_columns(group: Group) -> list[str]:
    if group is None:
        return []
    return [group] if isinstance(group, str) else list(group)


def _groups(
    table: pd.DataFrame, group: Group, *, names: bool = True
) -> list[tuple[str, pd.DataFrame]]:
    """Split ``table`` by the ``group`` column(s) into (label, sub-table) pairs."""
    cols = _group_columns(group)
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(f"group column(s) {missing} not in table; has {list(table.columns)}")
    if not cols:
        return [("", table)]
    out = []
    for key, sub in table.groupby(cols, sort=True, dropna=False):
        out.append((_label(cols, key, names=names), sub))
    return out


def _label(cols: list[str], key: Hashable, *, names: bool = True) -> str:
    values = key if isinstance(key, tuple) else (key,)
    if len(cols) == 1:
        return f"{cols[0]} = {values[0]}" if names else f"{values[0]}"
    return ", ".join(f"{c} = {v}" for c, v in zip(cols, values, strict=True))


def _styles(n: int) -> list[dict[str, object]]:
    """Colour, line style and marker for ``n`` groups, distinct in greyscale."""
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(n, 1)))
    ls, mk = cycle(LINESTYLES), cycle(MARKERS)
    return [{"color": colours[i], "linestyle": next(ls), "marker": next(mk)} for i in range(n)]


# ------------------------------------------------------------------ figures


def plot_entropy_curves(
    curves: pd.DataFrame,
    group: Group = None,
    ax: Axes | None = None,
    *,
    ylabel: str = ENTROPY_LABEL,
) -> Figure:
    """Plot mean collapse curves with their confidence bands.

    Args:
        curves: output of :func:`simulacra.analysis.collapse_curves`: columns
            ``turn``, ``mean``, ``low``, ``high`` and the ``group`` column(s).
        group: column(s) whose values get one line each; None draws one line.
        ax: axes to draw into; a new figure when None.
        ylabel: y-axis label (change it when plotting another metric).

    Returns:
        The figure.

    """
    fig, ax = _axes(ax)
    parts = _groups(curves, group)
    for (label, sub), style in zip(parts, _styles(len(parts)), strict=True):
        sub = sub.sort_values("turn")
        turn = sub["turn"].to_numpy(dtype=float)
        ax.fill_between(
            turn,
            sub["low"].to_numpy(dtype=float),
            sub["high"].to_numpy(dtype=float),
            color=style["color"],
            alpha=0.2,
            linewidth=0,
        )
        ax.plot(turn, sub["mean"].to_numpy(dtype=float), label=label or "mean", **style)
    ax.set_xlabel("turn")
    ax.set_ylabel(ylabel)
    if ylabel == ENTROPY_LABEL:
        ax.set_ylim(-0.02, 1.05)
    ax.legend(frameon=False)
    ax.set_title("collapse of the superposition")
    return fig


def plot_posterior_heatmap(
    beliefs: pd.DataFrame,
    run_id: str | None = None,
    agent: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot one agent's posterior over its simulacra, turn by turn.

    Args:
        beliefs: the tidy beliefs table.
        run_id: the run to show; the first run in the table when None.
        agent: the agent to show; the run's first agent when None.
        ax: axes to draw into; a new figure when None.

    Returns:
        The figure: simulacra (rows, in table order) × turns, coloured by
        posterior probability on a fixed 0..1 scale.

    Raises:
        ValueError: if the table is empty or has no rows for that run and agent.

    """
    if run_id is None:
        if beliefs.empty:
            raise ValueError("beliefs table is empty")
        run_id = beliefs["run_id"].iloc[0]
    sel = beliefs[beliefs["run_id"] == run_id]
    if agent is None and not sel.empty:
        agent = sel["agent"].iloc[0]
    sel = sel[sel["agent"] == agent]
    if sel.empty:
        raise ValueError(f"no beliefs for run_id={run_id!r}, agent={agent!r}")
    names = list(pd.unique(sel["simulacrum"]))
    t0, t1 = int(sel["turn"].min()), int(sel["turn"].max())
    grid = sel.pivot_table(
        index="simulacrum", columns="turn", values="posterior", aggfunc="mean", sort=False
    ).reindex(index=names, columns=range(t0, t1 + 1))
    fig, ax = _axes(ax)
    image = ax.imshow(
        grid.to_numpy(dtype=float),
        aspect="auto",
        interpolation="nearest",
        cmap=CMAP,
        vmin=0.0,
        vmax=1.0,
        extent=(t0 - 0.5, t1 + 0.5, len(names) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(names)), names)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("turn")
    ax.set_ylabel("simulacrum")
    ax.set_title(f"posterior of {agent} ({run_id})")
    fig.colorbar(image, ax=ax, label="posterior probability")
    return fig


def plot_half_life_distribution(
    half_lives: pd.DataFrame,
    group: Group = None,
    ax: Axes | None = None,
    *,
    seed: int = 0,
) -> Figure:
    """Plot the half-lives of the runs as a jittered strip per group.

    Runs whose entropy halved are drawn at their half-life; censored runs (never
    halved) are drawn separately, with an open marker in a band above the last
    turn labelled "censored". Runs with zero prior entropy are left out. A short
    bar marks each group's median (censored runs counting as +inf).

    Args:
        half_lives: output of :func:`simulacra.analysis.half_life` (columns
            ``half_life``, ``censored``, ``last_turn`` and the ``group`` column(s)).
        group: column(s) splitting the runs into strips; None draws one strip.
        ax: axes to draw into; a new figure when None.
        seed: seed of the horizontal jitter.

    Returns:
        The figure.

    """
    fig, ax = _axes(ax, figsize=(7.5, 4.0))
    rng = np.random.default_rng(seed)
    parts = _groups(half_lives, group, names=False)
    ticks: list[str] = []
    finite = half_lives["half_life"].to_numpy(dtype=float)
    top = np.nanmax(
        np.r_[finite, half_lives.get("last_turn", pd.Series(dtype=float)).to_numpy(float), 1.0]
    )
    censor_y = top + 1.0
    for i, ((label, sub), style) in enumerate(zip(parts, _styles(len(parts)), strict=True)):
        cens = sub["censored"].to_numpy(dtype=bool)
        hl = sub["half_life"].to_numpy(dtype=float)
        done = ~cens & ~np.isnan(hl)
        x_done = i + rng.uniform(-0.15, 0.15, done.sum())
        x_cens = i + rng.uniform(-0.15, 0.15, cens.sum())
        ax.scatter(
            x_done,
            hl[done],
            color=style["color"],
            marker=style["marker"],
            alpha=0.7,
        )
        ax.scatter(
            x_cens,
            np.full(cens.sum(), censor_y),
            facecolors="none",
            edgecolors=style["color"],
            marker="^",
            alpha=0.9,
        )
        values = np.r_[hl[done], np.full(cens.sum(), np.inf)]
        if values.size:
            median = float(np.median(values))
            y = censor_y if np.isinf(median) else median
            ax.hlines(y, i - 0.3, i + 0.3, colors="black", linewidth=2)
        ticks.append(f"{label or 'all runs'}\n{cens.sum()}/{cens.size} censored")
    ax.axhline(censor_y - 0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(parts)), ticks)
    yticks = [t for t in MaxNLocator(nbins=6, integer=True).tick_values(0, top) if 0 <= t <= top]
    ax.set_yticks([*yticks, censor_y], [f"{t:g}" for t in yticks] + ["censored"])
    ax.set_ylim(-0.5, censor_y + 1.0)
    ax.set_xlim(-0.6, len(parts) - 0.4)
    ax.set_xlabel(", ".join(_group_columns(group)) or "")
    ax.set_ylabel("half-life (turns)")
    handles = [
        Line2D([], [], color="grey", marker="o", linestyle="none", label="halved"),
        Line2D(
            [],
            [],
            color="grey",
            marker="^",
            markerfacecolor="none",
            linestyle="none",
            label="censored (never halved)",
        ),
        Line2D([], [], color="black", linewidth=2, label="median (censored = +inf)"),
    ]
    ax.legend(handles=handles, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("entropy half-life per run")
    return fig


def plot_commitment_vs_entropy(
    table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    reference: bool = False,
) -> Figure:
    """Scatter behavioural commitment against belief entropy.

    Behavioural commitment comes from the regeneration test (``1 - H(labels) /
    log K`` over regenerations labelled by their most likely simulacrum); belief
    entropy is the posterior's normalised entropy at the same point. Both axes
    run from 0 to 1.

    Args:
        table: columns ``normalized_entropy`` and ``commitment``, optionally
            ``group`` (one marker style per value).
        ax: axes to draw into; a new figure when None.
        reference: also draw the line ``commitment = 1 - entropy``, where
            behaviour would be exactly as committed as the beliefs.

    Returns:
        The figure.

    Raises:
        ValueError: if a required column is missing.

    """
    missing = [c for c in ("normalized_entropy", "commitment") if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}")
    fig, ax = _axes(ax, figsize=(5.0, 5.0))
    group = "group" if "group" in table.columns else None
    parts = _groups(table, group)
    for (label, sub), style in zip(parts, _styles(len(parts)), strict=True):
        ax.scatter(
            sub["normalized_entropy"].to_numpy(dtype=float),
            sub["commitment"].to_numpy(dtype=float),
            color=style["color"],
            marker=style["marker"],
            alpha=0.75,
            label=label or None,
        )
    if reference:
        ax.plot([0, 1], [1, 0], color="grey", linestyle="--", linewidth=1, label="1 − entropy")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel("belief " + ENTROPY_LABEL)
    ax.set_ylabel("regeneration commitment (1 − H(labels) / log K)")
    if group or reference:
        ax.legend(frameon=False)
    ax.set_title("commitment vs belief entropy")
    return fig
