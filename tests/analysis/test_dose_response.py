"""Spearman's rho and its replicate bootstrap, on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simulacra.analysis.dose_response import average_ranks, dose_response, spearman_rho


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(average_ranks([3, 1, 3, 2]), [3.5, 1, 3.5, 2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rho_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=30)
    y = x + rng.integers(0, 3, size=30)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_rho_is_nan_for_a_constant_and_refuses_bad_input():
    assert np.isnan(spearman_rho([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="differ in length"):
        spearman_rho([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        spearman_rho([1, 2], [1, np.nan])


def _design(slope, noise, replicates=6, seed=0):
    rng = np.random.default_rng(seed)
    doses = np.array([0, 1, 2, 4, 8], dtype=float)
    x = np.tile(doses, replicates)
    rep = np.repeat(np.arange(replicates), doses.size)
    y = slope * x + noise * rng.normal(size=x.size)
    return x, y, rep


def test_a_rising_response_has_a_ci_above_zero_and_noise_does_not():
    rising = dose_response(*_design(0.1, 0.1), n_boot=500)
    assert rising.rho > 0.7 and rising.low > 0 and rising.low <= rising.rho <= rising.high
    assert (rising.n_points, rising.n_replicates, rising.n_valid) == (30, 6, 500)
    flat = dose_response(*_design(0.0, 1.0), n_boot=500)
    assert flat.low < 0 < flat.high


def test_the_bootstrap_is_reproducible_and_resamples_whole_replicates():
    x, y, rep = _design(0.1, 0.5)
    assert dose_response(x, y, rep, seed=3) == dose_response(x, y, rep, seed=3)
    # One replicate carries the trend, the others none: resampling replicates shows it.
    y2 = np.where(rep == 0, x, 0.0) + 1e-3 * np.arange(x.size) % 7
    wide = dose_response(x, y2, rep, n_boot=400)
    assert wide.high - wide.low > 0.3


def test_dose_response_refuses_one_replicate_and_bad_levels():
    with pytest.raises(ValueError, match="at least 2"):
        dose_response([0, 1], [0, 1], [0, 0])
    with pytest.raises(ValueError, match="level"):
        dose_response([0, 1], [0, 1], [0, 1], level=1.5)
