"""Figures of the collapse of the superposition of simulacra.

Each function draws one figure from a tidy table produced by
:mod:`simulacra.analysis.collapse` (or the raw ``beliefs`` table) and returns the
:class:`~matplotlib.figure.Figure`. They use matplotlib's object API only, never
``plt.show()``, so they work headless; pass ``ax`` to draw into an existing axes,
and close figures you create in loops (``plt.close(fig)``).

Groups are told apart by line style and marker as well as colour, so the figures
stay readable in greyscale print. Figures with confidence bands say in their
legend what the bands are, draw no band for a group resting on fewer than
:data:`MIN_RUNS_FOR_BAND` observations, and mark such groups in the legend. Turn
axes get integer ticks.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import cycle

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

__all__ = [
    "MIN_RUNS_FOR_BAND",
    "plot_commitment_vs_entropy",
    "plot_entropy_curves",
    "plot_half_life_distribution",
    "plot_posterior_heatmap",
    "plot_probe_curves",
]

ENTROPY_LABEL = "normalised entropy (H / log K)"
LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
CMAP = "cividis"
BAND = "95% bootstrap CI of the mean"
"""What the bands of the curve figures are, unless the caller says otherwise."""
MIN_RUNS_FOR_BAND = 3
"""Groups with fewer observations than this get no band and are marked as too few."""
HALVED_MARKER = "o"
CENSORED_MARKER = "^"

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


def _integer_turns(ax: Axes) -> None:
    """Ticks at whole turns only."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _group_size(sub: pd.DataFrame) -> int | None:
    """The fewest observations behind any point of a group (None without an ``n`` column)."""
    if "n" not in sub.columns or sub.empty:
        return None
    return int(pd.to_numeric(sub["n"], errors="coerce").fillna(0).min())


def _band_legend_title(sizes: list[int | None], band: str, unit: str, min_n: int) -> str:
    """The legend title saying what the bands are, and which groups have none."""
    known = [n for n in sizes if n is not None]
    if known and all(n < min_n for n in known):
        return (
            f"no bands: every line rests on\nfewer than {min_n} {unit} (n = {max(known)} at most)"
        )
    title = f"bands: {band}\nacross {unit}"
    if any(n < min_n for n in known):
        title += f"\n(n < {min_n} {unit}: no band)"
    return title


def _label_with_size(label: str, n: int | None, sizes: list[int | None], min_n: int) -> str:
    """Mark a group with too few observations, unless every group has too few."""
    known = [m for m in sizes if m is not None]
    if n is None or n >= min_n or all(m < min_n for m in known):
        return label
    return f"{label} (n = {n})"


# ------------------------------------------------------------------ figures


def plot_entropy_curves(
    curves: pd.DataFrame,
    group: Group = None,
    ax: Axes | None = None,
    *,
    ylabel: str = ENTROPY_LABEL,
    band: str = BAND,
    unit: str = "runs",
    min_n: int = MIN_RUNS_FOR_BAND,
) -> Figure:
    """Plot mean collapse curves with their confidence bands.

    The legend, right of the axes, says what the bands are. A group whose ``n``
    (the observations behind a point) falls below ``min_n`` at some turn gets no
    band and its label says how many it has.

    Args:
        curves: output of :func:`simulacra.analysis.collapse_curves`: columns
            ``turn``, ``mean``, ``low``, ``high``, optionally ``n``, and the
            ``group`` column(s).
        group: column(s) whose values get one line each; None draws one line.
        ax: axes to draw into; a new figure when None.
        ylabel: y-axis label (change it when plotting another metric).
        band: what ``low`` and ``high`` are, for the legend.
        unit: what ``n`` counts, for the legend (``"runs"``).
        min_n: the fewest observations a band is drawn for.

    Returns:
        The figure.

    """
    fig, ax = _axes(ax)
    parts = _groups(curves, group)
    sizes = [_group_size(sub) for _, sub in parts]
    for (label, sub), n, style in zip(parts, sizes, _styles(len(parts)), strict=True):
        sub = sub.sort_values("turn")
        turn = sub["turn"].to_numpy(dtype=float)
        if n is None or n >= min_n:
            ax.fill_between(
                turn,
                sub["low"].to_numpy(dtype=float),
                sub["high"].to_numpy(dtype=float),
                color=style["color"],
                alpha=0.2,
                linewidth=0,
            )
        label = _label_with_size(label or "mean", n, sizes, min_n)
        ax.plot(turn, sub["mean"].to_numpy(dtype=float), label=label, **style)
    ax.set_xlabel("turn")
    _integer_turns(ax)
    ax.set_ylabel(ylabel)
    if ylabel == ENTROPY_LABEL:
        ax.set_ylim(-0.02, 1.05)
    ax.legend(
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
        title=_band_legend_title(sizes, band, unit, min_n),
        title_fontsize="small",
        alignment="left",
    )
    ax.set_title("collapse of the superposition")
    return fig


