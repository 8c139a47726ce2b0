"""``cached_vector`` / ``cached_axis``: extracted once per recipe, read back after (real model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulacra import persona_vectors
from simulacra.persona_vectors import cached_axis, cached_vector

DATA = Path(__file__).parent / "data"
SPEC = DATA / "tiny_pirate.toml"
ROLES = DATA / "tiny_roles.toml"


def _refuse(*_args, **_kwargs):
    raise AssertionError("extracted again although the recipe's file exists")


def test_a_vector_is_extracted_once_and_read_back(tmp_path, monkeypatch):
    first = cached_vector(SPEC, None, tmp_path, max_tokens=8)
    files = sorted(tmp_path.glob("*.gguf"))
    assert [f.name.split("-")[0] for f in files] == ["pirate"]
    assert first.model_sha256 and first.prompts_sha256
    assert 0 not in first.layers and np.isfinite(first.directions).all()
    monkeypatch.setattr(persona_vectors, "extract_vector", _refuse)
    again = cached_vector(SPEC, None, tmp_path, max_tokens=8)
    assert again == first
    monkeypatch.undo()
    other = cached_vector(SPEC, None, tmp_path, max_tokens=8, seed=1)
    assert len(list(tmp_path.glob("*.gguf"))) == 2  # another recipe, another file
    assert not np.array_equal(other.directions, first.directions)


def test_an_axis_is_extracted_once_and_read_back(tmp_path, monkeypatch):
    first = cached_axis(ROLES, None, tmp_path, layers=[10], max_tokens=8)
    assert first.name == "assistant_axis" and first.layers == (10,)
    monkeypatch.setattr(persona_vectors, "extract_axis", _refuse)
    assert cached_axis(ROLES, None, tmp_path, layers=[10], max_tokens=8) == first
    with pytest.raises(AssertionError, match="extracted again"):
        cached_axis(ROLES, None, tmp_path, layers=[12], max_tokens=8)
