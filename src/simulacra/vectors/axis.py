"""Persona space and the Assistant axis (Lu et al. 2026), as pure array maths.

Each role (bard, evaluator, ghost...) is summarised by a *role vector*: its mean
residual-stream activation over response tokens at one layer. Persona space is
the principal-component analysis of the mean-centred role vectors; Lu et al.
found its first component running from theatrical, fantastical roles to
assistant-like ones, with the default assistant at the assistant-like end.

The *Assistant axis* itself is defined, as the authors recommend for new models,
by contrast: ``mean(default-assistant activations) - mean(role vectors)``, per
layer. :func:`assistant_axis` computes both at one layer, orients PC1 so the
default assistant scores at its positive end, and reports whether PC1 actually
separates the default from the roles (:class:`AxisSeparation`); small models
need not reproduce the finding, so the report is a measurement, not an
assumption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "AssistantAxis",
    "AxisSeparation",
    "PersonaSpace",
    "assistant_axis",
    "assistant_axis_by_layer",
    "contrast_axis",
    "persona_space",
]


def _matrix(values: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array (n, n_embd), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return arr


def _sign_canonical(component: np.ndarray) -> np.ndarray:
    """``component`` or its negative: the one whose largest-magnitude entry is positive."""
    return component if component[np.argmax(np.abs(component))] >= 0 else -component


@dataclass(frozen=True, eq=False)
class PersonaSpace:
    """Principal components of mean-centred role vectors at one layer.

    Attributes:
        components: float64 ``(k, n_embd)``, orthonormal rows, PC1 first.
        explained_variance_ratio: float64 ``(k,)``: each component's share of the
            total variance of the centred role vectors (all components, not only k).
        scores: float64 ``(n_roles, k)``: each role's coordinates.
        center: float64 ``(n_embd,)``: the mean role vector.

    """

    components: np.ndarray
    explained_variance_ratio: np.ndarray
    scores: np.ndarray
    center: np.ndarray

    def project(self, vectors: ArrayLike) -> np.ndarray:
        """Coordinates in persona space of other vectors (``(n, n_embd)`` or ``(n_embd,)``)."""
        arr = np.asarray(vectors, dtype=np.float64)
        return (arr - self.center) @ self.components.T

    def flipped(self, component: int) -> PersonaSpace:
        """The same space with one component's sign reversed (scores follow)."""
        sign = np.ones(len(self.components))
        sign[component] = -1.0
        return PersonaSpace(
            self.components * sign[:, None],
            self.explained_variance_ratio,
            self.scores * sign,
            self.center,
        )


def persona_space(role_vectors: ArrayLike, n_components: int = 3) -> PersonaSpace:
    """PCA of mean-centred role vectors at one layer.

    Each component's sign is made deterministic: its largest-magnitude entry is
    positive (:func:`assistant_axis` then orients PC1 by the default assistant).

    Args:
        role_vectors: ``(n_roles, n_embd)``, one mean activation per role.
        n_components: how many components to keep; at most ``n_roles - 1`` (the
            rank of centred data) and ``n_embd``.

    Returns:
        The components, their explained-variance ratios and the roles' scores.

    Raises:
        ValueError: with fewer than 3 roles, an impossible ``n_components``, or
            role vectors that are all identical.

    """
    roles = _matrix(role_vectors, "role vectors")
    n_roles, n_embd = roles.shape
    if n_roles < 3:
        raise ValueError(f"persona space needs at least 3 role vectors, got {n_roles}")
    limit = min(n_roles - 1, n_embd)
    if not 1 <= n_components <= limit:
        raise ValueError(
            f"n_components must be between 1 and {limit} for {n_roles} roles of width {n_embd}, "
            f"got {n_components}"
        )
    center = roles.mean(axis=0)
    centred = roles - center
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    total = float(np.sum(singular**2))
    if total == 0:
        raise ValueError("all role vectors are identical: persona space is empty")
    components = np.stack([_sign_canonical(vt[i]) for i in range(n_components)])
    ratios = singular[:n_components] ** 2 / total
    return PersonaSpace(components, ratios, centred @ components.T, center)


def contrast_axis(default_activations: ArrayLike, role_vectors: ArrayLike) -> np.ndarray:
    """The Assistant axis by contrast: ``mean(default) - mean(roles)``, unnormalised.

    Works at one layer (``(n, n_embd)`` inputs) or at every layer at once
    (``(n, n_layers, n_embd)`` inputs).

    Args:
        default_activations: default-assistant activations (rollouts or their means).
        role_vectors: role vectors, one per role.

    Returns:
        float64 ``(n_embd,)`` or ``(n_layers, n_embd)``.

    Raises:
        ValueError: if the inputs are empty, not 2-D or 3-D, disagree in their
            trailing shape, or hold NaN or infinities.

    """
    default = np.asarray(default_activations, dtype=np.float64)
    roles = np.asarray(role_vectors, dtype=np.float64)
    for arr, what in ((default, "default activations"), (roles, "role vectors")):
        if arr.ndim not in (2, 3) or 0 in arr.shape:
            raise ValueError(
                f"{what} must be shaped (n, n_embd) or (n, n_layers, n_embd), got {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contain NaN or infinite values")
    if default.shape[1:] != roles.shape[1:]:
        raise ValueError(
            f"default activations {default.shape} and role vectors {roles.shape} must share "
            "their trailing (layers, n_embd) shape"
        )
    return default.mean(axis=0) - roles.mean(axis=0)


