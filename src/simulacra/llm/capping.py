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


@dataclass(frozen=True)
class CappingSetting:
    """Which blocks are capped, on which axis, into which band: hashable, with a stable key.

    Attributes:
        axis_sha256: the sha256 of the axis's directions (its identity).
        layers: the capped 0-based blocks, increasing.
        low: the floor of the projection (None: no floor).
        high: the ceiling (None: no ceiling).

    """

    axis_sha256: str
    layers: tuple[int, ...]
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.axis_sha256, str) or not _SHA256.fullmatch(self.axis_sha256):
            raise ValueError(f"expected a lowercase hex sha256, got {self.axis_sha256!r}")
        layers = tuple(sorted({int(b) for b in self.layers}))
        if not layers or layers[0] < 0:
            raise ValueError(f"capping needs one or more blocks >= 0, got {self.layers}")
        low, high = (None if b is None else float(b) + 0.0 for b in (self.low, self.high))
        if low is None and high is None:
            raise ValueError("a capping band needs a lower bound, an upper bound or both")
        if any(b is not None and math.isnan(b) for b in (low, high)):
            raise ValueError("capping bounds must not be NaN")
        if low is not None and high is not None and low > high:
            raise ValueError(f"capping band is empty: low {low} > high {high}")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` with a missing bound as minus or plus infinity."""
        return (
            -math.inf if self.low is None else self.low,
            math.inf if self.high is None else self.high,
        )

    @property
    def key(self) -> str:
        """A stable text key: ``cap[<sha256>]@10,11,12:low:high`` (empty text for no bound)."""
        low, high = ("" if b is None else repr(b) for b in (self.low, self.high))
        layers = ",".join(str(b) for b in self.layers)
        return f"cap[{self.axis_sha256}]@{layers}:{low}:{high}"
