"""Hidden-state capture: reading llama.cpp's residual stream through its eval callback.

llama.cpp lets a context call a function for every node of its compute graph
(``llama_context_params.cb_eval``, a ``ggml_backend_sched_eval_callback``). The
scheduler first *asks* (``ask=True``) whether the node is wanted; for a wanted node
it stops the graph there, computes up to it and calls again with ``ask=False`` once
the data are ready. :class:`ActivationRecorder` answers yes only for the block
outputs ``l_out-N`` of the layers it was given and copies each into numpy.

Layers are 0-based block indices: ``l_out-N`` is the residual stream after block
``N`` (and after any control vector added there, since llama.cpp adds
``direction.N`` before naming the tensor).

Rows and micro-batches
----------------------
``llama_decode`` splits a batch into micro-batches of at most ``n_ubatch`` tokens
and evaluates one graph per micro-batch; each graph yields one tensor per
requested layer with ``n_embd`` columns and one row per token of that
micro-batch. The recorder keeps one :class:`MicroBatch` per graph evaluation, in
evaluation order (a new one starts whenever a layer comes back that is not
above the last one seen). With a unified KV cache (one stream, the engine's
default) llama.cpp cuts a batch into consecutive runs of tokens, so the rows of
:meth:`ActivationRecorder.stacked` follow the batch order across micro-batches
and across successive decodes since the last :meth:`ActivationRecorder.clear`.
With one KV stream per sequence (``kv_unified=False``) llama.cpp splits by
sequence instead: each micro-batch takes an equal run of tokens from every
sequence, and its rows come grouped by sequence.

The last block is pruned: llama.cpp drops the rows that produce no logits before
that block's feed-forward step, so ``l_out-(n_layer-1)`` holds only the rows
flagged as outputs. Read lower layers per token, or flag every token as an output.

Cost: when no layer is requested the callback answers no at once (no graph
splits, no copies); what remains is one call from C into Python per graph node,
about 0.3 ms per decode of SmolLM2 (under 2% of a one-token step on one thread).
Each requested layer splits the graph there and copies ``n_rows x n_embd``
floats. A context that never captures can simply be created without ``cb_eval``.
Capture does not change the results: logits are bit-identical with and without it.

Editing
-------
:meth:`ActivationRecorder.set_editor` also lets the callback *change* chosen
``l_out-N`` tensors (activation capping, :mod:`simulacra.llm.capping`): when the
tensor is ready the editor rewrites its rows in place and they are copied back
(``ggml_backend_tensor_set``) before the scheduler computes the rest of the
graph, so every later block reads the edited values. An edited tensor is recorded
as edited. Only tensors in host memory (the CPU backend) are edited; a tensor
on a GPU buffer is refused and aborts the decode.
"""

from __future__ import annotations

import ctypes
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from simulacra.errors import EngineError

__all__ = [
    "ActivationRecorder",
    "MicroBatch",
    "TensorHead",
    "ggml_base",
    "ggml_base_path",
    "layer_tensor_name",
]

GGML_TYPE_F32 = 0
_LIBRARY_NAMES = {
    "linux": ("libggml-base.so",),
    "darwin": ("libggml-base.dylib",),
    "win32": ("ggml-base.dll",),
}
_ANY_LIBRARY = re.compile(r"(lib)?ggml-base(\.so(\.\d+)*|\.dylib|\.dll)$")


def layer_tensor_name(layer: int) -> str:
    """llama.cpp's name for the output of block ``layer`` (``l_out-<layer>``)."""
    return f"l_out-{layer}"


def ggml_base_path() -> Path:
    """The ggml base library shipped inside the installed llama_cpp package.

    Looks in the package's ``lib/`` folder (then the package folder itself) for
    this platform's name (``libggml-base.so``, ``libggml-base.dylib`` or
    ``ggml-base.dll``), then for any versioned variant of it.

    Raises:
        EngineError: if no such library is found.

    """
    root = Path(llama_cpp.__file__).resolve().parent
    preferred = _LIBRARY_NAMES.get(sys.platform, ()) + tuple(
        name for names in _LIBRARY_NAMES.values() for name in names
    )
    for folder in (root / "lib", root):
        for name in preferred:
            if (folder / name).is_file():
                return folder / name
    for candidate in sorted(root.rglob("*ggml-base*")):
        if candidate.is_file() and _ANY_LIBRARY.fullmatch(candidate.name):
            return candidate
    raise EngineError(
        f"the ggml base library (libggml-base) was not found under {root}: hidden-state "
        "capture needs the llama_cpp package's own build of ggml"
    )


