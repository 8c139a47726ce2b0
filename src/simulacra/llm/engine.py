"""The inference engine: batched scoring and generation on one llama.cpp model.

:class:`Engine` is the only place in simulacra that touches llama.cpp. It loads a
model, creates its context and tokenizes; the work is done by its parts:

- :mod:`simulacra.llm.pool`: the :class:`~simulacra.llm.pool.SequencePool` of live
  KV-cache sequences, prefix bookkeeping and batched decoding;
- :mod:`simulacra.llm.scoring`: :meth:`Engine.loglik`, :meth:`Engine.choice`,
  :meth:`Engine.choices` and :meth:`Engine.option_logprobs`, by teacher forcing;
- :mod:`simulacra.llm.generation`: :meth:`Engine.generate`, one sampled completion
  per prompt;
- :mod:`simulacra.llm.hidden`: :meth:`Engine.hidden_states` and
  :meth:`Engine.continuation_states`, the residual stream read in the same decode;
- :mod:`simulacra.llm.control`: :meth:`Engine.steering` and :meth:`Engine.capping`,
  context managers under which every decode runs steered or capped, cached apart.

A prompt is a list of segments tokenized separately, so a dialogue history that
grows by one message extends its previous tokens exactly, and the pool decodes only
what no live sequence already holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import numpy as np

from simulacra.errors import EngineError, ModelLoadError
from simulacra.llm.activations import ActivationRecorder
from simulacra.llm.backend import cpu_has_amx, default_threads, init_backend
from simulacra.llm.chat import ChatFormat, Prompt, chat_format
from simulacra.llm.control import Control
from simulacra.llm.generation import Generation
from simulacra.llm.hidden import HiddenStates
from simulacra.llm.models import ResolvedModel, resolve_model
from simulacra.llm.pool import UBATCH, EngineStats, SequencePool
from simulacra.llm.scoring import Scoring

__all__ = ["Engine", "EngineStats", "Prompt", "cpu_has_amx", "default_threads"]


class Engine(Scoring, Generation, HiddenStates, Control):
    """One llama.cpp model and context with a pool of cached sequences.

    Create it with :meth:`Engine.load`. An engine is not thread-safe; use one per
    process (sweeps give each worker its own).
    """

    def __init__(
        self,
        resolved: ResolvedModel,
        *,
        n_ctx: int,
        n_threads: int,
        n_seq_max: int,
        n_batch: int,
        seed: int,
        flash_attn: bool,
        kv_f32: bool,
        kv_streams: bool,
        n_gpu_layers: int = 0,
        hooks: bool = True,
    ) -> None:
        init_backend()
        self.model_info = resolved
        self.seed = seed
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers
        self.flash_attn = flash_attn
        self.kv_f32 = kv_f32
        self.stats = EngineStats()
        self._model = None
        self._ctx = None
        self._pool: SequencePool | None = None
        self._steer = None
        self._cap = None
        self._recorder: ActivationRecorder | None = None

        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        if cpu_has_amx():
            # A natively built llama.cpp routes quantized matmuls to AMX kernels that
            # segfault on the first decode (llama.cpp #20824); the plain CPU path is safe.
            mparams.use_extra_bufts = False
        self._model = llama_cpp.llama_model_load_from_file(os.fsencode(resolved.path), mparams)
        if not self._model:
            raise ModelLoadError(
                f"llama.cpp could not load {resolved.path}: the file is corrupt, truncated "
                "or of an unsupported architecture"
            )
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(self._model)
        self.n_layer = llama_cpp.llama_model_n_layer(self._model)
        self.n_embd = llama_cpp.llama_model_n_embd(self._model)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._bos = llama_cpp.llama_vocab_bos(self._vocab)

        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        # One more token than asked for: room for a lone token's companion (_decode).
        cparams.n_batch = n_batch + 1
        cparams.n_ubatch = min(n_batch, UBATCH)
        cparams.n_seq_max = n_seq_max
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        cparams.kv_unified = not kv_streams
        cparams.no_perf = True
        # f16 keys and values are the fast path of the CPU flash-attention kernel; f32
        # is 10-30x slower there once the cache holds thousands of cells.
        if kv_f32:
            cparams.type_k = cparams.type_v = llama_cpp.GGML_TYPE_F32
        cparams.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        if hooks:
            # Idle until a hidden-state read or capping asks for a block (results unchanged).
            self._recorder = ActivationRecorder()
            self._recorder.install(cparams)
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise ModelLoadError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self.kv_streams = kv_streams
        # The longest sequence the cache can hold: all of it, or one stream's share.
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(self._ctx)
        self.n_batch = n_batch
        self.n_seq_max = n_seq_max
        self._pool = SequencePool(
            self._ctx,
            n_seq_max=n_seq_max,
            n_batch=n_batch,
            n_ctx=self.n_ctx,
            n_ctx_seq=self.n_ctx_seq,
            n_vocab=self.n_vocab,
            kv_streams=kv_streams,
            stats=self.stats,
        )
        self._token_cache: dict[str, np.ndarray] = {}
        fmt = resolved.chat_format
        if fmt == "auto":
            template = self.metadata("tokenizer.chat_template") or ""
            fmt = "chatml" if "<|im_start|>" in template else "plain"
        self.chat: ChatFormat = chat_format(fmt)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def load(
        cls,
        model: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        seed: int = 0,
        n_seq_max: int = 128,
        n_batch: int = 512,
        flash_attn: bool = True,
        kv_f32: bool = False,
        kv_streams: bool = False,
        n_gpu_layers: int = 0,
        hooks: bool = True,
    ) -> Engine:
        """Load a model and create its context.

        Args:
            model: a registry name, a GGUF path, or None for the embedded default.
            n_ctx: KV-cache cells shared by all live sequences (padded to 256).
            n_threads: CPU threads; None uses every core this process may run on.
            seed: the default seed of :meth:`generate`.
            n_seq_max: the most sequences kept alive at once (at most 256).
            n_batch: the most tokens per ``llama_decode`` call.
            flash_attn: use flash attention, which skips masked cache cells.
            kv_f32: keep keys and values in f32 rather than f16 (much slower).
            kv_streams: give every sequence its own KV stream of ``n_ctx // n_seq_max``
                cells instead of one cache shared by all. llama.cpp's CPU attention
                reads every cell of the cache for every token, so in a shared cache a
                token's cost grows with what the *other* sequences hold; with streams
                it grows only with its own sequence. Suits a fixed set of long prompts
                (K personas along a dialogue); a fork copies a whole stream, so
                fork-heavy work (many probes on short prompts) is better shared.
            n_gpu_layers: layers offloaded to the GPU (-1: all of them). Needs a GPU
                build of llama-cpp-python; a CPU build ignores it. Offloading
                changes the floating-point results, so it is part of :attr:`config`.
            hooks: install llama.cpp's eval callback, which :meth:`hidden_states`,
                :meth:`continuation_states` and :meth:`capping` need. Idle, it asks for
                no tensor and changes no result; it costs one call into Python per
                graph node of each decode (``benchmarks/vectors.py`` measures it).

        Returns:
            The engine.

        Raises:
            ModelNotFoundError: unknown model name, missing package or file.
            ModelLoadError: corrupt file, or a context that cannot be created.
            ValueError: settings out of range.

        """
        if n_ctx < 16:
            raise ValueError(f"n_ctx must be >= 16, got {n_ctx}")
        if not 1 <= n_seq_max <= 256:
            raise ValueError(f"n_seq_max must be in [1, 256], got {n_seq_max}")
        if kv_streams and n_ctx // n_seq_max < 16:
            raise ValueError(
                f"kv_streams gives each of {n_seq_max} sequences n_ctx // n_seq_max = "
                f"{n_ctx // n_seq_max} cells; raise n_ctx or lower n_seq_max"
            )
        if n_batch < 1:
            raise ValueError(f"n_batch must be >= 1, got {n_batch}")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if n_gpu_layers < -1:
            raise ValueError(f"n_gpu_layers must be >= -1 (-1: all layers), got {n_gpu_layers}")
        resolved = resolve_model(model)
        return cls(
            resolved,
            n_ctx=n_ctx,
            n_threads=n_threads or default_threads(),
            n_seq_max=n_seq_max,
            n_batch=n_batch,
            seed=seed,
            flash_attn=flash_attn,
            kv_f32=kv_f32,
            kv_streams=kv_streams,
            n_gpu_layers=n_gpu_layers,
            hooks=hooks,
        )

    @property
    def config(self) -> dict[str, object]:
        """The settings that change this engine's numbers, for a run's manifest.

        The model file (name, path, sha256) and every setting under which
        llama.cpp's floating-point results differ: context size, threads, GPU
        offload, batch sizes, attention and cache types.
        """
        return {
            "name": self.model_info.name,
            "path": str(self.model_info.path),
            "sha256": self.model_info.sha256,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "n_gpu_layers": self.n_gpu_layers,
            "n_batch": self.n_batch,
            "n_ubatch": min(self.n_batch, UBATCH),
            "flash_attn": self.flash_attn,
            "kv_f32": self.kv_f32,
            "kv_streams": self.kv_streams,
        }

    def close(self) -> None:
        """Free the context and the model. The engine is unusable afterwards."""
        if self._pool is not None:
            self._pool.close()
        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    def __repr__(self) -> str:
        return (
            f"Engine(model={self.model_info.name!r}, n_ctx={getattr(self, 'n_ctx', None)}, "
            f"n_threads={self.n_threads})"
        )

    def reset(self) -> None:
        """Forget every cached sequence, so that the next calls start from a clean cache.

        Results depend very slightly on which tokens share a batch; a run that starts
        with ``reset()`` is therefore reproducible whatever the engine did before.
        """
        self._require_open()
        self._pool.reset()

    def recomputing_quietly(self) -> contextlib.AbstractContextManager[None]:
        """Within this block, evicting and recomputing prompts raises no warning.

        The warning advises scenario authors. A caller that batches many prompts on
        purpose (:func:`simulacra.instruments.ask`, the batteries) expects the cache
        to turn over; the evictions still count in :attr:`stats`.
        """
        return self._pool.recomputing_quietly()

    @property
    def pool(self) -> SequencePool:
        """The pool of cached sequences (for benchmarks and tests of the cache)."""
        return self._pool

    @property
    def sha256(self) -> str:
        """The sha256 of the loaded GGUF file."""
        return self.model_info.sha256

    @property
    def model_path(self) -> Path:
        """The loaded GGUF file."""
        return self.model_info.path

    def metadata(self, key: str) -> str | None:
        """A GGUF metadata value of the loaded model, as text.

        Args:
            key: the metadata key, e.g. ``"general.architecture"``.

        Returns:
            The value, or None if the model has no such key.

        """
        buf = ctypes.create_string_buffer(1 << 16)
        n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace") if n >= 0 else None

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text: str) -> np.ndarray:
        """Tokenize one segment (special tokens such as ``<|im_start|>`` are parsed).

        Args:
            text: the segment.

        Returns:
            Its token ids, without BOS.

        """
        cached = self._token_cache.get(text)
        if cached is not None:
            return cached
        self._require_open()
        raw = text.encode("utf-8")
        capacity = len(raw) + 16
        buf = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), buf, capacity, False, True)
        if n < 0:  # pragma: no cover - capacity is always enough for byte-level vocabularies
            capacity = -n
            buf = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self._vocab, raw, len(raw), buf, capacity, False, True)
        tokens = np.frombuffer(buf, dtype=np.int32, count=n).copy()
        if len(self._token_cache) > 100_000:
            self._token_cache.clear()
        self._token_cache[text] = tokens
        return tokens

    def prompt_tokens(self, prompt: Prompt) -> np.ndarray:
        """The tokens of a prompt: BOS if the model wants one, then each segment's tokens.

        Args:
            prompt: a string or a sequence of segments.

        Returns:
            The token ids.

        """
        segments = [prompt] if isinstance(prompt, str) else list(prompt)
        parts = [self.tokenize(s) for s in segments if s]
        if self._add_bos:
            parts.insert(0, np.array([self._bos], dtype=np.int32))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)

    def count_tokens(self, text: str) -> int:
        """The number of tokens of a segment."""
        return len(self.tokenize(text))

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Render tokens as text (special tokens omitted)."""
        return self._detokenize_bytes(tokens).decode("utf-8", errors="replace")

    def _detokenize_bytes(self, tokens: Sequence[int]) -> bytes:
        buf = ctypes.create_string_buffer(256)
        out = bytearray()
        for token in tokens:
            n = llama_cpp.llama_token_to_piece(self._vocab, int(token), buf, len(buf), 0, False)
            out += buf.raw[: max(n, 0)]
        return bytes(out)

    def _require_open(self) -> None:
        if not self._ctx:
            raise EngineError("the engine is closed")
