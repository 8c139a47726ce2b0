"""Tests of the collapse metrics on hand-made belief tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulacra.analysis import (
    belief_metrics,
    bootstrap_ci,
    collapse_curves,
    half_life,
    summarize_half_life,
)
from simulacra.analysis.collapse import HALF_LIFE_COLUMNS, METRIC_COLUMNS


def beliefs_table(
    posteriors: list[list[float]],
    names: list[str] | None = None,
    run_id: str = "r0",
    agent: str = "alice",
    **extra: object,
) -> pd.DataFrame:
    """One agent's beliefs: ``posteriors[t][k]`` is the posterior at turn t."""
    names = names or [f"s{k}" for k in range(len(posteriors[0]))]
    rows = [
        {
            "run_id": run_id,
            "turn": t,
            "agent": agent,
            "simulacrum": name,
            "loglik": np.nan if t == 0 else -1.0,
            "posterior": p,
            **extra,
        }
        for t, post in enumerate(posteriors)
        for name, p in zip(names, post, strict=True)
    ]
    return pd.DataFrame(rows)


def _row(metrics: pd.DataFrame, turn: int, **keys: object) -> pd.Series:
    mask = metrics["turn"] == turn
    for k, v in keys.items():
        mask &= metrics[k] == v
    (idx,) = np.flatnonzero(mask)
    return metrics.iloc[idx]


# ------------------------------------------------------------------ belief_metrics


