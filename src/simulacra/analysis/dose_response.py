"""Dose-response: does a measure rise with a dose? Spearman's rho and a bootstrap CI.

The planted-persona test steers an agent with a coefficient (the dose) and
measures, per replicate and coefficient, how much posterior mass the observers
put on the planted simulacrum (the response). :func:`spearman_rho` is the rank
correlation over every (dose, response) point, average ranks for ties.
:func:`dose_response` adds a percentile bootstrap over *replicates*: a resample
draws replicates with replacement and keeps each drawn replicate's points at
every dose, so the interval reflects the variation between replicates (the
unit that is independent), not between points of one replicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DoseResponse", "average_ranks", "dose_response", "spearman_rho"]


def average_ranks(values: ArrayLike) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their average rank."""
    arr = np.asarray(values, dtype=np.float64)
    order = np.argsort(arr, kind="stable")
    ranks = np.empty(arr.size)
    sorted_values = arr[order]
    start = 0
    while start < arr.size:
        end = start + 1
        while end < arr.size and sorted_values[end] == sorted_values[start]:
            end += 1
        ranks[order[start:end]] = (start + end + 1) / 2.0
        start = end
    return ranks


def spearman_rho(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks.

    Returns:
        rho in [-1, 1]; NaN when either variable is constant.

    Raises:
        ValueError: if the inputs differ in length, have fewer than 2 points or hold NaN.

    """
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"x and y differ in length: {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"a rank correlation needs at least 2 points, got {a.size}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("x and y must not hold NaN")
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = float(np.sqrt((ra @ ra) * (rb @ rb)))
    return float(ra @ rb / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class DoseResponse:
    """Spearman's rho of response on dose, with a bootstrap CI over replicates.

    Attributes:
        rho: the rank correlation over every point.
        low: the lower bound of the percentile interval.
        high: the upper bound.
        level: the interval's coverage (0.95).
        n_points: points used.
        n_replicates: distinct replicates.
        n_boot: bootstrap resamples drawn (those with a constant variable are
            skipped; ``n_valid`` were used).
        n_valid: resamples with a defined rho.

    """

    rho: float
    low: float
    high: float
    level: float
    n_points: int
    n_replicates: int
    n_boot: int
    n_valid: int


def dose_response(
    dose: ArrayLike,
    response: ArrayLike,
    replicate: ArrayLike,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> DoseResponse:
    """Spearman's rho of ``response`` on ``dose``, with a replicate-cluster bootstrap CI.

    Args:
        dose: the dose of each point (a steering coefficient).
        response: the measure at each point.
        replicate: the replicate each point belongs to (any hashable labels).
        n_boot: bootstrap resamples.
        level: the interval's coverage, in (0, 1).
        seed: the resampling seed (same inputs and seed, same interval).

    Returns:
        The estimate and the percentile interval.

    Raises:
        ValueError: for inputs of different lengths, fewer than 2 replicates, NaN,
            or a level outside (0, 1).

    """
    x = np.asarray(dose, dtype=np.float64).ravel()
    y = np.asarray(response, dtype=np.float64).ravel()
    labels = np.asarray(replicate).ravel()
    if not (x.size == y.size == labels.size):
        raise ValueError(
            f"dose, response and replicate differ in length: {x.size}, {y.size}, {labels.size}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rho = spearman_rho(x, y)
    groups = [np.flatnonzero(labels == label) for label in dict.fromkeys(labels.tolist())]
    if len(groups) < 2:
        raise ValueError(f"the bootstrap over replicates needs at least 2, got {len(groups)}")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        picked = rng.integers(len(groups), size=len(groups))
        index = np.concatenate([groups[g] for g in picked])
        value = spearman_rho(x[index], y[index])
        if not np.isnan(value):
            draws.append(value)
    tail = (1 - level) / 2
    low, high = (
        (float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail)))
        if draws
        else (float("nan"), float("nan"))
    )
    return DoseResponse(rho, low, high, level, x.size, len(groups), n_boot, len(draws))
