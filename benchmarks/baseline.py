"""Baselines every benchmark reports: the model's prompt-evaluation rate and the tokens needed.

- :func:`prompt_eval_rate`: the model's single-sequence prompt-evaluation rate, as
  ``llama-bench``'s pp test measures it: one fresh sequence of 512 random tokens
  through ``llama_decode`` in one batch (micro-batches of 512), on a context of its
  own at the engine's thread count, the median of a few passes. It is the ceiling an
  engine that decodes prompts can reach on this machine in this run, so
  ``engine_over_prompt_eval`` (the engine's tokens/s over it) is comparable across
  machines and loads, unlike tokens/s. The same pass in the engine's own micro-batches
  of 63 tokens (its fixed numerics path) gives ``engine_ubatch_over_prompt_eval``, the
  share of that ceiling the path itself allows, and
  ``engine_over_prompt_eval_engine_ubatch``, the engine against its own path.
- :class:`TokenLog`: records every token sequence an engine is asked to hold (each
  request's cached tokens, each generated continuation) while active, with the
  steering or capping setting it was decoded under; its :meth:`TokenLog.unique` is
  the size of their prefix tries, one per setting, the least any cache could decode
  for that work (a steered context computes other activations, so its tokens are
  other cells), and ``decoded_over_unique`` = tokens decoded / unique says how much
  was decoded more than once.
- :func:`dropped_tokens`: cells a request left cached that the next request on the
  same sequence does not extend (decoded, then thrown away and decoded again under
  another context), from the per-sequence chains of cached tokens;
- :func:`throughput_fields`: the JSON fields built from both;
  :func:`add_baseline_arguments`: the options every benchmark shares (``--gpu-layers``,
  ``--prompt-eval-tokens``).
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import llama_cpp
import numpy as np

from simulacra.llm.engine import Engine
from simulacra.llm.pool import UBATCH

PROMPT_TOKENS = 512


def _prompt_eval_context(engine: Engine, n_tokens: int, n_ubatch: int) -> Any:
    """A one-sequence context of the engine's model, thread count and attention setting."""
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = max(256, n_tokens)
    cparams.n_batch = n_tokens
    cparams.n_ubatch = min(n_ubatch, n_tokens)
    cparams.n_seq_max = 1
    cparams.n_threads = cparams.n_threads_batch = engine.n_threads
    cparams.no_perf = True
    cparams.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        if engine.flash_attn
        else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    ctx = llama_cpp.llama_init_from_model(engine._model, cparams)
    if not ctx:
        raise RuntimeError("could not create the prompt-evaluation context")
    return ctx


