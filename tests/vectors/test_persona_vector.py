"""PersonaVector: validation, identity and the methods that return new vectors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from simulacra.vectors import PersonaVector, directions_sha256


def make_vector(layers=(3, 1, 2), n_embd=4, **fields) -> PersonaVector:
    rows = np.arange(len(layers) * n_embd, dtype=np.float32).reshape(len(layers), n_embd) + 1
    defaults = dict(name="pirate", method="mean_diff", model_name="smollm2", meta={"k": "v"})
    return PersonaVector(directions=rows, layers=tuple(layers), **{**defaults, **fields})


def test_rows_are_sorted_by_layer_and_read_only():
    vector = make_vector()
    assert vector.layers == (1, 2, 3)
    np.testing.assert_array_equal(vector.direction(3), [1, 2, 3, 4])
    np.testing.assert_array_equal(vector.direction(1), [5, 6, 7, 8])
    assert vector.directions.dtype == np.float32
    assert vector.n_embd == 4
    with pytest.raises(ValueError):
        vector.directions[0, 0] = 9.0


def test_the_input_array_is_copied():
    rows = np.ones((1, 3), dtype=np.float32)
    vector = PersonaVector(rows, (5,), name="x", method="mean_diff")
    rows[0, 0] = 7
    assert vector.directions[0, 0] == 1


@pytest.mark.parametrize(
    ("directions", "layers", "message"),
    [
        (np.ones(4), (1,), "2-D"),
        (np.ones((2, 4)), (1,), "one row per layer"),
        (np.ones((2, 4)), (1, 1), "unique"),
        (np.ones((1, 4)), (-1,), ">= 0"),
        (np.ones((1, 4)), (1.5,), "integers"),
        (np.ones((1, 4)), (True,), "integers"),
        (np.full((1, 4), np.nan), (1,), "NaN"),
        (np.ones((0, 4)), (), "at least one layer"),
    ],
)
def test_bad_shapes_are_refused(directions, layers, message):
    with pytest.raises(ValueError, match=message):
        PersonaVector(directions, layers, name="x", method="mean_diff")


def test_bad_metadata_is_refused():
    with pytest.raises(ValueError, match="name"):
        make_vector(name=" ")
    with pytest.raises(ValueError, match="meta"):
        make_vector(meta={"k": 1})
    with pytest.raises(ValueError, match="model_sha256"):
        make_vector(model_sha256=None)


def test_direction_of_a_missing_layer_names_the_layers():
    with pytest.raises(KeyError, match=r"covers layers \[1, 2, 3\]"):
        make_vector().direction(7)


def test_norms_unit_scaled_restricted():
    vector = make_vector()
    np.testing.assert_allclose(vector.norms(), np.linalg.norm(vector.directions, axis=1))
    np.testing.assert_allclose(vector.unit().norms(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(vector.scaled(-2).directions, -2 * vector.directions)
    sub = vector.restricted([3, 1])
    assert sub.layers == (1, 3)
    np.testing.assert_array_equal(sub.direction(3), vector.direction(3))
    assert sub.name == vector.name and sub.meta == vector.meta
    with pytest.raises(KeyError):
        vector.restricted([9])
    with pytest.raises(ValueError, match="finite"):
        vector.scaled(float("inf"))


def test_unit_refuses_a_zero_layer():
    vector = PersonaVector(np.zeros((1, 3)), (4,), name="zero", method="mean_diff")
    with pytest.raises(ValueError, match="zero at layers"):
        vector.unit()


def test_equality_hash_and_sha256():
    a, b = make_vector(), make_vector()
    assert a == b and hash(a) == hash(b)
    assert a.sha256 == b.sha256 == directions_sha256(a.directions, a.layers)
    assert a != make_vector(name="other")
    assert a.sha256 == make_vector(name="other").sha256  # identity of the numbers only
    assert a.sha256 != a.scaled(2).sha256
    assert a.sha256 != make_vector(layers=(4, 5, 6)).sha256


def test_meta_is_read_only_and_pickles():
    vector = make_vector()
    with pytest.raises(TypeError):
        vector.meta["k"] = "w"
    clone = pickle.loads(pickle.dumps(vector))
    assert clone == vector
    assert not clone.directions.flags.writeable