class TestBeliefMetrics:
    def test_uniform_and_one_hot(self) -> None:
        m = belief_metrics(beliefs_table([[0.25] * 4, [0.0, 1.0, 0.0, 0.0]]))
        assert list(m.columns) == ["run_id", "agent", "turn", *METRIC_COLUMNS]
        first, second = m.iloc[0], m.iloc[1]
        assert first["n_simulacra"] == 4
        assert first["entropy"] == pytest.approx(math.log(4))
        assert first["normalized_entropy"] == pytest.approx(1.0)
        assert first["effective_number"] == pytest.approx(4.0)
        assert first["kl_from_prior"] == 0.0
        assert math.isnan(first["info_gain"])
        assert first["map_simulacrum"] == "s0"  # tie: first in order
        assert first["map_mass"] == 0.25
        assert second["entropy"] == 0.0
        assert second["normalized_entropy"] == 0.0
        assert second["effective_number"] == 1.0
        assert second["map_simulacrum"] == "s1"
        assert second["map_mass"] == 1.0
        assert second["kl_from_prior"] == pytest.approx(math.log(4))
        assert math.isnan(second["assigned_mass"])

    def test_info_gain_on_a_known_step(self) -> None:
        m = belief_metrics(beliefs_table([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.9, 0.1]]))
        expected = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
        gains = m["info_gain"].to_numpy()
        assert math.isnan(gains[0])
        assert gains[1] == pytest.approx(0.0)
        assert gains[2] == pytest.approx(expected)
        assert gains[3] == pytest.approx(0.0)
        assert m["kl_from_prior"].iloc[3] == pytest.approx(expected)

    def test_info_gain_after_a_reversal(self) -> None:
        m = belief_metrics(beliefs_table([[0.5, 0.5], [0.8, 0.2], [0.2, 0.8]]))
        expected = 0.2 * math.log(0.2 / 0.8) + 0.8 * math.log(0.8 / 0.2)
        assert m["info_gain"].iloc[2] == pytest.approx(expected)
        assert m["kl_from_prior"].iloc[2] == pytest.approx(m["kl_from_prior"].iloc[1])

    def test_kl_from_prior_with_nonuniform_prior(self) -> None:
        m = belief_metrics(beliefs_table([[0.25, 0.75], [0.5, 0.5]]))
        expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
        assert m["kl_from_prior"].iloc[1] == pytest.approx(expected)

    def test_posterior_rounding_is_absorbed(self) -> None:
        m = belief_metrics(beliefs_table([[0.5000001, 0.5]]))
        assert m["normalized_entropy"].iloc[0] == pytest.approx(1.0)
        assert m["normalized_entropy"].iloc[0] <= 1.0

    def test_single_simulacrum(self) -> None:
        m = belief_metrics(beliefs_table([[1.0], [1.0]]))
        assert (m["normalized_entropy"] == 0.0).all()
        assert (m["effective_number"] == 1.0).all()

    def test_assigned_mass(self) -> None:
        b = pd.concat(
            [
                beliefs_table([[0.5, 0.5], [0.3, 0.7]], ["pirate", "sage"], agent="alice"),
                beliefs_table([[0.5, 0.5], [0.9, 0.1]], ["pirate", "sage"], agent="bob"),
            ],
            ignore_index=True,
        )
        agents = pd.DataFrame(
            {
                "run_id": ["r0", "r0"],
                "agent": ["alice", "bob"],
                "persona_mode": ["fixed", "sample"],
                "assigned": ["sage", None],
            }
        )
        m = belief_metrics(b, agents)
        assert {"persona_mode", "assigned"} <= set(m.columns)
        assert _row(m, 0, agent="alice")["assigned_mass"] == pytest.approx(0.5)
        assert _row(m, 1, agent="alice")["assigned_mass"] == pytest.approx(0.7)
        assert _row(m, 1, agent="alice")["persona_mode"] == "fixed"
        assert m.loc[m["agent"] == "bob", "assigned_mass"].isna().all()

    def test_grouping_columns_preserved(self) -> None:
        parts = [
            beliefs_table(
                [[0.5, 0.5], [p, 1 - p]],
                run_id=f"run{i}",
                **{"belief.beta": beta, "replicate": i % 2},
            )
            for i, (beta, p) in enumerate([(1.0, 0.9), (1.0, 0.8), (0.1, 0.6), (0.1, 0.55)])
        ]
        b = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=3)  # shuffled
        m = belief_metrics(b)
        assert list(m.columns[:4]) == ["run_id", "belief.beta", "replicate", "agent"]
        assert len(m) == 8
        row = _row(m, 1, run_id="run2")
        assert row["belief.beta"] == 0.1 and row["replicate"] == 0
        assert row["map_mass"] == pytest.approx(0.6)
        h = half_life(m)
        keys = ["run_id", "belief.beta", "replicate", "agent"]
        assert list(h.columns) == [*keys, *HALF_LIFE_COLUMNS]
        curves = collapse_curves(m, by=["belief.beta"], n_boot=200)
        assert set(curves["belief.beta"]) == {0.1, 1.0}
        assert (curves["n"] == 2).all()

    def test_missing_grid_value_kept(self) -> None:
        b = pd.concat(
            [
                beliefs_table([[0.5, 0.5]], run_id="a", tag=None),
                beliefs_table([[0.5, 0.5]], run_id="b", tag="x"),
            ],
            ignore_index=True,
        )
        m = belief_metrics(b)
        assert len(m) == 2 and m["tag"].isna().sum() == 1

    def test_inconsistent_grouping_column(self) -> None:
        b = beliefs_table([[0.5, 0.5], [0.6, 0.4]])
        b["noise"] = np.arange(len(b))
        with pytest.raises(ValueError, match="noise"):
            belief_metrics(b)

    def test_rejects_bad_tables(self) -> None:
        with pytest.raises(ValueError, match="posterior"):
            belief_metrics(beliefs_table([[0.5, 0.5]]).drop(columns="posterior"))
        with pytest.raises(ValueError):
            belief_metrics(beliefs_table([[0.5, np.nan]]))
        with pytest.raises(ValueError, match="more than once"):
            belief_metrics(beliefs_table([[0.5, 0.5]], names=["x", "x"]))

    def test_empty(self) -> None:
        m = belief_metrics(beliefs_table([[0.5, 0.5]]).iloc[:0])
        assert len(m) == 0 and "normalized_entropy" in m.columns


# ------------------------------------------------------------------ half_life


def _h_norm(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) / math.log(2)


