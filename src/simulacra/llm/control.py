"""Control: steering (and capping) an engine's decodes, kept apart in its prefix cache.

The :class:`Control` part of :class:`~simulacra.llm.engine.Engine` gives two
context managers:

- :meth:`Control.steering`: a control vector (persona vectors times
  coefficients over a block range, :mod:`simulacra.llm.steering`) added to the
  residual stream of every token decoded inside the block;
- :meth:`Control.capping`: the projection of chosen blocks' outputs on an axis
  clamped into a band (:mod:`simulacra.llm.capping`), on the CPU backend.

Inside them every decode runs under the setting: :meth:`generate`, :meth:`loglik`,
:meth:`choice`, :meth:`choices`, :meth:`option_logprobs` and the hidden-state
reads. KV cells hold activations computed under one setting, so the pool keys
every cached sequence by the setting's stable key (:attr:`SequencePool.key`): a
prefix decoded under one setting is never reused under another, while a prefix
decoded earlier under the *same* setting (or with none) is reused as usual.
Outside any block the engine decodes exactly as it always has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from simulacra.errors import EngineError
from simulacra.llm.activations import ActivationRecorder
from simulacra.llm.capping import CappingSetting, clamp_rows
from simulacra.llm.pool import SequencePool
from simulacra.llm.steering import (
    LayerDirections,
    SteeringSetting,
    apply_control_vector,
    clear_control_vector,
    control_vector_buffer,
)

__all__ = ["Control"]

# What is being steered now: the setting and its llama_set_adapter_cvec buffer.
_Steer = tuple[SteeringSetting, np.ndarray] | None
# What is being capped now: the setting and the unit axis per capped block.
_Cap = tuple[CappingSetting, dict[int, np.ndarray]] | None


class Control:
    """Steering and capping of the engine (a mixin: the engine provides the attributes below)."""

    _ctx: object
    _pool: SequencePool
    _steer: _Steer
    _cap: _Cap
    _recorder: ActivationRecorder | None
    n_layer: int
    n_embd: int
    n_gpu_layers: int

    @property
    def steering_setting(self) -> SteeringSetting | None:
        """The steering in force now (None: the residual stream is not steered)."""
        return self._steer[0] if self._steer is not None else None

    @contextlib.contextmanager
    def steering(
        self,
        vectors: LayerDirections | Sequence[LayerDirections] | None,
        coefficients: float | Sequence[float] = 1.0,
        *,
        layers: tuple[int, int] | None = None,
    ) -> Iterator[SteeringSetting | None]:
        """Within this block, every decode adds ``sum(coefficient * direction)`` per block.

        ::

            with engine.steering(pirate, 2.0, layers=(12, 12)) as setting:
                engine.generate([prompt])  # steered; setting.key names it
            engine.generate([prompt])  # not steered, and no steered prefix reused

        The vector is llama.cpp's control vector (``llama_set_adapter_cvec``):
        ``direction.b`` is added to the output of block ``b`` (``l_out-b``) for every
        token decoded, prompt and generated alike; block 0 cannot be steered. Blocks
        nest: an inner block replaces the outer setting and the outer one is back on
        exit; ``steering(None)`` decodes unsteered inside a steered block. Cached
        prefixes are keyed by :attr:`SteeringSetting.key`, so a prompt decoded under
        one setting is decoded again under another, never reused (module docstring).

        Args:
            vectors: one persona vector (anything with per-block ``directions``),
                several of the same width to sum, or None for no steering.
            coefficients: one coefficient for all vectors, or one each (0 is a
                setting of its own: its cache is kept apart, its numbers equal none).
            layers: inclusive block range ``(start, end)``, ``1 <= start``; default:
                the vectors' blocks from 1 up (:func:`steered_layer_range`).

        Yields:
            The setting in force (None with ``vectors=None``).

        Raises:
            ValueError: an impossible range, mismatched coefficients, or vectors whose
                width is not the model's.
            EngineError: if llama.cpp refuses the vector.

        """
        if vectors is None:
            steer: _Steer = None
        else:
            setting = SteeringSetting.of(vectors, coefficients, n_layer=self.n_layer, layers=layers)
            buffer = control_vector_buffer(
                vectors, coefficients, n_layer=self.n_layer, layers=setting.layers
            )
            if buffer.shape[1] != self.n_embd:
                raise ValueError(
                    f"the steering vectors are {buffer.shape[1]} wide but the model's "
                    f"residual stream is {self.n_embd} (n_embd): were they made for this model?"
                )
            steer = (setting, buffer)
        previous = self._steer
        self._set_steer(steer)
        try:
            yield steer[0] if steer is not None else None
        finally:
            self._set_steer(previous)

    def _set_steer(self, steer: _Steer) -> None:
        self._pool.require_open()
        if steer is None:
            clear_control_vector(self._ctx, self.n_embd)
        else:
            setting, buffer = steer
            apply_control_vector(self._ctx, buffer, self.n_embd, *setting.layers)
        self._steer = steer
        self._update_key()

    @property
    def capping_setting(self) -> CappingSetting | None:
        """The capping in force now (None: nothing is capped)."""
        return self._cap[0] if self._cap is not None else None

    @contextlib.contextmanager
    def capping(
        self,
        axis: LayerDirections | None,
        low: float | Mapping[int, float] | None = None,
        high: float | Mapping[int, float] | None = None,
        *,
        layers: Sequence[int] | None = None,
    ) -> Iterator[CappingSetting | None]:
        """Within this block, clamp the projection on ``axis`` into ``[low, high]`` (Lu et al.).

        ::

            with engine.capping(axis, low=tau, layers=range(16, 24)):
                engine.generate([prompt])

        At each capped block ``b``, every decoded token's ``l_out-b`` is moved along
        the unit axis at ``b`` (and only along it) until its projection lies in the
        band; tokens already inside are untouched. The rewritten values are what
        the following blocks read (the engine's eval callback edits the tensor in
        place: :mod:`simulacra.llm.capping`). With steering also in force, the
        control vector is added first and the sum is capped. Blocks nest like
        :meth:`steering`; ``capping(None)`` caps nothing inside a capped block.
        Cached prefixes are keyed by the capping's key (and the steering's).

        Args:
            axis: directions per block (a persona vector or the Assistant axis; any
                norm: each block's direction is normalised), or None.
            low: the floor (Lu et al.'s tau); None: no floor. A mapping block -> floor
                gives each capped block its own (projections grow with depth; Lu et al.
                calibrate tau per layer).
            high: the ceiling; None: no ceiling; or a mapping block -> ceiling.
            layers: the capped blocks (each must have a direction in ``axis``);
                default: every block of the axis.

        Yields:
            The setting in force (None with ``axis=None``).

        Raises:
            ValueError: no bound, an empty band, a block the axis or the model lacks,
                a zero direction, or an axis whose width is not the model's.
            EngineError: on a GPU-offloaded engine (capping edits host memory, CPU
                backend only) or one loaded with ``hooks=False``.

        """
        if axis is None:
            cap: _Cap = None
        else:
            cap = self._capping(axis, low, high, layers)
        previous = self._cap
        self._set_cap(cap)
        try:
            yield cap[0] if cap is not None else None
        finally:
            self._set_cap(previous)

    def _capping(
        self,
        axis: LayerDirections,
        low: float | Mapping[int, float] | None,
        high: float | Mapping[int, float] | None,
        layers: Sequence[int] | None,
    ) -> tuple[CappingSetting, dict[int, np.ndarray]]:
        if self.n_gpu_layers != 0:
            raise EngineError(
                f"capping cannot run on this engine: it offloads n_gpu_layers={self.n_gpu_layers} "
                "to the GPU, and capping rewrites the residual stream in llama.cpp's eval "
                "callback, which works on the CPU backend only (load with n_gpu_layers=0)"
            )
        if self._recorder is None:
            raise EngineError(
                "this engine was loaded with hooks=False: capping needs llama.cpp's eval "
                "callback (Engine.load(..., hooks=True), the default)"
            )
        if axis.n_embd != self.n_embd:
            raise ValueError(
                f"the capping axis is {axis.n_embd} wide but the model's residual stream "
                f"is {self.n_embd} (n_embd): was it made for this model?"
            )
        blocks = list(axis.layers) if layers is None else [int(b) for b in layers]
        missing = sorted(set(blocks) - set(axis.layers))
        if missing:
            raise ValueError(
                f"the axis has no direction at blocks {missing} (it has {list(axis.layers)})"
            )
        outside = sorted(b for b in blocks if not 0 <= b < self.n_layer)
        if outside:
            raise ValueError(
                f"blocks {outside} do not exist: the model has blocks 0 to {self.n_layer - 1}"
            )
        setting = CappingSetting(
            axis.sha256, tuple(blocks), _per_block(low, blocks), _per_block(high, blocks)
        )
        units = {}
        for block, row in zip(axis.layers, axis.directions, strict=True):
            if block in setting.layers:
                row = np.asarray(row, dtype=np.float64)
                norm = float(np.linalg.norm(row))
                if not norm > 0 or not np.isfinite(norm):
                    raise ValueError(f"the axis's direction at block {block} is zero or not finite")
                units[block] = row / norm
        return setting, units

    def _set_cap(self, cap: _Cap) -> None:
        self._pool.require_open()
        if cap is None:
            if self._recorder is not None:
                self._recorder.set_editor((), None)
        else:
            setting, units = cap
            bands = {block: setting.bounds_at(block) for block in setting.layers}

            def editor(block: int, rows: np.ndarray) -> None:
                clamp_rows(rows, units[block], *bands[block])

            self._recorder.set_editor(setting.layers, editor)
        self._cap = cap
        self._update_key()

    def _update_key(self) -> None:
        """The pool's key: every setting in force, by its stable key."""
        keys = [self._steer[0].key] if self._steer is not None else []
        if self._cap is not None:
            keys.append(self._cap[0].key)
        self._pool.key = ";".join(keys)


def _per_block(
    bound: float | Mapping[int, float] | None, blocks: Sequence[int]
) -> float | tuple[float, ...] | None:
    """A bound as :class:`CappingSetting` takes it: a mapping becomes one per sorted block.

    Raises:
        ValueError: a mapping whose blocks are not the capped blocks.
    """
    if not isinstance(bound, Mapping):
        return bound
    capped = sorted(set(blocks))
    if sorted(int(b) for b in bound) != capped:
        raise ValueError(
            f"a bound per block needs exactly the capped blocks {capped}, got {sorted(bound)}"
        )
    return tuple(float(bound[b]) for b in capped)