@dataclass(frozen=True)
class AxisSeparation:
    """Whether PC1 puts the default assistant beyond the roles, and how far.

    Attributes:
        default_score: the default assistant's (mean activation's) PC1 score.
        role_min: the lowest role score on PC1.
        role_max: the highest role score on PC1.
        position: ``(default_score - role_min) / (role_max - role_min)``: 1 at the
            top of the roles' range, above 1 beyond it.
        distance_from_end: ``1 - position``, Lu et al.'s "relative distance from
            the end" (0.03 in their models); zero or negative beyond every role.
        rank: how many roles score above the default (0: the default is the extreme).
        separates: whether the default scores above every role (``rank == 0``).
        cosine_with_contrast: cosine between PC1 and the contrast axis (Lu et al.
            report above 0.71 at middle layers).

    """

    default_score: float
    role_min: float
    role_max: float
    position: float
    distance_from_end: float
    rank: int
    separates: bool
    cosine_with_contrast: float


@dataclass(frozen=True, eq=False)
class AssistantAxis:
    """Persona space, the contrast axis and their agreement at one layer.

    Attributes:
        space: persona space, PC1 oriented so the default assistant scores high.
        contrast: float64 ``(n_embd,)``: ``mean(default) - mean(roles)``.
        default_scores: float64 ``(k,)``: the default assistant in persona space.
        separation: how PC1 places the default among the roles.

    """

    space: PersonaSpace
    contrast: np.ndarray
    default_scores: np.ndarray
    separation: AxisSeparation


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else 0.0


def assistant_axis(
    role_vectors: ArrayLike, default_activations: ArrayLike, n_components: int = 3
) -> AssistantAxis:
    """Persona space and the Assistant axis at one layer.

    Args:
        role_vectors: ``(n_roles, n_embd)``, one mean activation per role.
        default_activations: ``(n, n_embd)``: the default assistant's activations
            (per rollout or already averaged; their mean is used).
        n_components: components of persona space to keep (see :func:`persona_space`).

    Returns:
        The oriented persona space, the contrast axis and the separation report.

    Raises:
        ValueError: on malformed inputs (see :func:`persona_space`).

    """
    roles = _matrix(role_vectors, "role vectors")
    default = _matrix(default_activations, "default activations")
    if default.shape[1] != roles.shape[1]:
        raise ValueError(
            f"default activations have width {default.shape[1]}, role vectors {roles.shape[1]}"
        )
    space = persona_space(roles, n_components)
    default_mean = default.mean(axis=0)
    default_scores = space.project(default_mean)
    if default_scores[0] < 0:
        space = space.flipped(0)
        default_scores = space.project(default_mean)
    contrast = default_mean - roles.mean(axis=0)
    pc1 = space.scores[:, 0]
    low, high = float(pc1.min()), float(pc1.max())
    width = high - low
    position = float((default_scores[0] - low) / width) if width > 0 else float("nan")
    rank = int(np.sum(pc1 > default_scores[0]))
    separation = AxisSeparation(
        default_score=float(default_scores[0]),
        role_min=low,
        role_max=high,
        position=position,
        distance_from_end=1.0 - position,
        rank=rank,
        separates=rank == 0,
        cosine_with_contrast=_cosine(space.components[0], contrast),
    )
    return AssistantAxis(space, contrast, default_scores, separation)


def assistant_axis_by_layer(
    role_vectors: ArrayLike,
    default_activations: ArrayLike,
    layers: Sequence[int],
    n_components: int = 3,
) -> dict[int, AssistantAxis]:
    """:func:`assistant_axis` at every layer of per-layer activations.

    Args:
        role_vectors: ``(n_roles, n_layers, n_embd)``.
        default_activations: ``(n, n_layers, n_embd)``.
        layers: the block index of each slice of the layer axis.
        n_components: components of persona space to keep.

    Returns:
        The analysis per block index, in the order given.

    Raises:
        ValueError: if the arrays are not 3-D, disagree, or ``layers`` does not
            name every slice once.

    """
    roles = np.asarray(role_vectors, dtype=np.float64)
    default = np.asarray(default_activations, dtype=np.float64)
    if roles.ndim != 3 or default.ndim != 3 or roles.shape[1:] != default.shape[1:]:
        raise ValueError(
            "role vectors and default activations must be shaped (n, n_layers, n_embd) alike, "
            f"got {roles.shape} and {default.shape}"
        )
    blocks = [int(b) for b in layers]
    if len(blocks) != roles.shape[1] or len(set(blocks)) != len(blocks):
        raise ValueError(
            f"layers must name each of the {roles.shape[1]} layer slices once, got {blocks}"
        )
    return {
        block: assistant_axis(roles[:, i], default[:, i], n_components)
        for i, block in enumerate(blocks)
    }