@lru_cache(maxsize=1)
def ggml_base() -> ctypes.CDLL:
    """The ggml base library with prototypes for the functions capture needs.

    Declared: ``ggml_get_name``, ``ggml_nelements``, ``ggml_nbytes``,
    ``ggml_n_dims``, ``ggml_backend_tensor_get``, ``ggml_backend_tensor_set`` and
    ``ggml_backend_buffer_is_host``. The library is the one
    llama_cpp already loaded, so the handle shares its state.
    """
    lib = ctypes.CDLL(str(ggml_base_path()))
    tensor = ctypes.c_void_p
    lib.ggml_get_name.argtypes = [tensor]
    lib.ggml_get_name.restype = ctypes.c_char_p
    lib.ggml_nelements.argtypes = [tensor]
    lib.ggml_nelements.restype = ctypes.c_int64
    lib.ggml_nbytes.argtypes = [tensor]
    lib.ggml_nbytes.restype = ctypes.c_size_t
    lib.ggml_n_dims.argtypes = [tensor]
    lib.ggml_n_dims.restype = ctypes.c_int
    lib.ggml_backend_tensor_get.argtypes = [
        tensor,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_size_t,
    ]
    lib.ggml_backend_tensor_get.restype = None
    lib.ggml_backend_tensor_set.argtypes = [
        tensor,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_size_t,
    ]
    lib.ggml_backend_tensor_set.restype = None
    lib.ggml_backend_buffer_is_host.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_buffer_is_host.restype = ctypes.c_bool
    return lib


class TensorHead(ctypes.Structure):
    """The leading fields of ``struct ggml_tensor``: type, buffer, shape and strides.

    Only this prefix of the struct is read; its layout has been stable across
    ggml releases (``GGML_MAX_DIMS = 4``).
    """

    _fields_ = (
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
    )


@dataclass(frozen=True)
class MicroBatch:
    """The activations captured during one graph evaluation (one micro-batch).

    Attributes:
        index: its position among the evaluations since the recorder was cleared.
        activations: float32 ``(n_rows, n_embd)`` per requested layer, rows in the
            micro-batch's token order (the last block: output rows only).

    """

    index: int
    activations: dict[int, np.ndarray]


