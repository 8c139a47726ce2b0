"""Resampling: the stratified cluster bootstrap of cell moments.

The statistics of a between-subjects design (cell means, SDs, ML1's d, log odds)
depend on the scores of each cell only through three moments: the count ``n``,
the sum ``s`` and the sum of squares ``q``. A bootstrap replicate draws the
resampling units (participants) with replacement *within their stratum*, each
stratum keeping its size, so a replicate is a vector of multinomial counts
``w_u``, and its cell moments are the weighted sums of the units' own moments:
``n_c* = sum_u w_u n_uc`` (and alike for ``s`` and ``q``). Every replicate is then
one matrix product, however many statistics are computed from it.

A unit carries all of its rows, so a participant who answered several cells (two
tasks, say) is resampled as a whole and the dependence between their answers is
kept. With one row per unit and the strata the cells themselves, this is the plain
bootstrap of each cell.

- :func:`cell_moments`, :func:`bootstrap_moments`: the moments, observed and resampled;
- :func:`moment_summary`: counts, means and ``n - 1`` variances from moments;
- :func:`d_from_moments`: ML1's d, vectorised over replicates (the same formula as
  :func:`simulacra.analysis.replication.standardized_mean_difference`);
- :func:`percentile_interval`: the percentile interval over the defined replicates.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "MIN_DEFINED_SHARE",
    "bootstrap_moments",
    "cell_moments",
    "d_from_moments",
    "moment_summary",
    "percentile_interval",
    "stratified_weights",
]

MIN_DEFINED_SHARE = 0.95
"""A percentile interval needs the statistic defined in this share of the replicates."""

_BLOCK_CELLS = 4_000_000
"""Replicates are drawn in blocks of about this many weights (memory bound)."""
_ZERO_SPREAD = 1e-12
"""A variance below this times (1 + mean^2) is rounding error: no spread."""


def cell_moments(values: ArrayLike, cells: ArrayLike, n_cells: int) -> np.ndarray:
    """Count, sum and sum of squares of the values in each cell.

    Args:
        values: one score per row (rows with NaN are skipped).
        cells: per row, its cell's code in ``0 .. n_cells - 1``.
        n_cells: the number of cells.

    Returns:
        An array of shape ``(n_cells, 3)``: ``n``, ``s``, ``q`` per cell.
    """
    x = np.asarray(values, dtype=float)
    c = np.asarray(cells, dtype=int)
    keep = ~np.isnan(x)
    out = np.zeros((n_cells, 3))
    np.add.at(out[:, 0], c[keep], 1.0)
    np.add.at(out[:, 1], c[keep], x[keep])
    np.add.at(out[:, 2], c[keep], x[keep] ** 2)
    return out


def stratified_weights(strata: ArrayLike, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial resampling counts of units, drawn within each stratum.

    Args:
        strata: per unit, its stratum (any hashable codes).
        n_boot: replicates.
        rng: the generator.

    Returns:
        Integer counts of shape ``(n_boot, n_units)``; each replicate's counts sum,
        within every stratum, to the stratum's size.
    """
    codes = np.asarray(strata)
    out = np.zeros((n_boot, len(codes)), dtype=np.int64)
    offsets = np.arange(n_boot)[:, None]
    for stratum in dict.fromkeys(codes.tolist()):
        members = np.flatnonzero(codes == stratum)
        size = len(members)
        # size uniform draws with replacement, counted: a multinomial(size, 1/size) row
        draws = rng.integers(size, size=(n_boot, size)) + offsets * size
        counts = np.bincount(draws.ravel(), minlength=n_boot * size)
        out[:, members] = counts.reshape(n_boot, size)
    return out


def bootstrap_moments(
    values: ArrayLike,
    cells: ArrayLike,
    n_cells: int,
    units: ArrayLike,
    strata: ArrayLike,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Cell moments of ``n_boot`` stratified cluster-bootstrap replicates.

    Args:
        values: one score per row (NaN rows count nowhere).
        cells: per row, its cell code.
        n_cells: the number of cells.
        units: per row, its resampling unit's code in ``0 .. n_units - 1``.
        strata: per unit (indexed by unit code), its stratum.
        n_boot: replicates (at least 1).
        rng: the generator.

    Returns:
        An array of shape ``(n_boot, n_cells, 3)``: ``n``, ``s``, ``q`` per replicate
        and cell.

    Raises:
        ValueError: ``n_boot`` below 1.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    x = np.asarray(values, dtype=float)
    c = np.asarray(cells, dtype=int)
    u = np.asarray(units, dtype=int)
    strata = np.asarray(strata)
    keep = ~np.isnan(x)
    slots = (u[keep] * n_cells + c[keep]) * 3
    size = len(strata) * n_cells * 3
    flat = (
        np.bincount(slots, minlength=size)
        + np.bincount(slots + 1, weights=x[keep], minlength=size)
        + np.bincount(slots + 2, weights=x[keep] ** 2, minlength=size)
    ).reshape(len(strata), n_cells * 3)
    block = max(1, _BLOCK_CELLS // max(1, len(strata)))
    out = np.empty((n_boot, n_cells * 3))
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        out[start : start + size] = stratified_weights(strata, size, rng).astype(float) @ flat
    return out.reshape(n_boot, n_cells, 3)


def moment_summary(moments: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts, means and variances (``n - 1``) from moments ``(..., 3)``.

    Returns:
        ``(n, mean, var)``: the mean is NaN for an empty cell, the variance NaN under
        two scores and exactly 0 where what is left is rounding error.
    """
    n, s, q = moments[..., 0], moments[..., 1], moments[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / n, np.nan)
        var = np.where(n > 1, (q - s * mean) / (n - 1), np.nan)
    var = np.where(var < _ZERO_SPREAD * (1.0 + mean**2), 0.0, var)
    return n, mean, var


def d_from_moments(treatment: np.ndarray, control: np.ndarray) -> np.ndarray:
    """ML1's d from the moments of the two groups, over any leading axes.

    ``d = (M_t - M_c) / sqrt((SD_t^2 + SD_c^2) / 2)`` with ``n - 1`` SDs; NaN where a
    group has fewer than two scores or neither group has any spread.

    Args:
        treatment: moments ``(..., 3)`` of the treatment group.
        control: moments ``(..., 3)`` of the control group.

    Returns:
        d, of the leading shape.
    """
    _, mean_t, var_t = moment_summary(treatment)
    _, mean_c, var_c = moment_summary(control)
    spread = np.sqrt((var_t + var_c) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, (mean_t - mean_c) / spread, np.nan)


def percentile_interval(replicates: ArrayLike, level: float = 0.95) -> tuple[float, float, float]:
    """Percentile interval of bootstrap replicates, over those that are defined.

    Args:
        replicates: the statistic in each replicate (NaN where undefined; infinite
            values count as undefined).
        level: the coverage.

    Returns:
        ``(low, high, share)`` with ``share`` the defined replicates' share; the
        bounds are NaN when that share is below :data:`MIN_DEFINED_SHARE`.
    """
    values = np.asarray(replicates, dtype=float)
    finite = values[np.isfinite(values)]
    share = len(finite) / len(values) if len(values) else 0.0
    if share < MIN_DEFINED_SHARE or not len(finite):
        return (math.nan, math.nan, share)
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return (float(low), float(high), share)
