"""Shared fixtures: one real engine on the embedded default model for the whole session."""

from __future__ import annotations

import pytest

from simulacra.llm.engine import Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The embedded SmolLM2-135M-Instruct model, loaded once per test session."""
    eng = Engine.load(n_ctx=4096)
    yield eng
    eng.close()
