"""Populations with a conditional distribution: one attribute drawn given another.

Pure logic on synthetic population files (no model): the TOML form, its checks (located,
with "did you mean"), impossible combinations never drawn, reproducible draws.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from simulacra.batteries.replication.population import (
    Population,
    PopulationFile,
    composition,
    population_spec,
)
from simulacra.errors import ScenarioError
from simulacra.schema import validate

WORK_GIVEN_AGE = {
    "seed": 5,
    "template": "You are {age} and {work}.",
    "attributes": {
        "age": {"ranges": [[18, 29], [30, 64], [65, 90]], "weights": [1, 2, 1]},
        "work": {
            "values": ["a student", "working", "retired"],
            "labels": ["student", "working", "retired"],
            "given": "age",
            "weights": {"18-29": [60, 40, 0], "30-64": [5, 95, 0], "65-90": [0, 10, 90]},
        },
    },
}


def spec(data: dict):
    return population_spec(
        validate(PopulationFile, data, "population.toml"), Path("population.toml")
    )


def issues(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as info:
        validate(PopulationFile, data, "population.toml")
    return [(issue.path, issue.message) for issue in info.value.issues]


def test_conditional_draws_follow_their_row_and_never_an_impossible_combination():
    population = spec(WORK_GIVEN_AGE)
    frame = Population(population, {}, range(3000)).frame()
    table = pd.crosstab(frame["age"], frame["work"])
    assert table.loc["18-29", "retired"] == 0 and table.loc["30-64", "retired"] == 0
    assert table.loc["65-90", "student"] == 0
    shares = table.div(table.sum(axis=1), axis=0)
    assert shares.loc["18-29", "student"] == pytest.approx(0.6, abs=0.05)
    assert shares.loc["65-90", "retired"] == pytest.approx(0.9, abs=0.05)
    assert frame["age"].value_counts(normalize=True)["30-64"] == pytest.approx(0.5, abs=0.04)
    # reproducible, participant by participant, whatever the population size
    again = Population(spec(WORK_GIVEN_AGE), {}, range(3000)).frame()
    pd.testing.assert_frame_equal(frame, again)
    alone = Population(population, {}, [1234]).participants[0]
    assert alone.labels == frame.set_index("index").loc[1234, ["age", "work"]].to_dict()
    counts = composition(frame, population).set_index(["attribute", "label"])["count"]
    assert counts["work"].sum() == 3000


def with_work(**changes) -> dict:
    data = {**WORK_GIVEN_AGE, "attributes": dict(WORK_GIVEN_AGE["attributes"])}
    data["attributes"]["work"] = {**data["attributes"]["work"], **changes}
    return data


def test_the_parent_and_its_labels_are_checked_with_suggestions():
    weights = {"18-29": [60, 40, 0], "30-46": [5, 95, 0], "65-90": [0, 0, 0]}
    assert issues(with_work(weights=weights)) == [
        (
            "attributes.work.weights.65-90",
            "expected weights summing to more than 0 (no level is possible for age '65-90')",
        ),
    ]
    weights = {"18-29": [60, 40, 0], "30-46": [5, 95, 0], "65-90": [0, 1, 1]}
    assert issues(with_work(weights=weights)) == [
        ("attributes.work.weights", "missing weights for age '30-64'"),
        ("attributes.work.weights.30-46", "unknown age label '30-46'; did you mean '30-64'?"),
    ]
    assert issues(with_work(given="aeg")) == [
        ("attributes.work.given", "unknown attribute 'aeg'; did you mean 'age'?")
    ]
    assert issues(with_work(weights={"18-29": [1, 1]}, given="age"))[0] == (
        "attributes.work.weights.18-29",
        "expected 3 weights (one per level), got 2",
    )


def test_the_weights_form_matches_given_and_the_parent_comes_first():
    assert issues(with_work(weights=[1, 1, 1])) == [
        ("attributes.work.weights", "with given = 'age', expected a table of weights by its label")
    ]
    no_given = with_work()
    del no_given["attributes"]["work"]["given"]
    assert issues(no_given) == [
        ("attributes.work.weights", "a table of weights needs given = 'ATTRIBUTE'")
    ]
    data = with_work()
    data["attributes"] = {"work": data["attributes"]["work"], "age": data["attributes"]["age"]}
    assert issues(data) == [
        ("attributes.work.given", "'age' is declared after 'work'; declare it first")
    ]


def test_an_attribute_name_is_a_name():
    data = {**WORK_GIVEN_AGE, "template": "You are {age}.", "attributes": {}}
    data["attributes"] = {
        "age": WORK_GIVEN_AGE["attributes"]["age"],
        "a b": {"values": ["x"], "weights": [1]},
    }
    assert issues(data) == [
        ('attributes."a b"', "invalid name \"a b\": use only letters, digits, '_' and '-'")
    ]
