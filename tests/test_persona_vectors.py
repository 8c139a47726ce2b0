"""Extraction's batched engine calls on the real model (``simulacra.persona_vectors``)."""

from __future__ import annotations

import warnings

from simulacra.errors import SimulacraWarning
from simulacra.llm.engine import Engine
from simulacra.persona_vectors import CHUNK, answer_all


def test_extraction_turns_its_cache_over_without_advising_the_scenario():
    # Three chunks of distinct system prompts on a 1,024-cell cache: the later chunks
    # evict the earlier ones. That is extraction working as designed, and the cache
    # warning's advice (raise the scenario's n_ctx, shorten the dialogue) does not
    # apply to it, so none is shown; the evictions still count.
    engine = Engine.load(n_ctx=1024)
    try:
        requests = [
            (f"You are respondent number {i}, who answers every question briefly.", "Hello?")
            for i in range(3 * CHUNK)
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("error", SimulacraWarning)
            answers = answer_all(engine, requests, max_tokens=1, seed=0, temperature=0.0)
        assert len(answers) == len(requests) and all(answers)
        assert engine.stats.evictions > 0
    finally:
        engine.close()
