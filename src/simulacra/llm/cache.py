"""The process-wide engine cache: one loaded model per model, context size and threads.

Loading a model takes seconds and its weights take memory, so every part of a
process that runs the same model shares one :class:`~simulacra.llm.engine.Engine`:
the dialogue runner, sweep and battery workers, the command line. Callers that
need results independent of what ran before reset the engine (``engine.reset()``)
before using it; a run does so when it starts.

Scratch engines are a second engine per loaded model, for work that must not
touch the first one's KV cache (the regeneration test; see
:mod:`simulacra.simulation.regeneration`).
"""

from __future__ import annotations

import os

from simulacra.llm.engine import Engine, default_threads
from simulacra.llm.models import DEFAULT_MODEL

__all__ = ["DEFAULT_N_CTX", "clear_engines", "get_engine", "scratch_engine"]

DEFAULT_N_CTX = 8192
"""Context size of a cached engine when none is given."""

_ENGINES: dict[tuple[str, int, int, int], Engine] = {}
_SCRATCH: dict[tuple[str, int, int, int], Engine] = {}


def _model_key(model: str | os.PathLike[str] | None) -> str:
    """The cache key of a model: its registry name or path; None is the default model."""
    return DEFAULT_MODEL if model is None else os.fspath(model)


def get_engine(
    model: str | os.PathLike[str] | None = None,
    *,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
) -> Engine:
    """The process-wide engine for a model, loaded on first use.

    Args:
        model: a registry name, a GGUF path, or None for the embedded default model.
        n_ctx: the context size (KV-cache cells).
        n_threads: CPU threads; None for every core this process may run on.
        n_gpu_layers: layers offloaded to a GPU (-1: all; 0: CPU only).

    Returns:
        The engine, shared with every other caller asking for the same model,
        context size, thread count and offloading.

    Raises:
        ModelNotFoundError: unknown model name, missing package or file.
        ModelLoadError: corrupt file, or a context that cannot be created.
    """
    threads = default_threads() if n_threads is None else int(n_threads)
    key = (_model_key(model), int(n_ctx), threads, int(n_gpu_layers))
    engine = _ENGINES.get(key)
    if engine is None:
        engine = Engine.load(model, n_ctx=key[1], n_threads=threads, n_gpu_layers=key[3])
        _ENGINES[key] = engine
    return engine


def scratch_engine(engine: Engine) -> Engine:
    """The process-wide scratch engine paired with ``engine``, loaded on first use.

    It runs the same model file with the same context size, threads and chat
    format, in a KV cache of its own, so that using it never perturbs
    ``engine``'s cache.

    Args:
        engine: the engine to pair with.

    Returns:
        The scratch engine (not reset: callers reset it when they need to).
    """
    key = (str(engine.model_path), engine.n_ctx, engine.n_threads, engine.n_gpu_layers)
    scratch = _SCRATCH.get(key)
    if scratch is None:
        scratch = Engine(
            engine.model_info,
            n_ctx=engine.n_ctx,
            n_threads=engine.n_threads,
            n_seq_max=128,
            n_batch=engine.n_batch,
            seed=engine.seed,
            flash_attn=True,
            kv_f32=False,
            kv_streams=False,
            n_gpu_layers=engine.n_gpu_layers,
        )
        _SCRATCH[key] = scratch
    return scratch


def clear_engines() -> None:
    """Close every cached engine, scratch engines included."""
    for cache in (_ENGINES, _SCRATCH):
        for engine in cache.values():
            engine.close()
        cache.clear()