class TestHalfLife:
    def test_known_half_life(self) -> None:
        # H/H0 for p = 0.8, 0.9, 0.95 is 0.72, 0.47, 0.29: halves at turn 2
        assert _h_norm(0.8) > 0.5 > _h_norm(0.9)
        m = belief_metrics(beliefs_table([[0.5, 0.5], [0.8, 0.2], [0.9, 0.1], [0.95, 0.05]]))
        h = half_life(m)
        assert len(h) == 1
        row = h.iloc[0]
        assert row["h0"] == pytest.approx(math.log(2))
        assert row["half_life"] == 2
        assert not row["censored"]
        assert row["last_turn"] == 3

    def test_censored(self) -> None:
        m = belief_metrics(beliefs_table([[0.5, 0.5], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2]]))
        row = half_life(m).iloc[0]
        assert math.isnan(row["half_life"])
        assert row["censored"]
        assert row["last_turn"] == 3

    def test_exactly_half_counts(self) -> None:
        # four-way uniform (H0 = log 4) to two-way uniform (log 2 = H0 / 2)
        m = belief_metrics(beliefs_table([[0.25] * 4, [0.25] * 4, [0.5, 0.5, 0.0, 0.0]]))
        assert half_life(m).iloc[0]["half_life"] == 2

    def test_zero_prior_entropy_is_not_censored(self) -> None:
        row = half_life(belief_metrics(beliefs_table([[1.0, 0.0], [1.0, 0.0]]))).iloc[0]
        assert math.isnan(row["half_life"]) and not row["censored"]

    def test_commitment_turn(self) -> None:
        post = [[0.5, 0.5], [0.7, 0.3], [0.4, 0.6], [0.8, 0.2], [0.9, 0.1], [0.95, 0.05]]
        row = half_life(belief_metrics(beliefs_table(post, ["x", "y"]))).iloc[0]
        # MAP: x (tie), x, y, x, x, x -> committed to x from turn 3
        assert row["commitment_turn"] == 3
        assert row["final_map"] == "x"

    def test_commitment_from_the_start(self) -> None:
        row = half_life(belief_metrics(beliefs_table([[0.6, 0.4], [0.9, 0.1]]))).iloc[0]
        assert row["commitment_turn"] == 0

    def test_commitment_at_the_last_turn(self) -> None:
        row = half_life(belief_metrics(beliefs_table([[0.6, 0.4], [0.9, 0.1], [0.1, 0.9]])))
        assert row.iloc[0]["commitment_turn"] == 2

    def test_per_agent_and_run(self) -> None:
        b = pd.concat(
            [
                beliefs_table([[0.5, 0.5], [0.95, 0.05]], run_id="r1", agent="a"),
                beliefs_table([[0.5, 0.5], [0.6, 0.4]], run_id="r1", agent="b"),
                beliefs_table([[0.5, 0.5], [0.6, 0.4], [0.99, 0.01]], run_id="r2", agent="a"),
            ],
            ignore_index=True,
        )
        h = half_life(belief_metrics(b)).set_index(["run_id", "agent"])
        assert h.loc[("r1", "a"), "half_life"] == 1
        assert h.loc[("r1", "b"), "censored"]
        assert h.loc[("r2", "a"), "half_life"] == 2
        assert h.loc[("r2", "a"), "last_turn"] == 2


# ------------------------------------------------------------------ bootstrap


class TestBootstrap:
    def test_coverage_on_normal_data(self) -> None:
        rng = np.random.default_rng(2024)
        hits = 0
        reps = 200
        for _ in range(reps):
            x = rng.normal(loc=3.0, scale=2.0, size=30)
            _, low, high = bootstrap_ci(x, n_boot=1000, rng=rng)
            hits += low <= 3.0 <= high
        assert 0.88 <= hits / reps <= 0.99

    def test_estimate_and_order(self) -> None:
        x = np.arange(10.0)
        est, low, high = bootstrap_ci(x, rng=0)
        assert est == 4.5
        assert low < est < high

    def test_reproducible_with_seed(self) -> None:
        x = np.random.default_rng(1).normal(size=20)
        assert bootstrap_ci(x, rng=7) == bootstrap_ci(x, rng=7)

    def test_one_value_and_nans(self) -> None:
        assert bootstrap_ci([2.0]) == (2.0, 2.0, 2.0)
        assert bootstrap_ci([np.nan, 2.0, np.nan]) == (2.0, 2.0, 2.0)
        assert all(math.isnan(v) for v in bootstrap_ci([np.nan, np.nan]))
        assert all(math.isnan(v) for v in bootstrap_ci([]))

    def test_custom_stat_without_axis(self) -> None:
        def spread(v: np.ndarray) -> float:
            return float(v.max() - v.min())

        est, low, high = bootstrap_ci(np.arange(5.0), stat=spread, n_boot=300, rng=0)
        assert est == 4.0 and 0.0 <= low <= high <= 4.0

    def test_median_with_infinities(self) -> None:
        est, low, high = bootstrap_ci([1.0, np.inf, np.inf, np.inf], np.median, rng=0)
        assert est == math.inf and high == math.inf and not math.isnan(low)

    def test_rejects_bad_arguments(self) -> None:
        with pytest.raises(ValueError):
            bootstrap_ci([1.0, 2.0], n_boot=0)
        with pytest.raises(ValueError):
            bootstrap_ci([1.0, 2.0], ci=1.0)


# ------------------------------------------------------------------ summaries


