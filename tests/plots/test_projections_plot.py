"""The projections figure and its means, on a synthetic table."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from simulacra.plots.projections import mean_projections, plot_projections


def _table() -> pd.DataFrame:
    rows = []
    for run_id, coefficient in (("a", 0.0), ("b", 4.0), ("c", 4.0)):
        for turn in (1, 2):
            for layer, value in ((14, 1.0), (16, 3.0)):
                shift = coefficient + (1.0 if run_id == "c" else 0.0)
                rows.append(
                    {
                        "run_id": run_id,
                        "coefficient": coefficient,
                        "turn": turn,
                        "agent": "subject",
                        "vector": "pirate",
                        "layer": layer,
                        "projection": value + shift + turn,
                    }
                )
    return pd.DataFrame(rows)


def test_means_average_blocks_within_a_run_then_runs():
    means = mean_projections(_table(), ["coefficient"])
    row = means[(means["coefficient"] == 4.0) & (means["turn"] == 1)].iloc[0]
    # blocks: mean(1, 3) = 2; runs b and c: 2 + 4 + 1 and 2 + 5 + 1
    assert row["projection"] == pytest.approx(7.5) and row["n_runs"] == 2
    assert len(means) == 4


def test_the_figure_draws_one_line_per_grid_point_and_vector():
    fig = plot_projections(_table(), ["coefficient"])
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["coefficient = 0.0, subject, pirate", "coefficient = 4.0, subject, pirate"]
    plt.close(fig)
