"""Extraction: persona directions from contrasting activations, as pure array maths.

Activations come in as arrays shaped ``(n_samples, n_layers, n_embd)``: one row per
sample (a response's mean residual over its tokens, say), one slice per layer.
Two estimators are offered:

- :func:`mean_difference`: ``mean(positive) - mean(negative)`` per layer, left
  unnormalised, the persona vector of Chen et al. (2025), whose steering
  coefficients multiply the raw difference;
- :func:`pca_of_differences`: the first principal component of the per-pair
  differences ``positive[i] - negative[i]``, unit norm, signed so that positives
  project higher than negatives: repeng's ``pca_diff`` (centred, the default)
  or llama.cpp's ``cvector-generator`` (uncentred, ``center=False``).

:func:`prompts_hash` fingerprints the prompts and questions an extraction used.
Nothing here runs a model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["PrincipalDirections", "mean_difference", "pca_of_differences", "prompts_hash"]


def _activations(values: ArrayLike, what: str) -> np.ndarray:
    """``values`` as a finite float64 array ``(n_samples, n_layers, n_embd)``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(
            f"{what} activations must be shaped (n_samples, n_layers, n_embd), got {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{what} activations hold no samples")
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"{what} activations have an empty layer or embedding axis: {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} activations contain NaN or infinite values")
    return arr


def _same_layout(positive: np.ndarray, negative: np.ndarray) -> None:
    if positive.shape[1:] != negative.shape[1:]:
        raise ValueError(
            "positive and negative activations must share (n_layers, n_embd): "
            f"got {positive.shape[1:]} and {negative.shape[1:]}"
        )


def mean_difference(positive: ArrayLike, negative: ArrayLike) -> np.ndarray:
    """The difference of means per layer (Chen et al. 2025), unnormalised.

    Args:
        positive: activations ``(n_pos, n_layers, n_embd)`` of samples showing the trait.
        negative: activations ``(n_neg, n_layers, n_embd)`` of samples without it;
            ``n_neg`` may differ from ``n_pos``.

    Returns:
        float32 array ``(n_layers, n_embd)``: ``mean(positive) - mean(negative)``.

    Raises:
        ValueError: if an array is not 3-D, is empty, holds NaN or infinities, or the
            two disagree on ``(n_layers, n_embd)``.

    """
    pos = _activations(positive, "positive")
    neg = _activations(negative, "negative")
    _same_layout(pos, neg)
    return (pos.mean(axis=0) - neg.mean(axis=0)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class PrincipalDirections:
    """The first principal component of paired differences, per layer.

    Attributes:
        directions: float32 ``(n_layers, n_embd)``, every row of norm 1 and signed
            so that positives project above their paired negatives.
        explained_variance_ratio: float64 ``(n_layers,)``: the share of the
            differences' variance (their second moment when uncentred) that the
            component explains at each layer, in ``[0, 1]``.
        agreement: float64 ``(n_layers,)``: the fraction of pairs whose positive
            projects strictly above its negative on the returned direction.

    """

    directions: np.ndarray
    explained_variance_ratio: np.ndarray
    agreement: np.ndarray


def _first_component(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """The top right-singular vector of ``rows`` and its share of the squared norm."""
    _, singular, vt = np.linalg.svd(rows, full_matrices=False)
    energy = float(np.sum(singular**2))
    share = float(singular[0] ** 2 / energy) if energy > 0 else 0.0
    return vt[0], share


def pca_of_differences(
    positive: ArrayLike, negative: ArrayLike, *, center: bool = True
) -> PrincipalDirections:
    """The first principal component of the per-pair differences, per layer.

    Row ``i`` of ``positive`` is paired with row ``i`` of ``negative`` (the same
    question under the two personas, say). For each layer the differences
    ``d_i = positive[i] - negative[i]`` are decomposed by SVD:

    - ``center=True`` (repeng's ``pca_diff``): the differences are mean-centred
      first, so the component is the axis along which the pairs' contrast varies
      most. When every pair differs by nearly the same vector the centred data are
      mostly noise: use :func:`mean_difference` or ``center=False`` then.
    - ``center=False`` (llama.cpp's ``cvector-generator``): the uncentred second
      moment, dominated by the mean difference when it is large.

    The sign is chosen so that most pairs' positive projects above its negative
    (ties broken by the mean difference), as repeng does.

    Args:
        positive: activations ``(n_pairs, n_layers, n_embd)``.
        negative: activations ``(n_pairs, n_layers, n_embd)``, paired row by row.
        center: subtract the mean difference before the decomposition.

    Returns:
        The unit directions, explained-variance ratios and pair agreement per layer.

    Raises:
        ValueError: on malformed arrays, unequal pair counts, fewer than 2 pairs, or
            a layer where every difference is zero (no direction to find).

    """
    pos = _activations(positive, "positive")
    neg = _activations(negative, "negative")
    _same_layout(pos, neg)
    if pos.shape[0] != neg.shape[0]:
        raise ValueError(
            f"pca_of_differences pairs rows: got {pos.shape[0]} positive and "
            f"{neg.shape[0]} negative samples"
        )
    if pos.shape[0] < 2:
        raise ValueError(f"pca_of_differences needs at least 2 pairs, got {pos.shape[0]}")
    differences = pos - neg
    n_layers, n_embd = pos.shape[1], pos.shape[2]
    directions = np.empty((n_layers, n_embd), dtype=np.float64)
    ratios = np.empty(n_layers)
    agreement = np.empty(n_layers)
    for layer in range(n_layers):
        rows = differences[:, layer, :]
        data = rows - rows.mean(axis=0) if center else rows
        if not np.any(data):
            raise ValueError(
                f"layer index {layer}: the paired differences have no variance to decompose"
                + (" after centring (try center=False or mean_difference)" if center else "")
            )
        component, ratios[layer] = _first_component(data)
        margins = rows @ component
        votes = int(np.sign(margins).sum())
        if votes < 0 or (votes == 0 and margins.mean() < 0):
            component = -component
            margins = -margins
        directions[layer] = component / np.linalg.norm(component)
        agreement[layer] = float(np.mean(margins > 0))
    return PrincipalDirections(directions.astype(np.float32), ratios, agreement)


def prompts_hash(prompts: object) -> str:
    """The sha256 of the canonical JSON of every prompt and question an extraction used.

    Canonical JSON sorts mapping keys, uses no insignificant whitespace and keeps
    non-ASCII text as is, so the same content always gives the same hash whatever
    the order of the keys of a mapping (the order of list items does count).

    Args:
        prompts: JSON-serialisable data: strings, numbers, lists, tuples and
            mappings with string keys (e.g. ``{"pairs": [...], "questions": [...]}``).

    Returns:
        The hex digest.

    Raises:
        ValueError: if ``prompts`` is not JSON-serialisable.

    """
    try:
        text = json.dumps(
            prompts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"prompts must be JSON-serialisable data: {exc}") from exc
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