def _sweep_metrics() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    parts = []
    for beta in (1.0, 0.1):
        for rep in range(6):
            p = 0.5
            post = [[p, 1 - p]]
            for _ in range(5):
                p = min(0.999, p + beta * rng.uniform(0.05, 0.3))
                post.append([p, 1 - p])
            parts.append(
                beliefs_table(post, run_id=f"b{beta}-{rep}", replicate=rep, **{"belief.beta": beta})
            )
    return belief_metrics(pd.concat(parts, ignore_index=True))


class TestCurvesAndSummaries:
    def test_collapse_curves(self) -> None:
        m = _sweep_metrics()
        curves = collapse_curves(m, by=("belief.beta",), n_boot=500)
        assert list(curves.columns) == ["belief.beta", "turn", "mean", "low", "high", "n"]
        assert len(curves) == 2 * 6
        assert (curves["n"] == 6).all()
        assert (curves["low"] <= curves["mean"] + 1e-12).all()
        assert (curves["mean"] <= curves["high"] + 1e-12).all()
        t0 = curves[curves["turn"] == 0]
        np.testing.assert_allclose(t0["mean"], 1.0)
        expected = m[(m["turn"] == 3) & (m["belief.beta"] == 1.0)]["normalized_entropy"].mean()
        got = curves[(curves["turn"] == 3) & (curves["belief.beta"] == 1.0)]["mean"].item()
        assert got == pytest.approx(expected)
        fast = curves[curves["belief.beta"] == 1.0]["mean"].iloc[-1]
        slow = curves[curves["belief.beta"] == 0.1]["mean"].iloc[-1]
        assert fast < slow

    def test_collapse_curves_without_groups_and_other_metric(self) -> None:
        m = _sweep_metrics()
        curves = collapse_curves(m, metric="effective_number", n_boot=100, seed=1)
        assert list(curves.columns) == ["turn", "mean", "low", "high", "n"]
        assert (curves["n"] == 12).all()
        assert curves["mean"].iloc[0] == pytest.approx(2.0)
        assert curves.equals(collapse_curves(m, metric="effective_number", n_boot=100, seed=1))

    def test_collapse_curves_by_run(self) -> None:
        b = pd.concat(
            [
                beliefs_table([[0.5, 0.5], [0.9, 0.1]], run_id="r1", agent="a"),
                beliefs_table([[0.5, 0.5], [0.5, 0.5]], run_id="r1", agent="b"),
                beliefs_table([[0.5, 0.5], [0.9, 0.1]], run_id="r2", agent="a"),
            ],
            ignore_index=True,
        )
        m = belief_metrics(b)
        per_agent = collapse_curves(m, n_boot=50)
        per_run = collapse_curves(m, n_boot=50, unit="run")
        assert per_agent["n"].tolist() == [3, 3]
        assert per_run["n"].tolist() == [2, 2]
        h9 = _h_norm(0.9)
        assert per_agent["mean"].iloc[1] == pytest.approx((2 * h9 + 1) / 3)
        assert per_run["mean"].iloc[1] == pytest.approx(((h9 + 1) / 2 + h9) / 2)

    def test_collapse_curves_unknown_column(self) -> None:
        with pytest.raises(ValueError, match="nope"):
            collapse_curves(_sweep_metrics(), by=("nope",))

    def test_summarize_half_life(self) -> None:
        h = pd.DataFrame(
            {
                "run_id": [f"r{i}" for i in range(8)],
                "agent": "a",
                "group": ["g1"] * 5 + ["g2"] * 3,
                "half_life": [1.0, 2.0, 2.0, 3.0, np.nan, np.nan, np.nan, 4.0],
                "censored": [False, False, False, False, True, True, True, False],
            }
        )
        s = summarize_half_life(h, by="group", n_boot=500).set_index("group")
        assert list(s.columns) == ["median", "low", "high", "share_censored", "n"]
        # g1: 1, 2, 2, 3, inf -> median 2; g2: inf, inf, 4 -> median inf
        assert s.loc["g1", "median"] == 2.0
        assert s.loc["g1", "share_censored"] == pytest.approx(0.2)
        assert s.loc["g1", "n"] == 5
        assert s.loc["g1", "low"] <= 2.0 <= s.loc["g1", "high"]
        assert s.loc["g2", "median"] == math.inf
        assert s.loc["g2", "share_censored"] == pytest.approx(2 / 3)

    def test_summarize_half_life_drops_zero_entropy_priors(self) -> None:
        h = pd.DataFrame({"half_life": [1.0, np.nan, 3.0], "censored": [False, False, False]})
        s = summarize_half_life(h, n_boot=100)
        assert len(s) == 1
        assert s["n"].item() == 2 and s["median"].item() == 2.0