class ActivationRecorder:
    """Copies the residual stream at chosen layers out of llama.cpp during decoding.

    Install it when a context is created, then choose layers at any time::

        recorder = ActivationRecorder(layers=[10, 12])
        cparams = llama_cpp.llama_context_default_params()
        recorder.install(cparams)
        ctx = llama_cpp.llama_init_from_model(model, cparams)
        llama_cpp.llama_decode(ctx, batch)
        rows = recorder.stacked(10)  # (n_tokens, n_embd), batch order

    The recorder must outlive the context: it keeps the C callback referenced.

    Args:
        layers: 0-based block indices to capture (none: capture nothing).

    """

    def __init__(self, layers: Iterable[int] = ()) -> None:
        self._lib = ggml_base()
        self._get_name = self._lib.ggml_get_name
        self._wanted: dict[bytes, int] = {}
        self._edited: dict[bytes, int] = {}
        self._editor: Callable[[int, np.ndarray], None] | None = None
        self._captures: list[MicroBatch] = []
        self._last_layer = -1
        self._error: str | None = None
        self.set_layers(layers)
        self.callback = llama_cpp.ggml_backend_sched_eval_callback(self._on_eval)

    # ------------------------------------------------------------------ settings
    @property
    def layers(self) -> tuple[int, ...]:
        """The block indices being captured, increasing."""
        return tuple(sorted(self._wanted.values()))

    def set_layers(self, layers: Iterable[int]) -> None:
        """Capture these blocks from the next graph evaluation on (none: capture nothing).

        Raises:
            ValueError: if a layer is not a non-negative integer.

        """
        wanted = {}
        for layer in layers:
            if isinstance(layer, bool) or not isinstance(layer, int | np.integer) or layer < 0:
                raise ValueError(f"layers are 0-based block indices (int >= 0), got {layer!r}")
            wanted[layer_tensor_name(int(layer)).encode()] = int(layer)
        self._wanted = wanted

    @property
    def edited_layers(self) -> tuple[int, ...]:
        """The block indices being edited, increasing."""
        return tuple(sorted(self._edited.values()))

    def set_editor(
        self, layers: Iterable[int], editor: Callable[[int, np.ndarray], None] | None
    ) -> None:
        """Rewrite these blocks' outputs during decoding (no layers or None: stop editing).

        Args:
            layers: 0-based block indices whose ``l_out-N`` the editor rewrites.
            editor: called with (layer, float32 rows ``(n_rows, n_embd)``) once the
                tensor is computed; it changes the rows in place, and they are
                written back before any later node reads them.

        Raises:
            ValueError: if a layer is not a non-negative integer.

        """
        edited = {}
        for layer in layers if editor is not None else ():
            if isinstance(layer, bool) or not isinstance(layer, int | np.integer) or layer < 0:
                raise ValueError(f"layers are 0-based block indices (int >= 0), got {layer!r}")
            edited[layer_tensor_name(int(layer)).encode()] = int(layer)
        self._edited = edited
        self._editor = editor if edited else None

    def install(self, cparams: Any) -> None:
        """Set this recorder as ``cparams.cb_eval`` (a ``llama_context_params``)."""
        cparams.cb_eval = self.callback
        cparams.cb_eval_user_data = None

    # ------------------------------------------------------------------ results
    @property
    def captures(self) -> tuple[MicroBatch, ...]:
        """Every micro-batch captured since the last :meth:`clear`, in evaluation order."""
        self._raise_pending()
        return tuple(self._captures)

    def stacked(self, layer: int) -> np.ndarray:
        """One layer's rows from every captured micro-batch, concatenated in order.

        Args:
            layer: a block index being captured.

        Returns:
            float32 ``(n_rows, n_embd)``; zero rows if nothing was captured yet.

        Raises:
            KeyError: if ``layer`` is not being captured and never was.
            EngineError: if a captured tensor was not what the recorder expected.

        """
        self._raise_pending()
        parts = [mb.activations[layer] for mb in self._captures if layer in mb.activations]
        if parts:
            return np.concatenate(parts)
        if layer not in self.layers:
            raise KeyError(f"layer {layer} is not being captured (layers: {list(self.layers)})")
        return np.zeros((0, 0), dtype=np.float32)

    def take(self) -> dict[int, np.ndarray]:
        """Every captured layer's stacked rows, then :meth:`clear`."""
        self._raise_pending()
        layers = sorted({layer for mb in self._captures for layer in mb.activations})
        result = {layer: self.stacked(layer) for layer in layers}
        self.clear()
        return result

    def clear(self) -> None:
        """Forget everything captured (the layers stay requested)."""
        self._captures = []
        self._last_layer = -1
        self._error = None

    # ------------------------------------------------------------------ callback
    def _raise_pending(self) -> None:
        if self._error is not None:
            message, self._error = self._error, None
            raise EngineError(message)

    def _on_eval(self, tensor: int | None, ask: bool, user_data: int | None) -> bool:
        """The eval callback: want only requested ``l_out-N``; edit, then copy them when ready."""
        if not self._wanted and not self._edited:
            return not ask
        name = self._get_name(tensor)
        layer = self._wanted.get(name)
        edit = self._edited.get(name)
        if ask:
            return layer is not None or edit is not None
        if edit is not None:
            try:
                self._edit(tensor, edit)
            except Exception as exc:  # an exception must not cross into C
                self._error = f"editing {layer_tensor_name(edit)} failed: {exc}"
                return False  # abort the decode rather than go on unedited
        if layer is not None:
            try:
                self._store(tensor, layer)
            except Exception as exc:  # an exception must not cross into C
                self._error = f"activation capture failed at {layer_tensor_name(layer)}: {exc}"
        return True

    def raise_pending(self) -> None:
        """Raise the error a callback recorded since the last call, if any.

        Raises:
            EngineError: naming the tensor that could not be captured or edited.

        """
        self._raise_pending()

    def _rows_of(self, tensor: int | None) -> np.ndarray:
        """A copy of a ready 2-D F32 tensor's rows (checked)."""
        head = TensorHead.from_address(tensor)
        if head.type != GGML_TYPE_F32:
            raise EngineError(f"tensor type {head.type}, expected F32")
        n_embd, n_rows, depth, batches = (int(n) for n in head.ne)
        if depth != 1 or batches != 1:
            raise EngineError(f"tensor shape {[n_embd, n_rows, depth, batches]}, expected 2-D")
        rows = np.empty((n_rows, n_embd), dtype=np.float32)
        if self._lib.ggml_nbytes(tensor) != rows.nbytes or head.nb[1] != 4 * n_embd:
            raise EngineError("tensor is not contiguous")
        self._lib.ggml_backend_tensor_get(tensor, rows.ctypes.data, 0, rows.nbytes)
        return rows

    def _edit(self, tensor: int | None, layer: int) -> None:
        head = TensorHead.from_address(tensor)
        if not head.buffer or not self._lib.ggml_backend_buffer_is_host(head.buffer):
            raise EngineError(
                "the tensor is not in host memory (GPU offload): editing activations "
                "works on the CPU backend only"
            )
        rows = self._rows_of(tensor)
        self._editor(layer, rows)
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self._lib.ggml_backend_tensor_set(tensor, rows.ctypes.data, 0, rows.nbytes)

    def _store(self, tensor: int | None, layer: int) -> None:
        rows = self._rows_of(tensor)
        if not self._captures or layer <= self._last_layer:
            self._captures.append(MicroBatch(len(self._captures), {}))
        self._captures[-1].activations[layer] = rows
        self._last_layer = layer
