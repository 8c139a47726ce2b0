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
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.markers import MarkerStyle

from simulacra.analysis import belief_metrics, collapse_curves, half_life
from simulacra.analysis.probes import probe_curves
from simulacra.plots.collapse import (
    CENSORED_MARKER,
    HALVED_MARKER,
    plot_commitment_vs_entropy,
    plot_entropy_curves,
    plot_half_life_distribution,
    plot_posterior_heatmap,
    plot_probe_curves,
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


def _integer_ticks(ax: Axes) -> bool:
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    return bool(ticks) and all(float(t).is_integer() for t in ticks)


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
    assert "95% bootstrap CI" in ax.get_legend().get_title().get_text()
    assert len(ax.collections) == 2  # one band per group
    assert _integer_ticks(ax)


def test_entropy_curves_mark_groups_with_fewer_than_three_runs(beliefs: pd.DataFrame) -> None:
    few = beliefs[beliefs["run_id"].isin(["run0", "run3", "run4", "run5"])]
    metrics = belief_metrics(few[few["agent"] == "alice"])
    curves = collapse_curves(metrics, by="belief.beta", n_boot=50)
    assert set(curves.groupby("belief.beta")["n"].max()) == {1, 3}
    ax = plot_entropy_curves(curves, group="belief.beta").axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["belief.beta = 0.1", "belief.beta = 1.0 (n = 1)"]
    assert "n < 3 runs: no band" in ax.get_legend().get_title().get_text()
    assert len(ax.collections) == 1  # the band of the group with 3 runs only


def test_entropy_curves_of_single_runs_say_there_are_no_bands(beliefs: pd.DataFrame) -> None:
    metrics = belief_metrics(beliefs[beliefs["run_id"] == "run0"])
    ax = plot_entropy_curves(collapse_curves(metrics, by="agent", n_boot=10), group="agent").axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "agent = alice",
        "agent = bob",
    ]
    assert "no bands" in ax.get_legend().get_title().get_text()
    assert not ax.collections


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


def test_posterior_heatmap_shows_every_agent_of_the_run(
    beliefs: pd.DataFrame, tmp_path: Path
) -> None:
    fig = plot_posterior_heatmap(beliefs, run_id="run4")
    _check(fig, tmp_path, "heatmap_all", index=1)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title(loc="left") for ax in panels] == ["alice", "bob"]
    assert "run4" in fig.get_suptitle()
    assert panels[-1].get_xlabel() == "turn"
    for ax in panels:
        assert ax.get_images()[0].get_array().shape == (3, 7)
        assert _integer_ticks(ax)
    assert len(fig.axes) == 3  # two panels and one shared colour bar


def test_posterior_heatmap_defaults_and_errors(beliefs: pd.DataFrame) -> None:
    fig = plot_posterior_heatmap(beliefs)
    assert "run0" in fig.get_suptitle()
    with pytest.raises(ValueError):
        plot_posterior_heatmap(beliefs, run_id="missing")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="agent="):
        plot_posterior_heatmap(beliefs, run_id="run0", ax=ax)
    assert plot_posterior_heatmap(beliefs, run_id="run0", agent="bob", ax=ax) is ax.figure


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


def _marker_path(marker: str) -> np.ndarray:
    style = MarkerStyle(marker)
    return style.get_path().transformed(style.get_transform()).vertices


def test_half_life_markers_match_the_legend(beliefs: pd.DataFrame) -> None:
    h = half_life(belief_metrics(beliefs))
    h["strip"] = h["run_id"].str[-1]  # six strips: more than the style cycle's first markers
    h.loc[h.index[::3], ["half_life", "censored"]] = [np.nan, True]
    ax = plot_half_life_distribution(h, group="strip").axes[0]
    legend = {
        handle.get_label(): handle
        for handle in ax.get_legend().legend_handles
        if handle.get_label() in ("halved", "censored (never halved)")
    }
    assert legend["halved"].get_marker() == HALVED_MARKER
    assert legend["censored (never halved)"].get_marker() == CENSORED_MARKER
    assert legend["censored (never halved)"].get_markerfacecolor() == "none"
    points = [c for c in ax.collections if c.get_gid() in ("halved", "censored")]
    assert {c.get_gid() for c in points} == {"halved", "censored"}
    for collection in points:
        marker = HALVED_MARKER if collection.get_gid() == "halved" else CENSORED_MARKER
        if len(collection.get_offsets()):
            np.testing.assert_allclose(collection.get_paths()[0].vertices, _marker_path(marker))
        filled = len(collection.get_facecolors()) > 0
        assert filled == (collection.get_gid() == "halved")


@pytest.fixture(scope="module")
def probes() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for run in range(5):
        beta = 1.0 if run < 3 else 0.1
        for agent in ("alice", "bob"):
            for turn in (0, 3, 6):
                p_yes = float(np.clip(0.5 + 0.05 * turn * (1 if agent == "alice" else -1), 0, 1))
                p_yes = float(np.clip(p_yes + rng.normal(0, 0.05), 0, 1))
                for option, p in (("yes", p_yes), ("no", 1 - p_yes)):
                    rows.append((f"run{run}", turn, agent, "help", option, p, "map", "sage", beta))
                for option, p in zip(("red", "green", "blue"), (0.5, 0.3, 0.2), strict=True):
                    rows.append((f"run{run}", turn, agent, "colour", option, p, "map", "x", beta))
            rows.append((f"run{run}", 6, agent, "scale", None, np.nan, "map", "x", beta))
    table = pd.DataFrame(
        rows,
        columns=[
            "run_id",
            "turn",
            "agent",
            "probe",
            "option",
            "probability",
            "persona_mode",
            "simulacrum",
            "belief.beta",
        ],
    )
    table["kind"] = np.where(table["probe"] == "scale", "numeric", "choice")
    return table


def test_probe_curves_figure(probes: pd.DataFrame, tmp_path: Path) -> None:
    curves = probe_curves(probes, by="belief.beta", n_boot=100)
    fig = plot_probe_curves(curves, probe="help", group="belief.beta")
    _check(fig, tmp_path, "probe")
    panels = fig.axes
    assert len(panels) == 2  # one option (of two) x two agents
    assert [ax.get_title() for ax in panels] == ["alice", "bob"]
    assert panels[0].get_ylabel() == 'P("yes")'
    assert all(ax.get_xlabel() == "turn" and _integer_ticks(ax) for ax in panels)
    assert "help" in fig.get_suptitle()
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        "belief.beta = 0.1 (n = 2)",
        "belief.beta = 1.0",
    ]
    title = legend.get_title().get_text()
    assert "95% bootstrap CI" in title and "n < 3 runs: no band" in title
    alice = panels[0]
    assert len(alice.collections) == 1  # a band for beta = 1.0 only
    line = alice.get_lines()[1]
    np.testing.assert_array_equal(line.get_xdata(), [0, 3, 6])


def test_probe_curves_figure_with_several_options_and_errors(probes: pd.DataFrame) -> None:
    curves = probe_curves(probes, n_boot=20)
    fig = plot_probe_curves(curves, probe="colour")
    assert len(fig.axes) == 3 * 2
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ['P("red")', 'P("green")', 'P("blue")']
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["all runs"]
    with pytest.raises(ValueError, match="several probes"):
        plot_probe_curves(curves)
    with pytest.raises(ValueError, match="no option"):
        plot_probe_curves(curves, probe="help", options=["maybe"])
    with pytest.raises(ValueError, match="scale"):
        plot_probe_curves(curves, probe="scale")  # not a choice probe: not in the curves


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
