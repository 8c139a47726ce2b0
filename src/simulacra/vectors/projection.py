"""Projections on a direction, and activation capping, as pure array maths.

:func:`project` is the monitoring measure of both papers: the scalar projection
``<h, v/|v|>`` of activations on a direction. :func:`cap_projection` is Lu et
al.'s activation capping: the component of ``h`` along the unit axis ``v`` is
clamped into ``[low, high]`` by moving ``h`` along ``v`` only (the paper's floor
``h <- h - v * min(<h, v> - tau, 0)`` is ``low = tau``; the repository's ceiling
is ``high = tau``); everything orthogonal to ``v`` is untouched.

Capping on an add-only backend
------------------------------
llama.cpp can only *add* a fixed vector per layer (``llama_set_adapter_cvec``),
the same for every token of a batch; it cannot read ``h`` and clamp it inside the
forward pass. Capping there is therefore an additive correction computed from a
measurement: :func:`capping_correction` turns a measured projection ``p`` into
``(clip(p, low, high) - p) * v_hat``, the vector that, added at that layer,
moves ``h`` exactly onto the band. Two ways to use it:

- exact, one layer: decode the token, read ``l_out-b`` with an activation
  recorder, remove the token from the KV cache, set the correction at block
  ``b`` and decode the token again (twice the cost of a step; capping several
  layers exactly needs one pass per layer, since a correction at a lower block
  moves the projections above it);
- lagged: apply the correction measured at step ``t`` while decoding step
  ``t + 1`` (one pass; exact only while the projection changes slowly).

Either way the correction is shared by every row of the batch, so sequences
with different corrections must be decoded in separate batches.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["cap_projection", "capping_correction", "project", "unit_vector"]


def unit_vector(direction: ArrayLike) -> np.ndarray:
    """``direction / |direction|`` as float64.

    Raises:
        ValueError: if ``direction`` is not a non-empty finite 1-D vector, or is zero.

    """
    vec = np.asarray(direction, dtype=np.float64)
    if vec.ndim != 1 or vec.size == 0:
        raise ValueError(f"a direction must be a non-empty 1-D vector, got shape {vec.shape}")
    if not np.isfinite(vec).all():
        raise ValueError("the direction contains NaN or infinite values")
    norm = float(np.linalg.norm(vec))
    if norm == 0:
        raise ValueError("the direction is zero: there is nothing to project on")
    return vec / norm


def _rows(activations: ArrayLike, width: int) -> np.ndarray:
    arr = np.asarray(activations, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != width:
        raise ValueError(
            f"activations must end in an axis of length {width} (n_embd), got shape {arr.shape}"
        )
    return arr


def project(activations: ArrayLike, direction: ArrayLike) -> np.ndarray:
    """The scalar projection of activations on the unit direction.

    Args:
        activations: ``(..., n_embd)``: one vector, or a batch of them.
        direction: ``(n_embd,)``, any non-zero norm (it is normalised here).

    Returns:
        float64 array of shape ``activations.shape[:-1]`` (a 0-d array for one vector).

    Raises:
        ValueError: if the direction is zero or the widths differ.

    """
    axis = unit_vector(direction)
    return _rows(activations, axis.size) @ axis


def _bounds(low: float | None, high: float | None) -> tuple[float, float]:
    if low is None and high is None:
        raise ValueError("capping needs a lower bound, an upper bound or both")
    lo = -np.inf if low is None else float(low)
    hi = np.inf if high is None else float(high)
    if np.isnan(lo) or np.isnan(hi):
        raise ValueError("capping bounds must not be NaN")
    if lo > hi:
        raise ValueError(f"capping band is empty: low {lo} > high {hi}")
    return lo, hi


def capping_correction(
    projection: ArrayLike,
    axis: ArrayLike,
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """The additive vector that moves a measured projection into ``[low, high]``.

    Args:
        projection: measured ``<h, v_hat>``: a scalar or an array of them.
        axis: ``(n_embd,)``, any non-zero norm.
        low: the floor (None: no floor).
        high: the ceiling (None: no ceiling).

    Returns:
        float64 ``projection.shape + (n_embd,)``: ``(clip(p) - p) * v_hat``, zero
        where the projection is already inside the band.

    Raises:
        ValueError: without any bound, with ``low > high``, or a zero axis.

    """
    lo, hi = _bounds(low, high)
    unit = unit_vector(axis)
    measured = np.asarray(projection, dtype=np.float64)
    shift = np.clip(measured, lo, hi) - measured
    return shift[..., None] * unit


def cap_projection(
    h: ArrayLike,
    axis: ArrayLike,
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """Clamp the projection of ``h`` on the unit axis into ``[low, high]``.

    Only the component along ``axis`` changes:
    ``h + (clip(<h, v_hat>, low, high) - <h, v_hat>) * v_hat``.

    Args:
        h: ``(..., n_embd)`` activations.
        axis: ``(n_embd,)``, any non-zero norm.
        low: the floor (Lu et al.'s tau; None: no floor).
        high: the ceiling (None: no ceiling).

    Returns:
        float64 array shaped like ``h``.

    Raises:
        ValueError: without any bound, with ``low > high``, a zero axis or a width
            mismatch.

    """
    unit = unit_vector(axis)
    rows = _rows(h, unit.size)
    return rows + capping_correction(rows @ unit, unit, low, high)
