"""The persona vector: one direction in the residual stream per layer, with its provenance.

A :class:`PersonaVector` holds one float32 row of ``n_embd`` values per layer it
covers. Layers are 0-based decoder-block indices ``b``: the row for layer ``b``
lives at the output of block ``b``, which llama.cpp names ``l_out-b`` and a
control-vector file stores as ``direction.b``. (Chen et al.'s "layer L" and
Hugging Face's ``hidden_states[L]`` are block ``L - 1``.) Block 0 can be measured
but never steered by llama.cpp.

Besides the numbers, a vector carries what a result needs to be reproducible:
the model it was extracted from (name, architecture, sha256), the extraction
method and a hash of every prompt and question used. The object is immutable; the
methods return new vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["METHODS", "PersonaVector", "directions_sha256"]

METHODS: tuple[str, ...] = ("mean_diff", "pca_diff", "assistant_axis", "contrast", "imported")
"""Extraction methods simulacra knows by name; any other non-empty name is accepted too."""


def directions_sha256(directions: np.ndarray, layers: Iterable[int]) -> str:
    """The identity of a set of directions: sha256 of their layers, shape and values.

    Args:
        directions: float32 array shaped ``(n_layers, n_embd)``.
        layers: the block index of each row.

    Returns:
        A hex digest that changes whenever a value, a layer or the shape changes,
        and never with metadata.

    """
    rows = np.ascontiguousarray(directions, dtype="<f4")
    digest = hashlib.sha256()
    digest.update(("layers=" + ",".join(str(int(b)) for b in layers)).encode())
    digest.update(f";shape={rows.shape[0]}x{rows.shape[1]};".encode())
    digest.update(rows.tobytes())
    return digest.hexdigest()


def _frozen_rows(directions: ArrayLike) -> np.ndarray:
    rows = np.array(directions, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(
            f"directions must be a 2-D array (one row per layer), got shape {rows.shape}"
        )
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        raise ValueError(
            f"directions must have at least one layer and one column, got {rows.shape}"
        )
    if not np.isfinite(rows).all():
        raise ValueError("directions contain NaN or infinite values")
    return rows


def _checked_layers(layers: Iterable[int]) -> tuple[int, ...]:
    checked = []
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int | np.integer):
            raise ValueError(f"layers must be integers, got {layer!r}")
        if layer < 0:
            raise ValueError(f"layers are 0-based block indices (>= 0), got {int(layer)}")
        checked.append(int(layer))
    if len(set(checked)) != len(checked):
        raise ValueError(f"layers must be unique, got {checked}")
    return tuple(checked)


@dataclass(frozen=True, eq=False)
class PersonaVector:
    """A direction per layer in a model's residual stream, with its provenance.

    Rows are stored in increasing layer order (the constructor sorts them) as a
    read-only float32 array. Two vectors are equal when their layers, values and
    metadata are all equal.

    Attributes:
        directions: float32 array ``(len(layers), n_embd)``; row ``i`` is the
            direction at block ``layers[i]`` (llama.cpp ``l_out-b``).
        layers: 0-based block indices, increasing.
        name: what the vector is of ("pirate", "assistant_axis").
        method: how it was extracted (one of :data:`METHODS`, or another name).
        model_name: the model's registry name or file name.
        model_sha256: sha256 of the model file the activations came from.
        architecture: the model's llama.cpp architecture ("llama", "gemma3"),
            written as ``controlvector.model_hint`` in GGUF files.
        prompts_sha256: hash of the canonical JSON of every prompt and question
            used (see :func:`simulacra.vectors.extraction.prompts_hash`).
        meta: free string metadata.

    """

    directions: np.ndarray
    layers: tuple[int, ...]
    name: str
    method: str
    model_name: str = ""
    model_sha256: str = ""
    architecture: str = ""
    prompts_sha256: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rows = _frozen_rows(self.directions)
        layers = _checked_layers(self.layers)
        if len(layers) != rows.shape[0]:
            raise ValueError(
                f"directions has {rows.shape[0]} rows but {len(layers)} layers were given "
                f"({list(layers)}); there must be one row per layer"
            )
        order = np.argsort(layers, kind="stable")
        rows = np.ascontiguousarray(rows[order])
        rows.setflags(write=False)
        for attribute in ("name", "method"):
            value = getattr(self, attribute)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{attribute} must be a non-empty string, got {value!r}")
        for attribute in ("model_name", "model_sha256", "architecture", "prompts_sha256"):
            value = getattr(self, attribute)
            if not isinstance(value, str):
                raise ValueError(f"{attribute} must be a string, got {value!r}")
        meta = dict(self.meta)
        for key, value in meta.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValueError(f"meta must map strings to strings, got {key!r}: {value!r}")
        object.__setattr__(self, "directions", rows)
        object.__setattr__(self, "layers", tuple(layers[i] for i in order))
        object.__setattr__(self, "meta", MappingProxyType(meta))

    # ------------------------------------------------------------------ identity
    @property
    def n_embd(self) -> int:
        """The width of the residual stream (columns of :attr:`directions`)."""
        return int(self.directions.shape[1])

    @property
    def sha256(self) -> str:
        """The identity of the directions (layers and values, not metadata)."""
        return directions_sha256(self.directions, self.layers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PersonaVector):
            return NotImplemented
        return (
            self.layers == other.layers
            and np.array_equal(self.directions, other.directions)
            and self._metadata() == other._metadata()
        )

    def __hash__(self) -> int:
        return hash((self.sha256, self._metadata()))

    def __reduce__(self) -> tuple[type[PersonaVector], tuple[Any, ...]]:
        """Pickle by value (the read-only mapping of :attr:`meta` does not pickle itself)."""
        return (
            type(self),
            (
                np.array(self.directions),
                self.layers,
                self.name,
                self.method,
                self.model_name,
                self.model_sha256,
                self.architecture,
                self.prompts_sha256,
                dict(self.meta),
            ),
        )

    def __repr__(self) -> str:
        return (
            f"PersonaVector(name={self.name!r}, method={self.method!r}, "
            f"layers={list(self.layers)}, n_embd={self.n_embd}, model_name={self.model_name!r})"
        )

    def _metadata(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.method,
            self.model_name,
            self.model_sha256,
            self.architecture,
            self.prompts_sha256,
            tuple(sorted(self.meta.items())),
        )

    # ------------------------------------------------------------------ access
    def direction(self, layer: int) -> np.ndarray:
        """The (read-only) direction at one block.

        Args:
            layer: a 0-based block index present in :attr:`layers`.

        Returns:
            A float32 vector of length :attr:`n_embd`.

        Raises:
            KeyError: if the vector has no direction at ``layer``.

        """
        try:
            return self.directions[self.layers.index(layer)]
        except ValueError:
            raise KeyError(
                f"persona vector {self.name!r} has no direction at layer {layer}; "
                f"it covers layers {list(self.layers)}"
            ) from None

    def norms(self) -> np.ndarray:
        """The L2 norm of every layer's direction, in :attr:`layers` order (float64)."""
        return np.linalg.norm(self.directions.astype(np.float64), axis=1)

    # ------------------------------------------------------------------ new vectors
    def unit(self) -> PersonaVector:
        """The same vector with every layer's direction scaled to norm 1.

        Raises:
            ValueError: if some layer's direction is zero.

        """
        norms = self.norms()
        if (norms == 0).any():
            zero = [b for b, n in zip(self.layers, norms, strict=True) if n == 0]
            raise ValueError(
                f"cannot normalise persona vector {self.name!r}: zero at layers {zero}"
            )
        rows = self.directions.astype(np.float64) / norms[:, None]
        return replace(self, directions=rows.astype(np.float32))

    def restricted(self, layers: Iterable[int]) -> PersonaVector:
        """The vector at a subset of its layers.

        Args:
            layers: block indices, each present in :attr:`layers`.

        Raises:
            KeyError: if a layer is not covered by this vector.
            ValueError: if ``layers`` is empty or repeats a layer.

        """
        wanted = _checked_layers(layers)
        if not wanted:
            raise ValueError("restricted() needs at least one layer")
        rows = np.stack([self.direction(layer) for layer in wanted])
        return replace(self, directions=rows, layers=wanted)

    def scaled(self, coefficient: float) -> PersonaVector:
        """The vector multiplied by ``coefficient`` at every layer.

        Raises:
            ValueError: if ``coefficient`` is not finite.

        """
        coefficient = float(coefficient)
        if not np.isfinite(coefficient):
            raise ValueError(f"coefficient must be finite, got {coefficient}")
        rows = self.directions.astype(np.float64) * coefficient
        return replace(self, directions=rows.astype(np.float32))
