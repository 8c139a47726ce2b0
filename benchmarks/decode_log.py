"""Decode log: an engine pass's llama.cpp calls, recorded and replayed through bare ``llama_decode``.

The raw-throughput baseline of the battery benchmarks: :class:`DecodeLog` records every
successful ``llama_decode`` batch and every KV-cache operation (sequence copy, removal,
clear) in call order; :func:`replay` runs them again on a reset engine and times only
``llama_decode``, with no Python bookkeeping, no prefix search and no log-softmax.
A batch that llama.cpp refused (no room in the cache) is not logged: the engine
retries it after evictions, and those are logged before the retry.
"""

from __future__ import annotations

import time
from typing import Any

import llama_cpp
import numpy as np

from simulacra.llm.engine import Engine

KV_OPERATIONS = ("llama_memory_seq_cp", "llama_memory_seq_rm", "llama_memory_clear")


class DecodeLog:
    """Records llama.cpp decode batches and KV-cache operations while ``active``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.active = True
        self.failed = 0
        self._originals: dict[str, Any] = {}

    def __enter__(self) -> DecodeLog:
        decode = self._originals["llama_decode"] = llama_cpp.llama_decode

        def logged_decode(ctx, batch):
            n = batch.n_tokens
            status = decode(ctx, batch)
            if self.active and status != 0:
                self.failed += 1
            elif self.active:
                seq = np.array([batch.seq_id[b][0] for b in range(n)], dtype=np.int32)
                arrays = (batch.token, batch.pos, batch.logits)
                token, pos, logits = (np.ctypeslib.as_array(a, shape=(n,)).copy() for a in arrays)
                self.events.append(("decode", (token, pos, seq, logits)))
            return status

        def logged(name: str):
            original = self._originals[name] = getattr(llama_cpp, name)

            def call(*args):
                if self.active:
                    self.events.append((name, args[1:]))
                return original(*args)

            return call

        llama_cpp.llama_decode = logged_decode
        for name in KV_OPERATIONS:
            setattr(llama_cpp, name, logged(name))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._originals.items():
            setattr(llama_cpp, name, original)


def replay(engine: Engine, events: list[tuple[str, Any]]) -> tuple[float, int]:
    """Replay logged batches and KV operations on a reset engine; seconds in llama_decode, tokens."""
    engine.reset()
    memory, batch = engine.pool._memory, engine.pool._batch
    total, tokens = 0.0, 0
    for name, args in events:
        if name != "decode":
            getattr(llama_cpp, name)(memory, *args)
            continue
        token, pos, seq, logits = args
        n = len(token)
        np.ctypeslib.as_array(batch.token, shape=(n,))[:] = token
        np.ctypeslib.as_array(batch.pos, shape=(n,))[:] = pos
        np.ctypeslib.as_array(batch.logits, shape=(n,))[:] = logits
        for b in range(n):
            batch.seq_id[b][0] = int(seq[b])
            batch.n_seq_id[b] = 1
        batch.n_tokens = n
        started = time.perf_counter()
        status = llama_cpp.llama_decode(engine.pool._ctx, batch)
        total += time.perf_counter() - started
        if status != 0:
            raise RuntimeError(f"replayed llama_decode failed with status {status}")
        tokens += n
    engine.reset()  # the engine's pool bookkeeping no longer matches the cache
    return total, tokens