def prompt_eval_rate(
    engine: Engine, *, n_tokens: int = PROMPT_TOKENS, repeats: int = 3, n_ubatch: int = 512
) -> dict[str, Any]:
    """Tokens/s of one fresh ``n_tokens`` sequence through ``llama_decode`` (median of passes).

    The same sequence is also decoded in the engine's own micro-batches
    (:data:`~simulacra.llm.pool.UBATCH` tokens, where llama.cpp's CPU attention
    computes each token independently of its batch neighbours), the passes of both
    interleaved so that the machine's drift falls on both alike: the ratio of the
    two is the ceiling that the engine's numerics path puts on
    ``engine_over_prompt_eval``.

    Args:
        engine: the engine whose model (and thread count, flash-attention and GPU
            settings) is measured; its own context is not touched.
        n_tokens: the sequence length (pp512: 512).
        repeats: passes of each; the median is reported (a first, warm-up pass is extra).
        n_ubatch: the micro-batch size of the main rate (llama-bench: 512).

    Returns:
        ``prompt_eval_tokens_per_s`` (median), every pass's rate, the settings, and
        ``prompt_eval_engine_ubatch_tokens_per_s`` at the engine's micro-batch size.
    """
    sizes = {"main": min(n_ubatch, n_tokens), "engine": min(UBATCH, n_tokens)}
    contexts: dict[str, Any] = {}
    batch = llama_cpp.llama_batch_init(n_tokens, 0, 1)
    rates: dict[str, list[float]] = {name: [] for name in sizes}
    try:
        for name, size in sizes.items():
            contexts[name] = _prompt_eval_context(engine, n_tokens, size)
        tokens = np.random.default_rng(0).integers(0, engine.n_vocab, n_tokens)
        for b, token in enumerate(tokens):
            batch.token[b] = int(token)
            batch.pos[b] = b
            batch.n_seq_id[b] = 1
            batch.seq_id[b][0] = 0
            batch.logits[b] = b == n_tokens - 1
        batch.n_tokens = n_tokens
        for k in range(repeats + 1):
            for name, ctx in contexts.items():
                llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
                started = time.perf_counter()
                if llama_cpp.llama_decode(ctx, batch) != 0:
                    raise RuntimeError("prompt-evaluation decode failed")
                if k:  # the first pass allocates the graph: not counted
                    rates[name].append(n_tokens / (time.perf_counter() - started))
    finally:
        llama_cpp.llama_batch_free(batch)
        for ctx in contexts.values():
            llama_cpp.llama_free(ctx)
    return {
        "n_gpu_layers": engine.n_gpu_layers,
        "prompt_eval_tokens_per_s": round(float(np.median(rates["main"])), 1),
        "prompt_eval_pass_tokens_per_s": [round(r, 1) for r in rates["main"]],
        "prompt_eval_tokens": n_tokens,
        "prompt_eval_ubatch": sizes["main"],
        "prompt_eval_engine_ubatch": sizes["engine"],
        "prompt_eval_engine_ubatch_tokens_per_s": round(float(np.median(rates["engine"])), 1),
    }


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark shares: GPU offload and the prompt-evaluation length."""
    parser.add_argument(
        "--gpu-layers", type=int, default=0, help="layers offloaded to the GPU (-1: all)"
    )
    parser.add_argument(
        "--prompt-eval-tokens",
        type=int,
        default=PROMPT_TOKENS,
        help="tokens of the prompt-evaluation baseline (pp512: 512)",
    )


def trie_size(sequences: list[np.ndarray] | list[tuple[int, ...]]) -> int:
    """Nodes of the prefix trie of ``sequences``: distinct non-empty prefixes.

    Sorted, each sequence adds the tokens past its common prefix with the one
    before it; a sequence that is a prefix of another adds nothing new.
    """
    ordered = sorted(tuple(int(t) for t in s) for s in sequences)
    total, previous = 0, ()
    for seq in ordered:
        common = 0
        for a, b in zip(seq, previous, strict=False):
            if a != b:
                break
            common += 1
        total += len(seq) - common
        previous = seq
    return total


def dropped_tokens(chains: list[list[np.ndarray]]) -> int:
    """Cached tokens that the next request on the same sequence drops, summed.

    Args:
        chains: per sequence, the tokens each successive request leaves cached.

    Returns:
        For each request after the first, the tokens of the previous one past
        their common prefix, summed over requests and sequences: cells that were
        decoded and are then replaced, not extended.
    """
    total = 0
    for chain in chains:
        for before, after in itertools.pairwise(chain):
            n = min(len(before), len(after))
            differs = np.flatnonzero(np.asarray(before[:n]) != np.asarray(after[:n]))
            total += len(before) - (int(differs[0]) if len(differs) else n)
    return total


class TokenLog:
    """Every token sequence an engine's pool holds for its callers, recorded while active.

    Wraps :meth:`SequencePool.run` (a request's tokens up to those it leaves cached)
    and :meth:`SequencePool.decode_step` (a sequence grown by generated tokens).
    """

    def __init__(self, engine: Engine) -> None:
        self.pool = engine.pool
        self.sequences: list[np.ndarray] = []
        self.keys: list[str] = []  # the pool's setting each sequence was decoded under
        self.active = True
        self._growing: dict[int, tuple[str, np.ndarray]] = {}

    def __enter__(self) -> TokenLog:
        pool = self.pool
        run, step = pool.run, pool.decode_step

        def logged_run(requests, *args, **kwargs):
            self._flush()
            if self.active:
                self.sequences += [r.tokens[: r.n_cached] for r in requests]
                self.keys += [pool.key] * len(requests)
            return run(requests, *args, **kwargs)

        def logged_step(items, *args, **kwargs):
            rows = step(items, *args, **kwargs)
            if self.active:
                for seq, _ in items:
                    self._growing[seq.seq_id] = (seq.key, seq.tokens)
            return rows

        pool.run, pool.decode_step = logged_run, logged_step
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush()
        del self.pool.run, self.pool.decode_step

    def _flush(self) -> None:
        for key, tokens in self._growing.values():
            self.sequences.append(tokens)
            self.keys.append(key)
        self._growing.clear()

    def unique(self) -> int:
        """Tokens of the prefix tries of everything recorded, one trie per setting."""
        self._flush()
        by_key: dict[str, list[np.ndarray]] = {}
        for key, tokens in zip(self.keys, self.sequences, strict=True):
            by_key.setdefault(key, []).append(tokens)
        return sum(trie_size(sequences) for sequences in by_key.values())


def throughput_fields(
    engine_tokens: int, engine_s: float, unique: int, prompt_eval: dict[str, Any]
) -> dict[str, Any]:
    """``engine_over_prompt_eval``, ``decoded_over_unique`` and what they are made of."""
    rate = engine_tokens / engine_s if engine_s > 0 else float("nan")
    at_engine_ubatch = prompt_eval["prompt_eval_engine_ubatch_tokens_per_s"]
    return {
        **prompt_eval,
        "engine_over_prompt_eval": round(rate / prompt_eval["prompt_eval_tokens_per_s"], 3),
        "engine_over_prompt_eval_engine_ubatch": round(rate / at_engine_ubatch, 3),
        "engine_ubatch_over_prompt_eval": round(
            at_engine_ubatch / prompt_eval["prompt_eval_tokens_per_s"], 3
        ),
        "unique_tokens": int(unique),
        "decoded_over_unique": round(engine_tokens / unique, 3) if unique else None,
    }
