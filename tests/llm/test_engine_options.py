"""Engine options that reach llama.cpp (GPU offload) and warnings a user can act on."""

from __future__ import annotations

import warnings

import llama_cpp
import numpy as np
import pytest

from simulacra.errors import SimulacraWarning
from simulacra.llm.engine import Engine

PERSONAS = ["You are a pirate.", "You are a monk.", "You are a chemist.", "You are a cook."]
INTERNAL = ("n_seq_max", "sequence", "pool", "KV", "engine", "evict", "simulacra/")


def test_n_gpu_layers_reaches_llama_cpp_and_is_recorded(monkeypatch):
    seen = []
    load = llama_cpp.llama_model_load_from_file

    def spy(path, params):
        seen.append(params.n_gpu_layers)
        return load(path, params)

    monkeypatch.setattr(llama_cpp, "llama_model_load_from_file", spy)
    offloaded = Engine.load(n_ctx=512, n_threads=2, n_gpu_layers=-1)
    plain = Engine.load(n_ctx=512, n_threads=2)
    try:
        assert seen == [-1, 0]
        assert offloaded.n_gpu_layers == -1 and offloaded.config["n_gpu_layers"] == -1
        assert plain.config["n_gpu_layers"] == 0
        config = offloaded.config
        assert config["n_threads"] == 2 and config["n_ctx"] == offloaded.n_ctx
        assert config["sha256"] == offloaded.sha256
        # this build has no GPU: the option is accepted and changes nothing
        np.testing.assert_array_equal(
            offloaded.loglik(PERSONAS[:2], " Arr!"), plain.loglik(PERSONAS[:2], " Arr!")
        )
    finally:
        offloaded.close()
        plain.close()
    with pytest.raises(ValueError, match="n_gpu_layers"):
        Engine.load(n_gpu_layers=-2)


def _check_user_warning(record: list[warnings.WarningMessage], advice: str) -> None:
    ours = [w for w in record if issubclass(w.category, SimulacraWarning)]
    assert len(ours) == 1, [str(w.message) for w in record]  # shown once
    warning = ours[0]
    assert warning.filename == __file__  # points at the caller's line, not simulacra's
    text = str(warning.message)
    assert advice in text and "the same run still gives the same results" in text
    assert not any(word in text for word in INTERNAL), text


def test_a_full_cache_warns_what_to_change_in_the_scenario():
    engine = Engine.load(n_ctx=256, n_threads=2)
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            for persona in PERSONAS:  # ~150 tokens each: two do not fit together
                engine.loglik([f"{persona} " * 25], " Arr, matey!")
        assert engine.stats.evictions > 0
        _check_user_warning(record, "raise n_ctx in the scenario's [model] table")
    finally:
        engine.close()


def test_too_many_prompts_warn_what_to_change_in_the_scenario():
    engine = Engine.load(n_ctx=2048, n_threads=2, n_seq_max=2)
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            for persona in PERSONAS:
                engine.loglik([persona], " Arr, matey!")
        _check_user_warning(record, "agents[].prior")
    finally:
        engine.close()
