"""The process-wide engine cache: one engine per model, context size and threads."""

from __future__ import annotations

from simulacra.llm.cache import clear_engines, get_engine, scratch_engine
from simulacra.llm.models import DEFAULT_MODEL


def test_engines_are_shared_by_model_context_and_threads():
    clear_engines()
    try:
        default = get_engine(n_ctx=512, n_threads=1)
        assert get_engine(DEFAULT_MODEL, n_ctx=512, n_threads=1) is default
        assert (default.n_ctx, default.n_threads) == (512, 1)
        other = get_engine(n_ctx=768, n_threads=1)
        assert other is not default and other.n_ctx == 768
        scratch = scratch_engine(default)
        assert scratch is not default and scratch is scratch_engine(default)
        assert (scratch.model_path, scratch.n_ctx, scratch.n_threads) == (
            default.model_path,
            default.n_ctx,
            default.n_threads,
        )
        clear_engines()
        assert get_engine(n_ctx=512, n_threads=1) is not default
    finally:
        clear_engines()
