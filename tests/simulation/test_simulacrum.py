import dataclasses

import pytest

from simulacra.simulation.simulacrum import Simulacrum


def test_fields_and_default_tags():
    sim = Simulacrum("pirate", "You are a pirate.")
    assert sim.name == "pirate"
    assert sim.description == "You are a pirate."
    assert sim.tags == ()


def test_has_tag():
    sim = Simulacrum("pirate", "You are a pirate.", ("villain", "sea"))
    assert sim.has_tag("villain")
    assert sim.has_tag("sea")
    assert not sim.has_tag("aligned")
    assert not Simulacrum("sage", "You are a sage.").has_tag("villain")


def test_tags_are_stored_as_a_tuple():
    sim = Simulacrum("pirate", "You are a pirate.", ["villain"])  # type: ignore[arg-type]
    assert sim.tags == ("villain",)
    assert Simulacrum("pirate", "d", "villain").tags == ("villain",)  # type: ignore[arg-type]


def test_frozen_equal_and_hashable():
    a = Simulacrum("pirate", "You are a pirate.", ("villain",))
    b = Simulacrum("pirate", "You are a pirate.", ["villain"])  # type: ignore[arg-type]
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "sage"  # type: ignore[misc]


def test_differs_by_description():
    assert Simulacrum("pirate", "You are a pirate.") != Simulacrum("pirate", "You are a sailor.")
