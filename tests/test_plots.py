"""Tests that every figure renders headless, is labelled and saves to PNG."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from simulacra.analysis import belief_metrics, collapse_curves, half_life
from simulacra.plots import (
    plot_commitment_vs_entropy,
    plot_entropy_curves,
    plot_half_life_distribution,
    plot_posterior_heatmap,
)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def beliefs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    names = ["pirate", "sage", "clerk"]
    rows = []
    for run in range(6):
        beta = 1.0 if run < 3 else 0.1
        for agent in ("alice", "bob"):
            log_p = np.zeros(3)
            for turn in range(7):
                if turn:
                    log_p = log_p + beta * rng.normal(0.0, 2.0, 3)
                p = np.exp(log_p - log_p.max())
                p /= p.sum()
                rows += [
                    {
                        "run_id": f"run{run}",
                        "turn": turn,
                        "agent": agent,
                        "simulacrum": name,
                        "loglik": np.nan,
                        "posterior": prob,
                        "belief.beta": beta,
                    }
                    for name, prob in zip(names, p, strict=True)
                ]
    return pd.DataFrame(rows)


def _check(fig: Figure, tmp_path: Path, name: str, index: int = 0) -> None:
    assert isinstance(fig, Figure)
    ax = fig.axes[index]
    assert ax.get_xlabel() or ax.get_xticklabels()
    assert ax.get_ylabel()
    out = tmp_path / f"{name}.png"
    fig.savefig(out, dpi=60)
    assert out.stat().st_size > 1000


def test_entropy_curves(beliefs: pd.DataFrame, tmp_path: Path) -> None:
    curves = collapse_curves(belief_metrics(beliefs), by=("belief.beta",), n_boot=100)
    fig = plot_entropy_curves(curves, group="belief.beta")
    _check(fig, tmp_path, "curves")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "turn"
    assert ax.get_ylabel() == "normalised entropy (H / log K)"
    lines = ax.get_lines()
    assert len(lines) == 2
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    assert lines[0].get_marker() != lines[1].get_marker()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "belief.beta = 0.1",
        "belief.beta = 1.0",
    ]


def test_entropy_curves_single_group_into_given_axes(beliefs: pd.DataFrame, tmp_path: Path) -> None:
    curves = collapse_curves(belief_metrics(beliefs), n_boot=50)
    fig, axes = plt.subplots(1, 2)
    out = plot_entropy_curves(curves, ax=axes[1])
    assert out is fig
    assert axes[1].get_ylabel() == "normalised entropy (H / log K)"
    _check(out, tmp_path, "curves_single", index=1)


def test_entropy_curves_unknown_group(beliefs: pd.DataFrame) -> None:
    curves = collapse_curves(belief_metrics(beliefs), n_boot=10)
    with pytest.raises(ValueError, match="nope"):
        plot_entropy_curves(curves, group="nope")


def test_posterior_heatmap(beliefs: pd.DataFrame, tmp_path: Path) -> None:
    fig = plot_posterior_heatmap(beliefs, run_id="run1", agent="bob")
    _check(fig, tmp_path, "heatmap")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "turn"
    assert ax.get_ylabel() == "simulacrum"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pirate", "sage", "clerk"]
    colourbar = fig.axes[1]
    assert colourbar.get_ylabel() == "posterior probability"
    image = ax.get_images()[0]
    assert image.get_array().shape == (3, 7)
    assert image.get_clim() == (0.0, 1.0)


def test_posterior_heatmap_defaults_and_errors(beliefs: pd.DataFrame) -> None:
    fig = plot_posterior_heatmap(beliefs)
    assert "run0" in fig.axes[0].get_title() and "alice" in fig.axes[0].get_title()
    with pytest.raises(ValueError):
        plot_posterior_heatmap(beliefs, run_id="missing")


def test_half_life_distribution(beliefs: pd.DataFrame, tmp_path: Path) -> None:
    h = half_life(belief_metrics(beliefs))
    h.loc[h.index[:3], ["half_life", "censored"]] = [np.nan, True]  # make some censored
    fig = plot_half_life_distribution(h, group="belief.beta")
    _check(fig, tmp_path, "half_life")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "half-life (turns)"
    assert "censored" in [t.get_text() for t in ax.get_yticklabels()]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "censored (never halved)" in legend and "halved" in legend
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].startswith("0.1\n") and ticks[1].startswith("1.0\n")
    assert all("censored" in t for t in ticks)
    assert ax.get_xlabel() == "belief.beta"


def test_half_life_distribution_without_censoring(beliefs: pd.DataFrame, tmp_path: Path) -> None:
    h = half_life(belief_metrics(beliefs))
    h = h[~h["censored"]]
    fig = plot_half_life_distribution(h)
    _check(fig, tmp_path, "half_life_single")


def test_commitment_vs_entropy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 40)
    table = pd.DataFrame(
        {
            "normalized_entropy": x,
            "commitment": np.clip(1 - x + rng.normal(0, 0.1, 40), 0, 1),
            "group": np.repeat(["smollm2", "gemma"], 20),
        }
    )
    fig = plot_commitment_vs_entropy(table, reference=True)
    _check(fig, tmp_path, "commitment")
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    assert "entropy" in ax.get_xlabel()
    assert "commitment" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 3


def test_commitment_vs_entropy_without_group(tmp_path: Path) -> None:
    table = pd.DataFrame({"normalized_entropy": [0.1, 0.5, 0.9], "commitment": [0.8, 0.4, 0.2]})
    _check(plot_commitment_vs_entropy(table), tmp_path, "commitment_plain")
    with pytest.raises(ValueError, match="commitment"):
        plot_commitment_vs_entropy(table.drop(columns="commitment"))
