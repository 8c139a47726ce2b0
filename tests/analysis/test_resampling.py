"""The stratified cluster bootstrap of cell moments, against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulacra.analysis.replication import standardized_mean_difference
from simulacra.analysis.resampling import (
    MIN_DEFINED_SHARE,
    bootstrap_moments,
    cell_moments,
    d_from_moments,
    moment_summary,
    percentile_interval,
    stratified_weights,
)


def test_cell_moments_by_hand_skipping_missing_scores():
    moments = cell_moments([1.0, 2.0, np.nan, 4.0, 0.5], [0, 0, 0, 2, 2], 3)
    np.testing.assert_allclose(moments, [[2, 3, 5], [0, 0, 0], [2, 4.5, 16.25]])


def test_moment_summary_gives_n_minus_1_variances_and_exact_zero_spread():
    x = np.array([0.1, 0.1, 0.1, 0.1])  # rounding makes q - s^2/n a hair off zero
    n, mean, var = moment_summary(cell_moments(x, np.zeros(4, int), 1))
    assert (n[0], var[0]) == (4, 0.0)
    assert mean[0] == pytest.approx(0.1)
    y = np.array([1.0, 4.0, 6.0])
    _, mean, var = moment_summary(cell_moments(y, np.zeros(3, int), 1))
    assert mean[0] == pytest.approx(y.mean())
    assert var[0] == pytest.approx(y.var(ddof=1))
    _, _, var = moment_summary(cell_moments([3.0], [0], 1))
    assert math.isnan(var[0])


@pytest.mark.parametrize("seed", range(5))
def test_d_from_moments_is_the_replication_d(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.4, 1.3, 17), rng.integers(0, 2, 11).astype(float)
    d = d_from_moments(cell_moments(a, np.zeros(17, int), 1)[0], cell_moments(b, [0] * 11, 1)[0])
    assert float(d) == pytest.approx(standardized_mean_difference(a, b), rel=1e-12)


def test_d_from_moments_is_nan_without_spread_or_scores():
    ones = cell_moments(np.ones(5), np.zeros(5, int), 1)[0]
    single = cell_moments([0.0], [0], 1)[0]
    assert math.isnan(float(d_from_moments(ones, ones)))
    assert math.isnan(float(d_from_moments(ones, single)))


def test_stratified_weights_keep_every_stratum_at_its_size():
    strata = np.array(["a", "a", "b", "b", "b", "c"])
    weights = stratified_weights(strata, 200, np.random.default_rng(0))
    assert weights.shape == (200, 6)
    np.testing.assert_array_equal(weights[:, :2].sum(axis=1), 2)
    np.testing.assert_array_equal(weights[:, 2:5].sum(axis=1), 3)
    np.testing.assert_array_equal(weights[:, 5], 1)
    assert weights[:, 2:5].std() > 0  # resampled, not copied


def test_bootstrap_moments_resample_a_unit_with_all_its_rows():
    # three participants, each with one answer in cell 0 and one in cell 1
    values = np.array([1.0, 0.0, 2.0, 1.0, 3.0, 0.0])
    cells = np.array([0, 1, 0, 1, 0, 1])
    units = np.array([0, 0, 1, 1, 2, 2])
    boot = bootstrap_moments(values, cells, 2, units, ["s"] * 3, 300, np.random.default_rng(1))
    np.testing.assert_array_equal(boot[:, 0, 0], 3)
    np.testing.assert_array_equal(boot[:, 1, 0], 3)
    # whole units: cell 1's sum is the count j of unit 1, and cell 0's sum is then
    # i + 2 j + 3 k with i + j + k = 3; rows drawn apart would break the link
    for s0, s1 in boot[:, :, 1]:
        j = int(s1)
        assert any(i + 2 * j + 3 * (3 - i - j) == s0 for i in range(4 - j)), (s0, s1)
    assert len({tuple(row) for row in boot[:, :, 1]}) > 3


def test_bootstrap_moments_mean_is_the_observed_moments():
    rng = np.random.default_rng(2)
    values = rng.normal(size=40)
    cells = rng.integers(0, 3, 40)
    boot = bootstrap_moments(values, cells, 3, np.arange(40), cells, 4000, rng)
    np.testing.assert_allclose(boot.mean(axis=0), cell_moments(values, cells, 3), rtol=0.05)


def test_percentile_interval_needs_enough_defined_replicates():
    good = np.r_[np.linspace(0, 1, 99), np.nan]
    low, high, share = percentile_interval(good, 0.9)
    assert share == pytest.approx(0.99)
    assert (low, high) == pytest.approx(tuple(np.quantile(np.linspace(0, 1, 99), [0.05, 0.95])))
    bad = np.r_[np.zeros(90), np.full(10, np.inf)]
    low, high, share = percentile_interval(bad)
    assert share == pytest.approx(0.9) and share < MIN_DEFINED_SHARE
    assert math.isnan(low) and math.isnan(high)
