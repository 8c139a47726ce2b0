"""The sequence pool: live KV-cache sequences, prefix bookkeeping, batched decoding.

A :class:`SequencePool` owns one llama.cpp context's KV cache and batch. It keeps a
fixed number of live sequences, each holding the tokens its cells hold. Before
decoding, every request (:class:`DecodeRequest`: a prompt and maybe a
continuation to score) finds the live sequence sharing its longest token prefix
and decodes only the new tokens; requests of one call go into the same
``llama_decode`` batches, in *waves*: a request that shares a longer prefix with
another of the same call than with anything cached waits one wave and forks that
request's sequence. When the pool or the cache is full, the least recently used
sequences are evicted.

Every sequence carries the *key* of the setting its cells were decoded under
(:attr:`SequencePool.key`: empty without steering or capping, else the setting's
stable key): a prefix is reused only by a request decoded under the same key, so
activations computed under one steering setting never leak into another.

Decoding is laid out so a token's result never depends on what shares its batch:
micro-batches of at most 63 tokens keep the CPU flash-attention kernel on its
row-by-row path, and a lone token in the last micro-batch gets a throwaway
companion (:meth:`SequencePool._add_companion`).

The :class:`~simulacra.llm.engine.Engine` builds one pool per context; its scoring
and generation (:mod:`simulacra.llm.scoring`, :mod:`simulacra.llm.generation`) are
written on :meth:`SequencePool.run` and :meth:`SequencePool.decode_step`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import llama_cpp
import numpy as np

from simulacra.errors import EngineError, warn

__all__ = [
    "UBATCH",
    "CachedSequence",
    "DecodeRequest",
    "EngineStats",
    "SequencePool",
    "common_prefix",
    "log_softmax_at",
]

# Micro-batches below 64 tokens keep the CPU flash-attention kernel on its row-by-row
# path, whose result for a token does not depend on what else shares the batch.
UBATCH = 63
# A request waits for another of the same call when that saves this many tokens.
_SHARE_MIN = 8
# Logits normalised together: a 3 MB float32 scratch block (16 rows of a 49k vocabulary).
_SOFTMAX_CELLS = 3 << 18
# Why the least recently used sequences are evicted (see SequencePool._warn_eviction).
_POOL_FULL = "pool"
_CACHE_FULL = "cache"


def log_softmax_at(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
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


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """The number of leading tokens ``a`` and ``b`` share."""
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
class CachedSequence:
    """A live sequence of the pool: the tokens its KV cells hold.

    ``key`` names the steering/capping setting those cells were decoded under
    (empty: none); only requests decoded under the same key reuse them.
    """

    seq_id: int
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    last_used: int = 0
    key: str = ""


@dataclass
class DecodeRequest:
    """One prompt (+ continuation) to bring into a sequence and decode."""

    tokens: np.ndarray  # prompt followed by continuation
    n_prompt: int
    want_last: bool = False  # generation: keep the logits row of the last prompt token
    seq: CachedSequence | None = None
    n_keep: int = 0
    # Hidden-state capture: positions from here on are decoded (never taken from the
    # cache) and handed to SequencePool.tap; with capture_outputs they are outputs too.
    capture_from: int | None = None
    capture_outputs: bool = False

    @property
    def n_cached(self) -> int:
        """How many leading tokens the request leaves in its sequence's cache.

        Scoring never needs the last continuation token's logits, so that token is
        not decoded: a later prompt that extends this one decodes it with its own
        new tokens, and one that diverges earlier never pays for it.
        """
        return len(self.tokens) if self.want_last else len(self.tokens) - 1


class SequencePool:
    """The live sequences of one llama.cpp context, and the decoding they share.

    Args:
        ctx: the llama.cpp context (its KV cache is the pool's).
        n_seq_max: the most sequences kept alive at once.
        n_batch: the most tokens per ``llama_decode`` call.
        n_ctx: KV-cache cells in all.
        n_ctx_seq: the longest sequence the cache can hold (all of it, or a stream).
        n_vocab: the vocabulary size (logits per output row).
        kv_streams: every sequence has its own KV stream (forks copy whole streams).
        stats: the counters to update.
    """

    def __init__(
        self,
        ctx: object,
        *,
        n_seq_max: int,
        n_batch: int,
        n_ctx: int,
        n_ctx_seq: int,
        n_vocab: int,
        kv_streams: bool,
        stats: EngineStats,
    ) -> None:
        self._ctx = ctx
        self._memory = llama_cpp.llama_get_memory(ctx)
        self.n_batch = n_batch
        self.n_ctx = n_ctx
        self.n_ctx_seq = n_ctx_seq
        self.n_vocab = n_vocab
        self.kv_streams = kv_streams
        self.stats = stats
        self._n_ubatch = min(n_batch, UBATCH)
        self._batch = llama_cpp.llama_batch_init(n_batch + 1, 0, 1)
        self._batch_token = np.ctypeslib.as_array(self._batch.token, shape=(n_batch + 1,))
        self._batch_pos = np.ctypeslib.as_array(self._batch.pos, shape=(n_batch + 1,))
        self._batch_logits = np.ctypeslib.as_array(self._batch.logits, shape=(n_batch + 1,))
        self._batch_nseq = np.ctypeslib.as_array(self._batch.n_seq_id, shape=(n_batch + 1,))
        self._batch_nseq[:] = 1
        self.sequences = [CachedSequence(seq_id) for seq_id in range(n_seq_max)]
        self._clock = 0
        self._warned_eviction = False
        # The setting decodes run under now (see the module docstring); set by the engine.
        self.key = ""
        # Called after each decode of run() with (requests, items decoded) when set.
        self.tap: Callable[[list[DecodeRequest], list[tuple[int, int, int, bool]]], None] | None = (
            None
        )

    def close(self) -> None:
        """Free the batch; the pool is unusable afterwards (the engine frees the context)."""
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self._ctx = None

    def require_open(self) -> None:
        """Raise :class:`EngineError` once the engine is closed."""
        if not self._ctx:
            raise EngineError("the engine is closed")

    def reset(self) -> None:
        """Forget every cached sequence and clear the KV cache."""
        self.require_open()
        llama_cpp.llama_memory_clear(self._memory, True)
        for seq in self.sequences:
            seq.tokens = np.zeros(0, dtype=np.int32)
            seq.last_used = 0
        self._clock = 0

    @contextlib.contextmanager
    def recomputing_quietly(self) -> Iterator[None]:
        """Within this block, evicting and recomputing prompts raises no warning."""
        warned = self._warned_eviction
        self._warned_eviction = True
        try:
            yield
        finally:
            self._warned_eviction = warned

    def logits_row(self, row: int) -> np.ndarray:
        """The logits of output row ``row`` of the last decode (a view; copy to keep)."""
        return np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(self._ctx, row), shape=(self.n_vocab,)
        )

    def sample(self, sampler: object, row: int) -> int:
        """Sample (and accept) a token from output row ``row`` with a sampler chain."""
        return int(llama_cpp.llama_sampler_sample(sampler, self._ctx, row))

    def decode_step(self, items: list[tuple[CachedSequence, int]], pinned: set[int]) -> list[int]:
        """Append one token to each sequence in one decode; return their batch rows."""
        self.fill_batch([(seq.seq_id, len(seq.tokens), token, True) for seq, token in items])
        self.decode(len(items), pinned)
        for seq, token in items:
            seq.tokens = np.append(seq.tokens, np.int32(token))
            seq.last_used = self.tick()
        self.stats.tokens_decoded += len(items)
        return list(range(len(items)))

    def tick(self) -> int:
        """Advance the pool's clock (least-recently-used order) and return it."""
        self._clock += 1
        return self._clock

    def evict(self, seq: CachedSequence) -> None:
        """Drop a sequence from the cache and the pool."""
        llama_cpp.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
        seq.tokens = np.zeros(0, dtype=np.int32)
        seq.last_used = 0
        self.stats.evictions += 1

    def truncate(self, seq: CachedSequence, n_keep: int) -> None:
        """Keep only the first ``n_keep`` tokens of a sequence in its cells."""
        if n_keep < len(seq.tokens):
            llama_cpp.llama_memory_seq_rm(self._memory, seq.seq_id, n_keep, -1)
            seq.tokens = seq.tokens[:n_keep].copy()

    def _warn_eviction(self, why: str) -> None:
        if self._warned_eviction:
            return
        self._warned_eviction = True
        if why == _CACHE_FULL:
            advice = (
                f"the model's context cache ({self.n_ctx} tokens) is full, so the least "
                "recently used prompts are dropped and recomputed when needed. To avoid it, "
                "raise n_ctx in the scenario's [model] table (e.g. --set model.n_ctx="
                f"{2 * self.n_ctx}) or a battery's n_ctx, or shorten the dialogue "
                "(dialogue.turns, dialogue.max_tokens)."
            )
        else:
            advice = (
                f"more prompts are in play at once than the model's cache keeps "
                f"({len(self.sequences)}: one per agent and simulacrum it may speak as, plus "
                "probes), so the least recently used are recomputed when needed. To avoid "
                "it, give the agents fewer simulacra (agents[].prior) or use fewer agents."
            )
        warn(
            f"{advice} This is slower, and prompts recomputed into freed cells can score "
            "slightly differently than with room for them; the same run still gives the "
            "same results. (Shown once.)"
        )

    def _evict_lru(self, pinned: set[int], why: str) -> bool:
        candidates = [s for s in self.sequences if s.seq_id not in pinned and len(s.tokens) > 0]
        if not candidates:
            return False
        self._warn_eviction(why)
        self.evict(min(candidates, key=lambda s: s.last_used))
        return True

    def _next_wave(self, pending: list[DecodeRequest]) -> list[DecodeRequest]:
        """Pending requests to decode together now.

        A request that shares a longer prefix with a request already in this wave
        than with any cached sequence waits for the next wave, where it can fork
        that request's sequence instead of decoding the shared prefix again.
        The wave also fits the pool and the cache.
        """
        wave: list[DecodeRequest] = []
        cells = 0
        for request in pending:
            size = len(request.tokens)
            if wave and (len(wave) >= len(self.sequences) or cells + size > self.n_ctx):
                break
            cached = self._longest_prefix(request.tokens)[1]
            waiting = max((common_prefix(r.tokens, request.tokens) for r in wave), default=0)
            if waiting > cached + _SHARE_MIN:
                continue
            wave.append(request)
            cells += size
        return wave

    def _assign(self, group: list[DecodeRequest], protected: set[int]) -> int:
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
        forks: list[tuple[CachedSequence, CachedSequence, int]] = []
        assigned = 0
        for request in group:
            limit = len(request.tokens) - 1 if request.want_last else request.n_prompt - 1
            if request.capture_from is not None:
                limit = min(limit, request.capture_from)
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
                    self.evict(target)
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
            self.truncate(seq, request.n_keep)
            seq.last_used = self.tick()
            seq.key = self.key
        return assigned

    def _longest_prefix(self, tokens: np.ndarray) -> tuple[CachedSequence | None, int]:
        best, best_len = None, 0
        for seq in self.sequences:
            if len(seq.tokens) and seq.key == self.key:
                common = common_prefix(seq.tokens, tokens)
                if common > best_len:
                    best, best_len = seq, common
        return best, best_len

    def _free_slot(self, pinned: set[int]) -> CachedSequence | None:
        """An empty slot, else the least recently used unpinned sequence, else None."""
        for seq in self.sequences:
            if len(seq.tokens) == 0 and seq.seq_id not in pinned:
                return seq
        unpinned = [s for s in self.sequences if s.seq_id not in pinned]
        if not unpinned:
            return None
        self._warn_eviction(_POOL_FULL)
        return min(unpinned, key=lambda s: s.last_used)

    def run(
        self,
        requests: list[DecodeRequest],
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
        self.require_open()
        results: list[np.ndarray | None] = [None] * len(requests)
        index = {id(r): i for i, r in enumerate(requests)}
        pending = list(requests)
        protected: set[int] = set()
        while pending:
            wave = self._next_wave(pending)
            group = wave[: self._assign(wave, protected if hold else set())]
            if not group:
                raise EngineError(
                    f"{len(requests)} generation prompts do not fit a pool of "
                    f"{len(self.sequences)} sequences; raise n_seq_max or generate in "
                    "smaller batches"
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
                    out = pos >= first_out or (
                        request.capture_outputs and pos >= request.capture_from
                    )
                    items.append((i, pos, int(request.tokens[pos]), out))
                self.stats.tokens_reused += request.n_keep
                if not request.want_last:
                    results[i] = np.zeros(len(request.tokens) - request.n_prompt)
                    self.stats.tokens_scored += len(request.tokens) - request.n_prompt
            try:
                for start in range(0, len(items), self.n_batch):
                    chunk = items[start : start + self.n_batch]
                    self.fill_batch(
                        [(requests[i].seq.seq_id, pos, tok, out) for i, pos, tok, out in chunk]
                    )
                    self.decode(len(chunk), pinned)
                    self.stats.tokens_decoded += len(chunk)
                    if self.tap is not None:
                        self.tap(requests, chunk)
                    outputs = [(b, i, pos) for b, (i, pos, _, out) in enumerate(chunk) if out]
                    # Output rows of scoring requests: (row among the outputs, i, pos).
                    scored = []
                    for j, (b, i, pos) in enumerate(outputs):
                        if requests[i].want_last:
                            if pos == len(requests[i].tokens) - 1:
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
                        values = log_softmax_at(logits, targets)
                        for (_, i, pos), value in zip(scored, values, strict=True):
                            results[i][pos + 1 - requests[i].n_prompt] = value
                        self.stats.decode_seconds += time.perf_counter() - started
            except BaseException:
                # The cache may hold part of this group's tokens: forget those sequences.
                for request in group:
                    self.evict(request.seq)
                raise
            for request in group:
                request.seq.tokens = request.tokens[: request.n_cached].copy()
                request.seq.last_used = self.tick()
        return [r if r is not None else np.zeros(0) for r in results]

    def fill_batch(self, items: list[tuple[int, int, int, bool]]) -> None:
        """Write (sequence, position, token, output wanted) items into the batch."""
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

    def decode(self, n_tokens: int, pinned: set[int]) -> None:
        """Decode the first ``n_tokens`` of the batch, evicting unpinned sequences if full."""
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
