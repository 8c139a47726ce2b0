"""The figure of projections: utterances' activations on persona vectors, turn by turn.

Draws the ``projections`` table of a run or a sweep
(:mod:`simulacra.simulation.projections`): the projection averaged over the
vector's blocks, then over runs, per turn, one line per vector (and per grid
point of a sweep). Matplotlib's object API only, so it works headless.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import cycle

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["mean_projections", "plot_projections"]

_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def mean_projections(table: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """The projection per turn: mean over blocks within a run, then mean over runs.

    Args:
        table: the projections table (``run_id, turn, agent, vector, layer, projection``
            and any grid columns).
        by: grid columns to keep apart.

    Returns:
        Columns ``*by, agent, vector, turn, projection, n_runs``.

    """
    keys = [*by, "agent", "vector"]
    per_run = table.groupby(["run_id", *keys, "turn"], sort=True, dropna=False)["projection"].mean()
    grouped = per_run.reset_index().groupby([*keys, "turn"], sort=True, dropna=False)
    return grouped["projection"].agg(projection="mean", n_runs="count").reset_index()


def plot_projections(table: pd.DataFrame, by: Sequence[str] = ()) -> Figure:
    """One line per agent, vector (and grid point): the mean projection at each turn.

    Args:
        table: the projections table.
        by: grid columns to draw as separate lines.

    Returns:
        The figure.

    """
    means = mean_projections(table, by)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    styles, markers = cycle(_STYLES), cycle(_MARKERS)
    for key, group in means.groupby([*by, "agent", "vector"], sort=True, dropna=False):
        parts = key if isinstance(key, tuple) else (key,)
        names = [*by, "agent", "vector"]
        label = ", ".join(
            f"{n} = {v}" if n in by else str(v) for n, v in zip(names, parts, strict=True)
        )
        ax.plot(
            group["turn"],
            group["projection"],
            linestyle=next(styles),
            marker=next(markers),
            label=label,
        )
    ax.set_xlabel("turn")
    ax.set_ylabel("projection on the vector (mean over its blocks)")
    ax.set_title("utterances projected on persona vectors")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig
