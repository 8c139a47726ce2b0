"""Activation capping: the projection of a block's output on an axis clamped into a band.

Lu et al. (2026) stabilise a persona by clamping, at several middle-to-late
blocks and at every token, the projection of the residual stream on the
Assistant axis: ``h <- h + (clip(<h, v>, low, high) - <h, v>) v`` with ``v`` the
unit axis at that block. Only the component along ``v`` moves.

llama.cpp can only *add* fixed vectors, so the engine caps inside the forward
pass instead: its eval callback stops the graph at each capped ``l_out-b``,
:func:`clamp_rows` rewrites the rows and the rest of the graph reads them
(:meth:`simulacra.llm.activations.ActivationRecorder.set_editor`). That needs the
tensors in host memory: capping runs on the CPU backend only.

:class:`CappingSetting` names a capping with a stable key, for the prefix cache.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

__all__ = ["CappingSetting", "clamp_rows"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def clamp_rows(rows: np.ndarray, unit: np.ndarray, low: float, high: float) -> None:
    """Clamp every row's projection on ``unit`` into ``[low, high]``, in place.

    Args:
        rows: float32 ``(n_rows, n_embd)`` activations, changed in place.
        unit: ``(n_embd,)`` unit direction (float64).
        low: the floor (``-inf``: none).
        high: the ceiling (``inf``: none).

    A row already inside the band is left bit for bit as it was.
    """
    wide = rows.astype(np.float64)
    projection = wide @ unit
    shift = np.clip(projection, low, high) - projection
    moved = shift != 0
    if moved.any():
        rows[moved] = (wide[moved] + shift[moved, None] * unit).astype(np.float32)


Bound = float | tuple[float, ...] | None
"""A capping bound: one for every block, one per block (increasing block order), or none."""


def _bound(value: object, n_blocks: int) -> Bound:
    """A bound checked and normalised (floats, ``-0.0`` as ``0.0``; a sequence as a tuple)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        values = tuple(float(v) + 0.0 for v in value)
        if len(values) != n_blocks:
            raise ValueError(
                f"expected one capping bound per block ({n_blocks}), got {len(values)}"
            )
        if any(math.isnan(v) for v in values):
            raise ValueError("capping bounds must not be NaN")
        return values
    bound = float(value) + 0.0  # type: ignore[arg-type]
    if math.isnan(bound):
        raise ValueError("capping bounds must not be NaN")
    return bound


@dataclass(frozen=True)
class CappingSetting:
    """Which blocks are capped, on which axis, into which band: hashable, with a stable key.

    Attributes:
        axis_sha256: the sha256 of the axis's directions (its identity).
        layers: the capped 0-based blocks, increasing.
        low: the floor of the projection (None: no floor), or one floor per block of
            ``layers`` (in increasing block order).
        high: the ceiling (None: no ceiling), or one per block.

    """

    axis_sha256: str
    layers: tuple[int, ...]
    low: Bound = None
    high: Bound = None

    def __post_init__(self) -> None:
        if not isinstance(self.axis_sha256, str) or not _SHA256.fullmatch(self.axis_sha256):
            raise ValueError(f"expected a lowercase hex sha256, got {self.axis_sha256!r}")
        layers = tuple(sorted({int(b) for b in self.layers}))
        if not layers or layers[0] < 0:
            raise ValueError(f"capping needs one or more blocks >= 0, got {self.layers}")
        low, high = (_bound(b, len(layers)) for b in (self.low, self.high))
        if low is None and high is None:
            raise ValueError("a capping band needs a lower bound, an upper bound or both")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        for block in layers:
            floor, ceiling = self.bounds_at(block)
            if floor > ceiling:
                raise ValueError(f"capping band is empty: low {floor} > high {ceiling}")

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` with a missing bound as minus or plus infinity (one band for all).

        Raises:
            ValueError: the bounds differ by block (use :meth:`bounds_at`).
        """
        if isinstance(self.low, tuple) or isinstance(self.high, tuple):
            raise ValueError("this capping has a band per block: use bounds_at(block)")
        return self.bounds_at(self.layers[0])

    def bounds_at(self, block: int) -> tuple[float, float]:
        """``(low, high)`` at one capped block, a missing bound as minus or plus infinity."""
        index = self.layers.index(block)
        low, high = (b[index] if isinstance(b, tuple) else b for b in (self.low, self.high))
        return (-math.inf if low is None else low, math.inf if high is None else high)

    @property
    def key(self) -> str:
        """A stable text key: ``cap[<sha256>]@10,11,12:low:high`` (empty text for no bound).

        A band per block writes its bounds as a tuple, ``(1.0, 2.0, 3.0)``.
        """
        low, high = ("" if b is None else repr(b) for b in (self.low, self.high))
        layers = ",".join(str(b) for b in self.layers)
        return f"cap[{self.axis_sha256}]@{layers}:{low}:{high}"
