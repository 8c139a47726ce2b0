"""``[agents.steer]`` read and checked against the model (no model run: synthetic vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.errors import ScenarioError, SimulacraWarning
from simulacra.scenario import SteerSpec
from simulacra.simulation.steering import agent_steering
from simulacra.vectors import PersonaVector, write_control_vector


def _vector(tmp_path, n_embd=8, layers=(10, 12), sha="a" * 64):
    rows = np.arange(len(layers) * n_embd, dtype=np.float32).reshape(len(layers), n_embd)
    vector = PersonaVector(rows + 1, layers, name="pirate", method="mean_diff", model_sha256=sha)
    return vector, write_control_vector(vector, tmp_path / f"v{n_embd}.gguf")


def _spec(path, coefficient=2.0, layers=(12, 12)) -> SteerSpec:
    return SteerSpec.model_construct(vector=str(path), coefficient=coefficient, layers=layers)


def _steer(spec, **kwargs):
    settings = {"n_layer": 30, "n_embd": 8, "model_sha256": "a" * 64} | kwargs
    where = {"agent": "subject", "field": "agents[0].steer", "source": "s.toml"}
    return agent_steering(spec, **where, **settings)


def test_the_setting_names_the_vector_coefficient_and_blocks(tmp_path):
    vector, path = _vector(tmp_path)
    steering = _steer(_spec(path, 4.0))
    assert steering.vector == vector and steering.coefficient == 4.0
    assert steering.setting.layers == (12, 12)
    assert steering.setting.key == f"cvec[{vector.sha256}*4.0]@12-12"
    record = steering.to_dict()
    assert record["vector_sha256"] == vector.sha256 and record["layers"] == [12, 12]
    assert record["agent"] == "subject" and record["key"] == steering.setting.key


def test_a_vector_of_another_width_is_a_located_error(tmp_path):
    _, path = _vector(tmp_path, n_embd=6)
    with pytest.raises(ScenarioError) as info:
        _steer(_spec(path))
    (issue,) = info.value.issues
    assert (issue.source, issue.path) == ("s.toml", "agents[0].steer.vector")
    assert "width 6" in issue.message and "8 wide" in issue.message


def test_blocks_outside_the_model_or_the_vector_are_located_errors(tmp_path):
    _, path = _vector(tmp_path)
    with pytest.raises(ScenarioError, match=r"agents\[0\]\.steer\.layers: expected blocks within"):
        _steer(_spec(path, layers=(12, 30)))
    with pytest.raises(ScenarioError, match="no direction in blocks"):
        _steer(_spec(path, layers=(2, 5)))


def test_an_unreadable_file_and_another_model_are_reported(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(ScenarioError, match=r"agents\[0\]\.steer\.vector: .*bad\.gguf"):
        _steer(_spec(bad))
    _, path = _vector(tmp_path)
    with pytest.warns(SimulacraWarning, match="another model file"):
        _steer(_spec(path), model_sha256="b" * 64)
