"""The stability battery's measure-(b) figures: drift along the axis and the capping effect."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from simulacra.plots.stability import plot_axis_drift, plot_capping_effect


def test_axis_drift_draws_one_panel_per_pressure_and_a_dashed_capped_line():
    rows = []
    for pressure in ("none", "emotional"):
        for capping in ("off", "on"):
            for turn in (1, 2, 3):
                rows.append(
                    {
                        "model": "m",
                        "source": "prompted",
                        "pressure": pressure,
                        "capping": capping,
                        "turn": turn,
                        "phase": "warmup" if turn == 1 else "pressure",
                        "estimate": 2.0 - 0.1 * turn,
                        "ci_low": 1.8 - 0.1 * turn,
                        "ci_high": 2.2 - 0.1 * turn,
                        "n": 3,
                    }
                )
    fig = plot_axis_drift(pd.DataFrame(rows))
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["none", "emotional"]
    styles = {line.get_label(): line.get_linestyle() for line in axes[1].get_lines()}
    assert styles == {"prompted": "-", "prompted capped": "--"}


def test_capping_effect_plots_each_row_and_the_anchor():
    summary = pd.DataFrame(
        {
            "model": ["m", "m", "Abdulhai et al. 2025 (anchor)"],
            "metric": ["capping_drift_reduction"] * 3,
            "condition": ["emotional (axis drift)", "emotional (retention drift)", "x"],
            "estimate": [40.0, -10.0, 55.0],
            "ci_low": [20.0, -50.0, np.nan],
            "ci_high": [60.0, 30.0, np.nan],
            "n": [3, 3, 0],
        }
    )
    fig = plot_capping_effect(summary)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "emotional (axis drift)",
        "emotional (retention drift)",
    ]
    assert any(list(line.get_xdata()) == [55.0, 55.0] for line in ax.get_lines())


def test_capping_effect_adds_the_retention_contrast_panel():
    summary = pd.DataFrame(
        {
            "model": ["m", "m", "m"],
            "metric": ["capping_drift_reduction", "capping_contrast", "capping_contrast"],
            "condition": [
                "emotional (axis drift)",
                "none / emotional / capped - uncapped",
                "prompted / emotional / capped - uncapped",
            ],
            "estimate": [np.nan, 0.1, -0.2],
            "ci_low": [np.nan, 0.05, -0.3],
            "ci_high": [np.nan, 0.15, -0.1],
            "n": [3, 3, 3],
        }
    )
    fig = plot_capping_effect(summary)
    assert len(fig.axes) == 2
    right = fig.axes[1]
    assert [t.get_text() for t in right.get_yticklabels()] == [
        "none / emotional / capped - uncapped",
        "prompted / emotional / capped - uncapped",
    ]
    assert any(list(line.get_xdata()) == [-0.3, -0.1] for line in right.get_lines())