def _posterior_grid(sel: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """One agent's posterior as simulacra (rows, in table order) × turns, and the turn range."""
    names = list(pd.unique(sel["simulacrum"]))
    t0, t1 = int(sel["turn"].min()), int(sel["turn"].max())
    grid = sel.pivot_table(
        index="simulacrum", columns="turn", values="posterior", aggfunc="mean", sort=False
    ).reindex(index=names, columns=range(t0, t1 + 1))
    return grid, t0, t1


def _draw_posterior(ax: Axes, grid: pd.DataFrame, t0: int, t1: int) -> AxesImage:
    image = ax.imshow(
        grid.to_numpy(dtype=float),
        aspect="auto",
        interpolation="nearest",
        cmap=CMAP,
        vmin=0.0,
        vmax=1.0,
        extent=(t0 - 0.5, t1 + 0.5, len(grid.index) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(grid.index)), list(grid.index))
    _integer_turns(ax)
    ax.set_ylabel("simulacrum")
    return image


def plot_posterior_heatmap(
    beliefs: pd.DataFrame,
    run_id: str | None = None,
    agent: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot the posterior over simulacra, turn by turn, of every agent of one run.

    Args:
        beliefs: the tidy beliefs table.
        run_id: the run to show; the first run in the table when None (its id is
            in the title).
        agent: one agent to show; every agent of the run, one panel each from top
            to bottom, when None.
        ax: axes to draw one agent into; a new figure when None. With ``ax`` and
            no ``agent`` the run must have a single agent.

    Returns:
        The figure: per agent, its simulacra (rows, in table order) × turns,
        coloured by posterior probability on a fixed 0..1 scale, with one shared
        colour bar.

    Raises:
        ValueError: if the table is empty, has no rows for that run or agent, or
            ``ax`` is given for a run with several agents and no ``agent``.

    """
    if run_id is None:
        if beliefs.empty:
            raise ValueError("beliefs table is empty")
        run_id = beliefs["run_id"].iloc[0]
    run = beliefs[beliefs["run_id"] == run_id]
    if run.empty:
        raise ValueError(f"no beliefs for run_id={run_id!r}")
    agents = [agent] if agent is not None else list(pd.unique(run["agent"]))
    if ax is not None and len(agents) > 1:
        raise ValueError(
            f"run {run_id!r} has {len(agents)} agents {agents}; pass agent= to draw one "
            "into the given axes, or no axes to draw them all"
        )
    panels = []
    for name in agents:
        sel = run[run["agent"] == name]
        if sel.empty:
            raise ValueError(f"no beliefs for run_id={run_id!r}, agent={name!r}")
        panels.append((name, *_posterior_grid(sel)))
    if ax is not None or len(panels) == 1:
        fig, ax = _axes(ax)
        axes = [ax]
    else:
        heights = [len(grid.index) + 1.5 for _, grid, _, _ in panels]
        fig, grid_axes = plt.subplots(
            len(panels),
            1,
            sharex=True,
            figsize=(6.5, 0.28 * sum(heights) + 1.2),
            height_ratios=heights,
            layout="constrained",
            squeeze=False,
        )
        axes = list(grid_axes[:, 0])
    image = None
    for panel_ax, (name, grid, t0, t1) in zip(axes, panels, strict=True):
        image = _draw_posterior(panel_ax, grid, t0, t1)
        if len(panels) > 1:
            panel_ax.set_title(name, loc="left", fontsize="medium")
    axes[-1].set_xlabel("turn")
    if len(panels) == 1:
        axes[0].set_title(f"posterior of {panels[0][0]} ({run_id})")
    else:
        fig.suptitle(f"posterior over simulacra of every agent: run {run_id}")
    fig.colorbar(image, ax=axes, label="posterior probability")
    return fig


def plot_half_life_distribution(
    half_lives: pd.DataFrame,
    group: Group = None,
    ax: Axes | None = None,
    *,
    seed: int = 0,
) -> Figure:
    """Plot the half-lives of the runs as a jittered strip per group.

    Runs whose entropy halved are drawn at their half-life as filled circles;
    censored runs (never halved) as open triangles in a band above the last turn
    labelled "censored". The groups are the strips (and colours); every group uses
    the same two markers, so the legend holds for all of them. Runs with zero prior
    entropy are left out. A short bar marks each group's median (censored runs
    counting as +inf).

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
            marker=HALVED_MARKER,
            alpha=0.7,
            gid="halved",
        )
        ax.scatter(
            x_cens,
            np.full(cens.sum(), censor_y),
            facecolors="none",
            edgecolors=style["color"],
            marker=CENSORED_MARKER,
            alpha=0.9,
            gid="censored",
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
        Line2D([], [], color="grey", marker=HALVED_MARKER, linestyle="none", label="halved"),
        Line2D(
            [],
            [],
            color="grey",
            marker=CENSORED_MARKER,
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


def plot_probe_curves(
    curves: pd.DataFrame,
    probe: str | None = None,
    group: Group = None,
    *,
    options: Sequence[str] | None = None,
    band: str = BAND,
    unit: str = "runs",
    min_n: int = MIN_RUNS_FOR_BAND,
) -> Figure:
    """Plot a probe's answer probabilities over turns, one panel per agent and option.

    Args:
        curves: output of :func:`simulacra.analysis.probes.probe_curves`: columns
            ``probe``, ``agent``, ``option``, ``turn``, ``mean``, ``low``, ``high``,
            ``n`` and the ``group`` column(s).
        probe: the probe to show; may be None when the table holds one probe.
        group: column(s) whose values get one line each; None draws one line.
        options: the options to show, one row of panels each; by default the
            first of two options (the other is its complement), else all.
        band: what ``low`` and ``high`` are, for the legend.
        unit: what ``n`` counts, for the legend (``"runs"``).
        min_n: the fewest observations a band is drawn for; groups with fewer
            are marked in the legend.

    Returns:
        The figure: columns of panels are agents (in table order), rows are
        options; y is the probability of the option, x the turn after which the
        probe was asked (0: before the dialogue).

    Raises:
        ValueError: if the table is empty, or ``probe`` is None and the table
            holds several probes, or names a probe or option it does not hold.

    """
    from simulacra.analysis.probes import shown_options

    probes = list(pd.unique(curves["probe"])) if "probe" in curves.columns else []
    if not probes:
        raise ValueError("no probe answers to plot")
    if probe is None:
        if len(probes) > 1:
            raise ValueError(f"the table holds several probes {probes}; choose one with probe=")
        probe = probes[0]
    sel = curves[curves["probe"] == probe]
    if sel.empty:
        raise ValueError(f"no answers to probe {probe!r}; the table holds {probes}")
    all_options = list(pd.unique(sel["option"]))
    options = shown_options(all_options) if options is None else list(options)
    unknown = [o for o in options if o not in all_options]
    if unknown:
        raise ValueError(f"probe {probe!r} has no option(s) {unknown}; it has {all_options}")
    agents = list(pd.unique(sel["agent"]))
    parts = _groups(sel, group)
    sizes = [_group_size(sub) for _, sub in parts]
    styles = _styles(len(parts))
    fig, axes = plt.subplots(
        len(options),
        len(agents),
        sharex=True,
        sharey=True,
        squeeze=False,
        figsize=(1.0 + 3.4 * len(agents) + 2.6, 0.6 + 2.8 * len(options)),
        layout="constrained",
    )
    handles: dict[int, Line2D] = {}
    for i, option in enumerate(options):
        for j, agent in enumerate(agents):
            ax = axes[i, j]
            for k, ((label, sub), n, style) in enumerate(zip(parts, sizes, styles, strict=True)):
                sub = sub[(sub["option"] == option) & (sub["agent"] == agent)]
                sub = sub.sort_values("turn")
                if sub.empty:
                    continue
                turn = sub["turn"].to_numpy(dtype=float)
                if n is None or n >= min_n:
                    ax.fill_between(
                        turn,
                        sub["low"].to_numpy(dtype=float),
                        sub["high"].to_numpy(dtype=float),
                        color=style["color"],
                        alpha=0.2,
                        linewidth=0,
                    )
                (line,) = ax.plot(
                    turn,
                    sub["mean"].to_numpy(dtype=float),
                    label=_label_with_size(label or "all runs", n, sizes, min_n),
                    **style,
                )
                handles.setdefault(k, line)
            ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
            ax.set_ylim(-0.02, 1.02)
            _integer_turns(ax)
            if i == 0:
                ax.set_title(agent)
            if j == 0:
                ax.set_ylabel(f'P("{option}")')
            if i == len(options) - 1:
                ax.set_xlabel("turn")
    fig.suptitle(f"probe {probe}: probability of each answer")
    fig.legend(
        handles=[handles[k] for k in sorted(handles)],
        loc="outside right upper",
        frameon=False,
        fontsize="small",
        title=_band_legend_title(sizes, band, unit, min_n),
        title_fontsize="small",
        alignment="left",
    )
    return fig
