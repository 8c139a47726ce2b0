"""Steering: persona vectors added to llama.cpp's residual stream as control vectors.

llama.cpp adds a per-layer vector to the output of each decoder block
(``llama_set_adapter_cvec``). Its buffer has one row of ``n_embd`` floats per
block *starting at block 1*: row ``i`` is added to block ``i + 1``, because block
0 can never be steered. Only blocks inside the inclusive range
``[il_start, il_end]`` are touched. The values are added as they are, to every
token of every sequence in the batch, until the vector is cleared.

:func:`control_vector_buffer` builds that buffer from one persona vector or a
weighted sum of several; it always covers every block of the model, since
llama.cpp leaves rows that a shorter buffer does not reach as they were.
:func:`apply_control_vector` and :func:`clear_control_vector` are thin calls into
llama_cpp. :class:`SteeringSetting` names a setting with a stable key: tokens
decoded under different settings have different KV entries, so a prefix cache
must keep them apart.
"""

from __future__ import annotations

import ctypes
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import llama_cpp
import numpy as np

from simulacra.errors import EngineError

__all__ = [
    "LayerDirections",
    "SteeringSetting",
    "apply_control_vector",
    "clear_control_vector",
    "control_vector_buffer",
    "steered_layer_range",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


@runtime_checkable
class LayerDirections(Protocol):
    """Directions per block, as steering needs them (a persona vector, for one).

    :class:`simulacra.vectors.PersonaVector` satisfies it; the inference layer
    knows nothing else about persona vectors.
    """

    @property
    def layers(self) -> tuple[int, ...]:
        """The 0-based blocks with a direction, ascending."""
        ...

    @property
    def directions(self) -> np.ndarray:
        """One row of ``n_embd`` floats per entry of :attr:`layers`."""
        ...

    @property
    def n_embd(self) -> int:
        """The width of every direction."""
        ...

    @property
    def sha256(self) -> str:
        """A hash of the layers and values (the identity of the directions)."""
        ...


def _terms(
    vectors: LayerDirections | Sequence[LayerDirections], coefficients: float | Sequence[float]
) -> list[tuple[LayerDirections, float]]:
    vector_list = [vectors] if isinstance(vectors, LayerDirections) else list(vectors)
    if not vector_list:
        raise ValueError("steering needs at least one persona vector")
    if isinstance(coefficients, int | float | np.number):
        coefficient_list = [float(coefficients)] * len(vector_list)
    else:
        coefficient_list = [float(c) for c in coefficients]
    if len(coefficient_list) != len(vector_list):
        raise ValueError(
            f"{len(vector_list)} persona vectors but {len(coefficient_list)} coefficients"
        )
    if not all(math.isfinite(c) for c in coefficient_list):
        raise ValueError(f"coefficients must be finite, got {coefficient_list}")
    widths = {v.n_embd for v in vector_list}
    if len(widths) != 1:
        raise ValueError(f"persona vectors of different widths cannot be summed: {sorted(widths)}")
    return list(zip(vector_list, coefficient_list, strict=True))


def steered_layer_range(
    vectors: LayerDirections | Sequence[LayerDirections], n_layer: int
) -> tuple[int, int]:
    """The default inclusive block range: the vectors' layers from block 1 up.

    Args:
        vectors: one persona vector or several.
        n_layer: the model's number of blocks.

    Raises:
        ValueError: if no vector has a direction at a steerable block (1 to n_layer - 1).

    """
    vector_list = [vectors] if isinstance(vectors, LayerDirections) else list(vectors)
    steerable = sorted({b for v in vector_list for b in v.layers if 1 <= b < n_layer})
    if not steerable:
        raise ValueError(
            f"no direction at a steerable block: llama.cpp steers blocks 1 to {n_layer - 1}, "
            f"the vectors cover {sorted({b for v in vector_list for b in v.layers})}"
        )
    return steerable[0], steerable[-1]


def _check_range(layers: tuple[int, int], n_layer: int) -> tuple[int, int]:
    start, end = (int(b) for b in layers)
    if start < 1:
        raise ValueError(f"block {start} cannot be steered: llama.cpp steers blocks 1 and up")
    if end > n_layer - 1:
        raise ValueError(f"block {end} does not exist: the model has blocks 0 to {n_layer - 1}")
    if start > end:
        raise ValueError(f"empty layer range: start {start} > end {end}")
    return start, end


def control_vector_buffer(
    vectors: LayerDirections | Sequence[LayerDirections],
    coefficients: float | Sequence[float] = 1.0,
    *,
    n_layer: int,
    layers: tuple[int, int] | None = None,
) -> np.ndarray:
    """The ``llama_set_adapter_cvec`` buffer for a weighted sum of persona vectors.

    Row ``i`` holds the sum over vectors of ``coefficient * direction`` at block
    ``i + 1``, for blocks inside ``layers`` where the vector has a direction;
    every other row is zero. Directions at block 0, or outside the range, are
    left out.

    Args:
        vectors: one persona vector, or several of the same width.
        coefficients: one coefficient for all, or one per vector.
        n_layer: the model's number of blocks (``llama_model_n_layer``).
        layers: inclusive block range ``(start, end)``, ``1 <= start <= end <
            n_layer``; default :func:`steered_layer_range`.

    Returns:
        float32 ``(n_layer - 1, n_embd)``, C-contiguous.

    Raises:
        ValueError: for an impossible range (block 0 included, past the last
            block, empty), mismatched coefficients, or vectors of different widths.

    """
    terms = _terms(vectors, coefficients)
    if n_layer < 2:
        raise ValueError(f"a model of {n_layer} block(s) has no steerable block")
    start, end = _check_range(
        steered_layer_range([v for v, _ in terms], n_layer) if layers is None else layers,
        n_layer,
    )
    total = np.zeros((n_layer - 1, terms[0][0].n_embd), dtype=np.float64)
    for vector, coefficient in terms:
        for layer, row in zip(vector.layers, vector.directions, strict=True):
            if start <= layer <= end:
                total[layer - 1] += coefficient * row.astype(np.float64)
    return np.ascontiguousarray(total, dtype=np.float32)


def _cvec_function() -> Any:
    """``llama_set_adapter_cvec``, or its older name ``llama_apply_adapter_cvec``."""
    function = getattr(llama_cpp, "llama_set_adapter_cvec", None)
    if function is None:
        function = getattr(llama_cpp, "llama_apply_adapter_cvec", None)
    if function is None:
        raise EngineError(
            "this llama_cpp has neither llama_set_adapter_cvec nor llama_apply_adapter_cvec: "
            "control vectors need llama-cpp-python >= 0.2.x"
        )
    return function


def apply_control_vector(
    ctx: Any, buffer: np.ndarray, n_embd: int, il_start: int, il_end: int
) -> None:
    """Set the context's control vector (it applies from the next decode on).

    llama.cpp copies the buffer, so it may be freed afterwards.

    Args:
        ctx: a ``llama_context_p``.
        buffer: float32 rows from :func:`control_vector_buffer` (row i = block i+1).
        n_embd: the model's width; must match the buffer's rows.
        il_start: first steered block (inclusive, >= 1).
        il_end: last steered block (inclusive).

    Raises:
        ValueError: if the buffer's width is not ``n_embd``.
        EngineError: if llama.cpp refuses the vector (e.g. n_embd is not the model's).

    """
    rows = np.ascontiguousarray(buffer, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != n_embd:
        raise ValueError(f"buffer must be shaped (n_layer - 1, {n_embd}), got {rows.shape}")
    data = rows.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    status = _cvec_function()(ctx, data, rows.size, n_embd, il_start, il_end)
    if status != 0:
        raise EngineError(
            f"llama.cpp refused the control vector (status {status}): n_embd {n_embd}, "
            f"blocks {il_start}..{il_end}; does n_embd match the model?"
        )


def clear_control_vector(ctx: Any, n_embd: int) -> None:
    """Remove the context's control vector (llama.cpp keeps its buffers for reuse).

    Raises:
        EngineError: if llama.cpp reports a failure.

    """
    status = _cvec_function()(ctx, None, 0, n_embd, -1, -1)
    if status != 0:
        raise EngineError(f"llama.cpp could not clear the control vector (status {status})")


@dataclass(frozen=True)
class SteeringSetting:
    """What is added to the residual stream: hashable, with a stable text key.

    Attributes:
        terms: ``(directions sha256, coefficient)`` per persona vector summed, in order.
        layers: the inclusive block range ``(start, end)`` steered.
        cap: an optional capping band ``(low, high)`` on the projection onto the
            first vector's unit direction (either bound may be None).

    """

    terms: tuple[tuple[str, float], ...]
    layers: tuple[int, int]
    cap: tuple[float | None, float | None] | None = None

    def __post_init__(self) -> None:
        if not self.terms:
            raise ValueError("a steering setting needs at least one (sha256, coefficient) term")
        terms = []
        for sha, coefficient in self.terms:
            if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
                raise ValueError(f"expected a lowercase hex sha256, got {sha!r}")
            coefficient = float(coefficient)
            if not math.isfinite(coefficient):
                raise ValueError(f"coefficients must be finite, got {coefficient}")
            terms.append((sha, coefficient + 0.0))  # -0.0 and 0.0 give one key
        start, end = (int(b) for b in self.layers)
        if start < 1 or start > end:
            raise ValueError(
                f"layers must be an inclusive range 1 <= start <= end, got {self.layers}"
            )
        cap = self.cap
        if cap is not None:
            low, high = (None if b is None else float(b) for b in cap)
            if low is None and high is None:
                raise ValueError("a capping band needs a lower bound, an upper bound or both")
            if any(b is not None and math.isnan(b) for b in (low, high)):
                raise ValueError("capping bounds must not be NaN")
            if low is not None and high is not None and low > high:
                raise ValueError(f"capping band is empty: low {low} > high {high}")
            cap = (low, high)
        object.__setattr__(self, "terms", tuple(terms))
        object.__setattr__(self, "layers", (start, end))
        object.__setattr__(self, "cap", cap)

    @classmethod
    def of(
        cls,
        vectors: LayerDirections | Sequence[LayerDirections],
        coefficients: float | Sequence[float] = 1.0,
        *,
        n_layer: int,
        layers: tuple[int, int] | None = None,
        cap: tuple[float | None, float | None] | None = None,
    ) -> SteeringSetting:
        """The setting for vectors and coefficients, as :func:`control_vector_buffer` takes them."""
        terms = _terms(vectors, coefficients)
        if layers is None:
            layers = steered_layer_range([v for v, _ in terms], n_layer)
        start, end = _check_range(layers, n_layer)
        return cls(tuple((v.sha256, c) for v, c in terms), (start, end), cap)

    @property
    def key(self) -> str:
        """A stable text key: ``cvec[<sha256>*1.5]@10-20``, plus ``;cap=low:high`` if capped.

        The same setting gives the same key in every process and Python version:
        the full sha256 of each vector and the shortest round-trip repr of floats.
        """
        terms = "+".join(f"{sha}*{coefficient!r}" for sha, coefficient in self.terms)
        key = f"cvec[{terms}]@{self.layers[0]}-{self.layers[1]}"
        if self.cap is not None:
            low, high = ("" if b is None else repr(b) for b in self.cap)
            key += f";cap={low}:{high}"
        return key
