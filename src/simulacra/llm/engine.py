"""The inference engine: batched scoring and generation on one llama.cpp model.

:class:`Engine` is the only place in simulacra that touches llama.cpp. It offers
three operations, all batched:

- :meth:`Engine.loglik`: the log-probability of one continuation after each of K
  prompts, by teacher forcing;
- :meth:`Engine.choice`: a forced choice between options, by softmax over their
  summed log-probabilities (:meth:`Engine.option_logprobs` returns the sums, and
  reads options of one token each at a single position);
- :meth:`Engine.generate`: one sampled completion per prompt.

Its core is a pool of live sequences in one unified KV cache. A prompt is a list of
segments tokenized separately, so a dialogue history that grows by one message
extends its previous tokens exactly. Before decoding, every request finds the live
sequence sharing its longest token prefix and decodes only the new tokens; the
requests of one call go into the same ``llama_decode`` batches. When the pool or
the cache is full, the least recently used sequences are evicted.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
import numpy as np

from simulacra.errors import EngineError, ModelLoadError, warn
from simulacra.llm.chat import ChatFormat, chat_format
from simulacra.llm.models import ResolvedModel, resolve_model

__all__ = ["Engine", "EngineStats", "Prompt", "cpu_has_amx", "default_threads"]

Prompt = str | Sequence[str]
"""A prompt: one string, or a list of segments tokenized separately and concatenated."""

logger = logging.getLogger("simulacra.llama")
logger.setLevel(logging.ERROR)  # llama.cpp is chatty; lower this level to see its log

# ggml's levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous line.
_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_last_log_level = logging.DEBUG
# Micro-batches below 64 tokens keep the CPU flash-attention kernel on its row-by-row
# path, whose result for a token does not depend on what else shares the batch.
_UBATCH = 63
# A request waits for another of the same call when that saves this many tokens.
_SHARE_MIN = 8
# Logits normalised together: a 3 MB float32 scratch block (16 rows of a 49k vocabulary).
_SOFTMAX_CELLS = 3 << 18
# Why the least recently used sequences are evicted (see Engine._warn_eviction).
_POOL_FULL = "pool"
_CACHE_FULL = "cache"
_backend_lock = threading.Lock()
_backend_ready = False


@llama_cpp.llama_log_callback
def _route_llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """Send llama.cpp's log lines to the ``simulacra.llama`` logger (silent by default)."""
    global _last_log_level
    log_level = _LOG_LEVELS.get(level, _last_log_level)
    _last_log_level = log_level
    if logger.isEnabledFor(log_level):
        logger.log(log_level, text.decode("utf-8", errors="replace").rstrip())


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            llama_cpp.llama_log_set(_route_llama_log, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _backend_ready = True


def cpu_has_amx() -> bool:
    """Whether this CPU advertises AMX (whose llama.cpp kernels crash on quantized models)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    return "AMX_INT8 = 1" in info


def default_threads() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _log_softmax_at(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Log-probability of ``targets[i]`` under the logits ``rows[i]``.

    Works through the rows in small blocks with one scratch buffer: a batch of
    logits over a large vocabulary spans tens of megabytes, and temporaries that
    size are fresh memory mappings whose page faults cost more than the arithmetic.
    """
    size = max(1, _SOFTMAX_CELLS // rows.shape[1])
    out = np.empty(len(rows))
    scratch = np.empty((min(size, len(rows)), rows.shape[1]), dtype=np.float32)
    for start in range(0, len(rows), size):
        block = rows[start : start + size]
        work = scratch[: len(block)]
        peak = block.max(axis=1)
        np.subtract(block, peak[:, None], out=work)
        np.exp(work, out=work)
        lse = peak + np.log(work.sum(axis=1))
        picked = block[np.arange(len(block)), targets[start : start + size]]
        out[start : start + len(block)] = picked.astype(np.float64) - lse
    return out


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differs = a[:n] != b[:n]
    return int(differs.argmax()) if differs.any() else n


@dataclass
class EngineStats:
    """Counters of the work an engine has done.

    Attributes:
        decode_calls: number of ``llama_decode`` calls.
        tokens_decoded: tokens sent through the model.
        tokens_reused: prompt tokens served from the KV cache instead.
        tokens_scored: continuation tokens whose log-probability was returned.
        tokens_generated: tokens sampled.
        decode_seconds: wall time spent inside ``llama_decode`` and reading logits.
        evictions: sequences evicted from the pool.

    """

    decode_calls: int = 0
    tokens_decoded: int = 0
    tokens_reused: int = 0
    tokens_scored: int = 0
    tokens_generated: int = 0
    decode_seconds: float = 0.0
    evictions: int = 0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return dict(self.__dict__)


@dataclass
class _Sequence:
    """A live sequence of the pool: the tokens its KV cells hold."""

    seq_id: int
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    last_used: int = 0


@dataclass
class _Request:
    """One prompt (+ continuation) to bring into a sequence and decode."""

    tokens: np.ndarray  # prompt followed by continuation
    n_prompt: int
    want_last: bool = False  # generation: keep the logits row of the last prompt token
    seq: _Sequence | None = None
    n_keep: int = 0

    @property
    def n_cached(self) -> int:
        """How many leading tokens the request leaves in its sequence's cache.

        Scoring never needs the last continuation token's logits, so that token is
        not decoded: a later prompt that extends this one decodes it with its own
        new tokens, and one that diverges earlier never pays for it.
        """
        return len(self.tokens) if self.want_last else len(self.tokens) - 1


class Engine:
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
    ) -> None:
        _init_backend()
        self.model_info = resolved
        self.seed = seed
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers
        self.flash_attn = flash_attn
        self.kv_f32 = kv_f32
        self.stats = EngineStats()
        self._model = None
        self._ctx = None
        self._batch = None

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
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._bos = llama_cpp.llama_vocab_bos(self._vocab)

        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        # One more token than asked for: room for a lone token's companion (_decode).
        cparams.n_batch = n_batch + 1
        cparams.n_ubatch = min(n_batch, _UBATCH)
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
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise ModelLoadError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self.kv_streams = kv_streams
        # The longest sequence the cache can hold: all of it, or one stream's share.
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(self._ctx)
        self.n_batch = n_batch
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._n_ubatch = min(n_batch, _UBATCH)
        self._batch = llama_cpp.llama_batch_init(n_batch + 1, 0, 1)
        self._batch_token = np.ctypeslib.as_array(self._batch.token, shape=(n_batch + 1,))
        self._batch_pos = np.ctypeslib.as_array(self._batch.pos, shape=(n_batch + 1,))
        self._batch_logits = np.ctypeslib.as_array(self._batch.logits, shape=(n_batch + 1,))
        self._batch_nseq = np.ctypeslib.as_array(self._batch.n_seq_id, shape=(n_batch + 1,))
        self._batch_nseq[:] = 1

        self.n_seq_max = n_seq_max
        self._pool = [_Sequence(seq_id) for seq_id in range(n_seq_max)]
        self._clock = 0
        self._warned_eviction = False
        self._token_cache: dict[str, np.ndarray] = {}
        fmt = resolved.chat_format
        if fmt == "auto":
            template = self._metadata("tokenizer.chat_template") or ""
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
            "n_ubatch": min(self.n_batch, _UBATCH),
            "flash_attn": self.flash_attn,
            "kv_f32": self.kv_f32,
            "kv_streams": self.kv_streams,
        }

    def close(self) -> None:
        """Free the context and the model. The engine is unusable afterwards."""
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
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
        llama_cpp.llama_memory_clear(self._memory, True)
        for seq in self._pool:
            seq.tokens = np.zeros(0, dtype=np.int32)
            seq.last_used = 0
        self._clock = 0

    @contextlib.contextmanager
    def recomputing_quietly(self) -> Iterator[None]:
        """Within this block, evicting and recomputing prompts raises no warning.

        The warning advises scenario authors. A caller that batches many prompts on
        purpose (:func:`simulacra.instruments.ask`, the batteries) expects the cache
        to turn over; the evictions still count in :attr:`stats`.
        """
        warned = self._warned_eviction
        self._warned_eviction = True
        try:
            yield
        finally:
            self._warned_eviction = warned

    @property
    def sha256(self) -> str:
        """The sha256 of the loaded GGUF file."""
        return self.model_info.sha256

    @property
    def model_path(self) -> Path:
        """The loaded GGUF file."""
        return self.model_info.path

    # ------------------------------------------------------------------ tokens
    def _metadata(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace") if n >= 0 else None

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

    # ------------------------------------------------------------------ scoring
    def loglik(
        self, prompts: Sequence[Prompt], continuation: str, *, per_token: bool = False
    ) -> np.ndarray:
        """Log-probability of ``continuation`` after each prompt, by teacher forcing.

        Args:
            prompts: K prompts (strings or segment lists).
            continuation: the text to score; tokenized on its own.
            per_token: return the (K, T) per-token log-probabilities instead of sums.

        Returns:
            A (K,) array of total log-probabilities in nats, or (K, T) with ``per_token``.

        Raises:
            ValueError: no prompts, an empty continuation, or a prompt + continuation
                longer than the context.

        """
        if isinstance(prompts, str) or len(prompts) == 0:
            raise ValueError("loglik needs a non-empty sequence of prompts")
        cont = self.tokenize(continuation)
        if len(cont) == 0:
            raise ValueError("loglik needs a non-empty continuation")
        requests = [self._scoring_request(self.prompt_tokens(p), cont) for p in prompts]
        rows = self._run(requests)
        matrix = np.stack(rows)
        return matrix if per_token else matrix.sum(axis=1)

    def choice(self, prompt: Prompt, options: Sequence[str]) -> np.ndarray:
        """Probability of each option after ``prompt``: softmax of summed log-probabilities.

        Args:
            prompt: the question, as a string or segments.
            options: at least two non-empty option texts, each tokenized on its own.

        Returns:
            Probabilities in the order of ``options``; they sum to 1.

        Raises:
            ValueError: fewer than two options, or an empty one.
        """
        return self.choices([(prompt, options)])[0]

    def choices(self, questions: Sequence[tuple[Prompt, Sequence[str]]]) -> list[np.ndarray]:
        """Several forced choices decoded together; see :meth:`choice`.

        Args:
            questions: (prompt, options) pairs.

        Returns:
            One probability vector per question.
        """
        requests: list[_Request] = []
        sizes = []
        for prompt, options in questions:
            if isinstance(options, str) or len(options) < 2:
                raise ValueError("choice needs at least two options")
            prompt_tokens = self.prompt_tokens(prompt)
            for option in options:
                tokens = self.tokenize(option)
                if len(tokens) == 0:
                    raise ValueError(f"choice option {option!r} is empty")
                requests.append(self._scoring_request(prompt_tokens, tokens))
            sizes.append(len(options))
        totals = np.array([row.sum() for row in self._run(requests)])
        out = []
        for start, size in zip(np.cumsum([0, *sizes[:-1]]), sizes, strict=True):
            part = totals[start : start + size]
            weights = np.exp(part - part.max())
            out.append(weights / weights.sum())
        return out

    def option_logprobs(
        self, questions: Sequence[tuple[Prompt, Sequence[str]]]
    ) -> list[np.ndarray]:
        """The summed log-probability of each option after its prompt, all decoded together.

        Options of one token are read from the logits at the prompt's last position,
        so a question whose options are all single tokens costs one decode of its
        prompt however many options it has (a Likert scale "1".."7"). Longer options
        are scored by teacher forcing, as in :meth:`loglik`. Softmax over one
        question's values gives :meth:`choice`'s probabilities.

        Args:
            questions: (prompt, options) pairs; every option is a non-empty text,
                tokenized on its own.

        Returns:
            Per question, its options' log-probabilities in nats, in option order.

        Raises:
            ValueError: a question without options, an empty option or prompt, or a
                prompt + option longer than the context.
        """
        requests: list[_Request] = []
        # What each request answers: (question, option indices, their single tokens);
        # a scored (multi-token) option has one index and no tokens.
        answers: list[tuple[int, list[int], np.ndarray | None]] = []
        out = []
        for q, (prompt, options) in enumerate(questions):
            if isinstance(options, str) or len(options) == 0:
                raise ValueError("option_logprobs needs at least one option per question")
            prompt_tokens = self.prompt_tokens(prompt)
            singles: list[tuple[int, int]] = []
            for k, option in enumerate(options):
                tokens = self.tokenize(option)
                if len(tokens) == 0:
                    raise ValueError(f"option {option!r} is empty")
                if len(tokens) == 1:
                    singles.append((k, int(tokens[0])))
                else:
                    requests.append(self._scoring_request(prompt_tokens, tokens))
                    answers.append((q, [k], None))
            if singles:
                # Checks the prompt's length and emptiness like any scoring request.
                read = self._scoring_request(prompt_tokens, np.array([singles[0][1]]))
                requests.append(_Request(read.tokens[:-1], read.n_prompt, want_last=True))
                targets = np.array([token for _, token in singles], dtype=np.int64)
                answers.append((q, [k for k, _ in singles], targets))
            out.append(np.zeros(len(options)))

        def read_row(i: int, row: int) -> None:
            q, slots, targets = answers[i]
            logits = np.ctypeslib.as_array(
                llama_cpp.llama_get_logits_ith(self._ctx, row), shape=(self.n_vocab,)
            ).astype(np.float64)
            peak = logits.max()
            lse = peak + np.log(np.exp(logits - peak).sum())
            out[q][slots] = logits[targets] - lse
            self.stats.tokens_scored += len(slots)

        for i, row in enumerate(self._run(requests, on_last_row=read_row)):
            q, slots, targets = answers[i]
            if targets is None:
                out[q][slots[0]] = row.sum()
        return out

    def _scoring_request(self, prompt: np.ndarray, continuation: np.ndarray) -> _Request:
        if len(prompt) == 0:
            raise ValueError("a prompt is empty: scoring needs at least one prompt token")
        total = len(prompt) + len(continuation)
        if total > self.n_ctx_seq:
            raise ValueError(
                f"prompt ({len(prompt)} tokens) + continuation ({len(continuation)} tokens) "
                f"is longer than the context of {self.n_ctx_seq} tokens"
            )
        return _Request(np.concatenate([prompt, continuation]), len(prompt))

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_tokens: int = 64,
        temperature: float = 0.8,
        top_p: float = 0.95,
        stop: Sequence[str] = (),
        seed: int | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        """Sample one completion per prompt, decoding all prompts together.

        Prompt ``i`` gets its own sampler chain seeded from ``(seed, i)``, or from
        ``seeds[i]`` alone when ``seeds`` is given, so a completion does not depend
        on how many other prompts share the call (with ``seeds``, nor on its place).

        Args:
            prompts: the prompts.
            max_tokens: the most tokens per completion.
            temperature: sampling temperature; 0 is greedy.
            top_p: nucleus sampling mass.
            stop: strings that end a completion (not included in it).
            seed: the sampling seed; None uses the engine's seed.
            seeds: one non-negative sampling seed per prompt, used instead of
                ``(seed, i)``.

        Returns:
            The completions, in prompt order.

        Raises:
            ValueError: no prompts, bad sampling settings, seeds that do not match
                the prompts, or a prompt too long.

        """
        if isinstance(prompts, str) or len(prompts) == 0:
            raise ValueError("generate needs a non-empty sequence of prompts")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        seed = self.seed if seed is None else seed
        if seeds is None:
            entropies: list[int | list[int]] = [[seed, i] for i in range(len(prompts))]
        else:
            if len(seeds) != len(prompts):
                raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts: give one each")
            if any(int(s) < 0 for s in seeds):
                raise ValueError("seeds must be non-negative integers")
            entropies = [int(s) for s in seeds]
        requests = []
        for prompt in prompts:
            tokens = self.prompt_tokens(prompt)
            if len(tokens) == 0:
                raise ValueError("a prompt is empty: generation needs at least one token")
            if len(tokens) + max_tokens > self.n_ctx_seq:
                raise ValueError(
                    f"prompt ({len(tokens)} tokens) + max_tokens ({max_tokens}) is longer "
                    f"than the context of {self.n_ctx_seq} tokens"
                )
            requests.append(_Request(tokens, len(tokens), want_last=True))
        samplers = [self._sampler(temperature, top_p, entropy) for entropy in entropies]
        try:
            return self._generate(requests, samplers, max_tokens, tuple(stop))
        finally:
            for sampler in samplers:
                llama_cpp.llama_sampler_free(sampler)

    def _sampler(self, temperature: float, top_p: float, entropy: int | list[int]) -> object:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if temperature == 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        state = np.random.SeedSequence(entropy).generate_state(1)[0]
        if top_p < 1:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(top_p, 1))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(temperature))
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(int(state)))
        return chain

    def _generate(
        self,
        requests: list[_Request],
        samplers: list[object],
        max_tokens: int,
        stop: tuple[str, ...],
    ) -> list[str]:
        n = len(requests)
        generated: list[list[int]] = [[] for _ in range(n)]
        texts: list[str | None] = [None] * n
        next_token: dict[int, int] = {}

        def take(i: int, row: int) -> None:
            next_token[i] = self._sample(samplers[i], row)

        # Prefill every prompt, sampling each first token right after its decode.
        self._run(requests, on_last_row=take, hold=True)
        pinned = {r.seq.seq_id for r in requests if r.seq is not None}
        active = list(range(n))
        while active:
            still = []
            for i in active:
                token = next_token[i]
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    texts[i] = self._finish(generated[i], stop)
                    continue
                generated[i].append(token)
                self.stats.tokens_generated += 1
                text = self._detokenize_bytes(generated[i]).decode("utf-8", errors="ignore")
                if any(s in text for s in stop) or len(generated[i]) >= max_tokens:
                    texts[i] = self._finish(generated[i], stop)
                    continue
                still.append(i)
            active = still
            if active:
                rows = self._decode_step([(requests[i].seq, next_token[i]) for i in active], pinned)
                for i, row in zip(active, rows, strict=True):
                    take(i, row)
        return [t if t is not None else "" for t in texts]

    def _finish(self, tokens: list[int], stop: tuple[str, ...]) -> str:
        text = self.detokenize(tokens)
        cut = min((text.find(s) for s in stop if s in text), default=-1)
        return text[:cut] if cut >= 0 else text

    def _sample(self, sampler: object, row: int) -> int:
        return int(llama_cpp.llama_sampler_sample(sampler, self._ctx, row))

    def _decode_step(self, items: list[tuple[_Sequence, int]], pinned: set[int]) -> list[int]:
        """Append one token to each sequence in one decode; return their batch rows."""
        self._fill_batch([(seq.seq_id, len(seq.tokens), token, True) for seq, token in items])
        self._decode(len(items), pinned)
        for seq, token in items:
            seq.tokens = np.append(seq.tokens, np.int32(token))
            seq.last_used = self._tick()
        self.stats.tokens_decoded += len(items)
        return list(range(len(items)))

    # ------------------------------------------------------------------ the pool
    def _require_open(self) -> None:
        if not self._ctx:
            raise EngineError("the engine is closed")

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _evict(self, seq: _Sequence) -> None:
        llama_cpp.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
        seq.tokens = np.zeros(0, dtype=np.int32)
        seq.last_used = 0
        self.stats.evictions += 1

    def _warn_eviction(self, why: str) -> None:
        if self._warned_eviction:
            return
        self._warned_eviction = True
        if why == _CACHE_FULL:
            advice = (
                f"the model's context cache ({self.n_ctx} tokens) is full, so the least "
                "recently used prompts are dropped and recomputed when needed. To avoid it, "
                "raise n_ctx in the scenario's [model] table (e.g. --set model.n_ctx="
                f"{2 * self.n_ctx}) or shorten the dialogue (dialogue.turns, dialogue.max_tokens)."
            )
        else:
            advice = (
                f"more prompts are in play at once than the model's cache keeps "
                f"({len(self._pool)}: one per agent and simulacrum it may speak as, plus "
                "probes), so the least recently used are recomputed when needed. To avoid "
                "it, give the agents fewer simulacra (agents[].prior) or use fewer agents."
            )
        warn(f"{advice} This is slower, but the results do not change. (Shown once.)")

    def _evict_lru(self, pinned: set[int], why: str) -> bool:
        candidates = [s for s in self._pool if s.seq_id not in pinned and len(s.tokens) > 0]
        if not candidates:
            return False
        self._warn_eviction(why)
        self._evict(min(candidates, key=lambda s: s.last_used))
        return True

    def _next_wave(self, pending: list[_Request]) -> list[_Request]:
        """Pending requests to decode together now.

        A request that shares a longer prefix with a request already in this wave
        than with any cached sequence waits for the next wave, where it can fork
        that request's sequence instead of decoding the shared prefix again.
        The wave also fits the pool and the cache.
        """
        wave: list[_Request] = []
        cells = 0
        for request in pending:
            size = len(request.tokens)
            if wave and (len(wave) >= len(self._pool) or cells + size > self.n_ctx):
                break
            cached = self._longest_prefix(request.tokens)[1]
            waiting = max((_common_prefix(r.tokens, request.tokens) for r in wave), default=0)
            if waiting > cached + _SHARE_MIN:
                continue
            wave.append(request)
            cells += size
        return wave

    def _assign(self, group: list[_Request], protected: set[int]) -> int:
        """Give requests a sequence holding their longest cached prefix, in order.

        A request that extends a sequence takes it over. One that shares only part
        of a sequence forks it into a free slot (metadata only in a unified cache),
        so the source stays cached for its own next turn; when no slot is free, the
        least recently used sequence is evicted, or truncated if it is the source.
        With KV streams, where a fork copies a whole stream, the source is truncated
        in place unless this group needs it. Forks are made before any truncation.

        Args:
            group: the requests.
            protected: sequences earlier waves of the same call still need.

        Returns:
            How many requests, from the start of ``group``, got a sequence; the
            others must wait for the next group.
        """
        pinned: set[int] = set(protected)
        forks: list[tuple[_Sequence, _Sequence, int]] = []
        assigned = 0
        for request in group:
            limit = len(request.tokens) - 1 if request.want_last else request.n_prompt - 1
            best, common = self._longest_prefix(request.tokens)
            keep = min(common, limit)
            if (
                best is not None
                and best.seq_id not in pinned
                and (keep == len(best.tokens) or self.kv_streams)
            ):
                # A pure extension decodes only the new tokens. With streams a fork
                # copies a whole stream, so a diverging request truncates in place.
                target = best
            else:
                target = self._free_slot(pinned | ({best.seq_id} if best else set()))
                if target is None:
                    if best is None or best.seq_id in pinned:
                        break  # every slot serves this group already
                    target = best  # truncate the source in place
                elif len(target.tokens):
                    self._evict(target)
                if best is not None and target is not best and keep > 0:
                    forks.append((best, target, keep))
                    pinned.add(best.seq_id)
                elif best is None or target is not best:
                    keep = 0
            request.seq, request.n_keep = target, keep
            pinned.add(target.seq_id)
            assigned += 1
        for source, target, keep in forks:
            if self.kv_streams:
                # Across streams llama.cpp copies whole buffers; drop the tail after.
                llama_cpp.llama_memory_seq_cp(self._memory, source.seq_id, target.seq_id, -1, -1)
                llama_cpp.llama_memory_seq_rm(self._memory, target.seq_id, keep, -1)
            else:
                llama_cpp.llama_memory_seq_cp(self._memory, source.seq_id, target.seq_id, 0, keep)
            target.tokens = source.tokens[:keep].copy()
        for request in group[:assigned]:
            seq = request.seq
            if len(seq.tokens) > request.n_keep:
                llama_cpp.llama_memory_seq_rm(self._memory, seq.seq_id, request.n_keep, -1)
                seq.tokens = seq.tokens[: request.n_keep].copy()
            seq.last_used = self._tick()
        return assigned

    def _longest_prefix(self, tokens: np.ndarray) -> tuple[_Sequence | None, int]:
        best, best_len = None, 0
        for seq in self._pool:
            if len(seq.tokens):
                common = _common_prefix(seq.tokens, tokens)
                if common > best_len:
                    best, best_len = seq, common
        return best, best_len

    def _free_slot(self, pinned: set[int]) -> _Sequence | None:
        """An empty slot, else the least recently used unpinned sequence, else None."""
        for seq in self._pool:
            if len(seq.tokens) == 0 and seq.seq_id not in pinned:
                return seq
        unpinned = [s for s in self._pool if s.seq_id not in pinned]
        if not unpinned:
            return None
        self._warn_eviction(_POOL_FULL)
        return min(unpinned, key=lambda s: s.last_used)

    def _run(
        self,
        requests: list[_Request],
        on_last_row: Callable[[int, int], None] | None = None,
        *,
        hold: bool = False,
    ) -> list[np.ndarray]:
        """Bring requests into the cache, decode their new tokens, score continuations.

        Args:
            requests: scoring requests and/or prompts whose last logits row is wanted
                (``want_last``: generation prefills, next-token reads).
            on_last_row: for ``want_last`` requests, called with (request index, batch
                row) right after the decode that holds the request's last prompt token,
                while its logits are still available.
            hold: keep every request's sequence in the pool until the call ends
                (generation decodes each prompt again after the prefill).

        Returns:
            Per request, the log-probabilities of its continuation tokens.

        """
        self._require_open()
        results: list[np.ndarray | None] = [None] * len(requests)
        index = {id(r): i for i, r in enumerate(requests)}
        pending = list(requests)
        protected: set[int] = set()
        while pending:
            wave = self._next_wave(pending)
            group = wave[: self._assign(wave, protected if hold else set())]
            if not group:
                raise EngineError(
                    f"{len(requests)} generation prompts do not fit a pool of {len(self._pool)} "
                    "sequences; raise n_seq_max or generate in smaller batches"
                )
            done = {id(r) for r in group}
            pending = [r for r in pending if id(r) not in done]
            pinned = {r.seq.seq_id for r in group}
            if hold:
                # Generation decodes every prompt again after the prefill: keep them all.
                protected |= pinned
            pinned |= protected
            # Items: (request index, position, token, output row wanted).
            items: list[tuple[int, int, int, bool]] = []
            for request in group:
                i = index[id(request)]
                # Rows wanted: the last prompt token (generation), or every position
                # that predicts a continuation token (scoring), up to the last decoded.
                first_out = len(request.tokens) - 1 if request.want_last else request.n_prompt - 1
                for pos in range(request.n_keep, request.n_cached):
                    items.append((i, pos, int(request.tokens[pos]), pos >= first_out))
                self.stats.tokens_reused += request.n_keep
                if not request.want_last:
                    results[i] = np.zeros(len(request.tokens) - request.n_prompt)
                    self.stats.tokens_scored += len(request.tokens) - request.n_prompt
            try:
                for start in range(0, len(items), self.n_batch):
                    chunk = items[start : start + self.n_batch]
                    self._fill_batch(
                        [(requests[i].seq.seq_id, pos, tok, out) for i, pos, tok, out in chunk]
                    )
                    self._decode(len(chunk), pinned)
                    self.stats.tokens_decoded += len(chunk)
                    outputs = [(b, i, pos) for b, (i, pos, _, out) in enumerate(chunk) if out]
                    # Output rows of scoring requests: (row among the outputs, i, pos).
                    scored = []
                    for j, (b, i, pos) in enumerate(outputs):
                        if requests[i].want_last:
                            on_last_row(i, b)
                        else:
                            scored.append((j, i, pos))
                    if scored:
                        started = time.perf_counter()
                        logits = np.ctypeslib.as_array(
                            llama_cpp.llama_get_logits(self._ctx),
                            shape=(len(outputs), self.n_vocab),
                        )
                        if len(scored) < len(outputs):
                            logits = logits[[j for j, _, _ in scored]]
                        targets = np.array([requests[i].tokens[pos + 1] for _, i, pos in scored])
                        values = _log_softmax_at(logits, targets)
                        for (_, i, pos), value in zip(scored, values, strict=True):
                            results[i][pos + 1 - requests[i].n_prompt] = value
                        self.stats.decode_seconds += time.perf_counter() - started
            except BaseException:
                # The cache may hold part of this group's tokens: forget those sequences.
                for request in group:
                    self._evict(request.seq)
                raise
            for request in group:
                request.seq.tokens = request.tokens[: request.n_cached].copy()
                request.seq.last_used = self._tick()
        return [r if r is not None else np.zeros(0) for r in results]

    def _fill_batch(self, items: list[tuple[int, int, int, bool]]) -> None:
        n = len(items)
        seq_ids = self._batch.seq_id
        for b, (seq_id, pos, token, out) in enumerate(items):
            self._batch_token[b] = token
            self._batch_pos[b] = pos
            self._batch_logits[b] = out
            seq_ids[b][0] = seq_id
        self._batch_nseq[:n] = 1
        self._batch.n_tokens = n

    def _add_companion(self, n_tokens: int) -> tuple[int, int] | None:
        """Give a lone token in the batch's last micro-batch a throwaway companion.

        llama.cpp's CPU flash attention computes a micro-batch of ONE query token
        over 512 or more cache cells by another path (the cells split among the
        threads, partial results merged), whose result differs from the usual one
        by up to a logit (measured: 0.6 on SmolLM2 with 2 threads). A token's
        result would then depend on how full the cache is and on what shares its
        batch. The companion, the same sequence's next position, keeps every
        micro-batch at two or more tokens; it is removed right after the decode,
        and being later in its sequence it changes nothing for the real token.

        Returns:
            The companion's (sequence, position), or None when none was needed.
        """
        if self._n_ubatch < 2 or n_tokens % self._n_ubatch != 1:
            return None
        last = n_tokens - 1
        seq_id = int(self._batch.seq_id[last][0])
        pos = int(self._batch_pos[last]) + 1
        self._batch_token[n_tokens] = self._batch_token[last]
        self._batch_pos[n_tokens] = pos
        self._batch_logits[n_tokens] = False
        self._batch.seq_id[n_tokens][0] = seq_id
        self._batch_nseq[n_tokens] = 1
        self._batch.n_tokens = n_tokens + 1
        return seq_id, pos

    def _decode(self, n_tokens: int, pinned: set[int]) -> None:
        started = time.perf_counter()
        companion = self._add_companion(n_tokens)
        try:
            self._decode_batch(n_tokens, pinned)
        finally:
            if companion is not None:
                llama_cpp.llama_memory_seq_rm(self._memory, companion[0], companion[1], -1)
        self.stats.decode_calls += 1
        self.stats.decode_seconds += time.perf_counter() - started

    def _decode_batch(self, n_tokens: int, pinned: set[int]) -> None:
        while True:
            status = llama_cpp.llama_decode(self._ctx, self._batch)
            if status == 0:
                break
            # In streams each sequence has its own cells: evicting others frees none.
            if status == 1 and not self.kv_streams and self._evict_lru(pinned, _CACHE_FULL):
                continue
            if status == 1:
                raise EngineError(
                    f"the KV cache of {self.n_ctx} tokens cannot hold this batch of "
                    f"{n_tokens} tokens with the sequences it needs; raise n_ctx (in a "
                    "scenario: n_ctx in its [model] table, e.g. --set model.n_ctx=16384)"
                )
            raise EngineError(f"llama_decode failed with status {status}")
