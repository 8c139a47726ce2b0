"""The schema layer: located issues for any file kind, and the JSON Schemas editors read."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import jsonschema
import pytest
from pydantic import Field, ValidationInfo, field_validator

from simulacra.cli import main
from simulacra.errors import ScenarioError
from simulacra.schema import (
    KINDS,
    Array,
    Count,
    Expect,
    Name,
    SchemaModel,
    Text,
    Unique,
    facts,
    fail,
    json_schema,
    read_toml,
    unknown_name,
    validate,
)

HERE = Path(__file__).parent
ROOT = HERE.parent
MALFORMED = sorted((HERE / "scenarios" / "malformed").glob("*.toml"))
VALID_SCENARIOS = [
    *sorted((ROOT / "scenarios").glob("*.toml")),
    *(HERE / "scenarios" / f"{name}.toml" for name in ("core", "regen", "tiny", "valid_minimal")),
]
VECTOR_FILES = sorted((ROOT / "scenarios" / "vectors").glob("*.toml"))

# The rules a JSON Schema cannot state: references between tables, rules that
# depend on another field's value, sums, and float 2.0 (an integer to JSON Schema).
BEYOND_JSON_SCHEMA = {
    "assigned_not_in_support",
    "assigned_unknown_simulacrum",
    "assigned_without_fixed",
    "beta_nan",
    "duplicate_agent",
    "duplicate_agent_after_count",
    "duplicate_probe",
    "duplicate_simulacrum",
    "fixed_without_assigned",
    "n_threads_float",
    "opening_speaker_is_agent",
    "prior_and_prior_tags",
    "prior_tags_unknown_tag",
    "prior_unknown_simulacrum",
    "prior_zero_sum",
    "probe_choice_missing_options",
    "probe_likert_missing_scale",
    "probe_numeric_mixture",
    "probe_assigned_not_fixed",
    "probe_options_on_numeric",
    "probe_scale_without_kind",
    "probe_turn_duplicate_from_end",
    "probe_turn_negative",
    "probe_turn_out_of_range",
    "probe_unknown_agent",
    "regeneration_turn_negative",
    "regeneration_turn_out_of_range",
    "regeneration_turn_zero",
    "regeneration_unknown_agent",
    "scheduler_bad",
    "steer_layers_reversed",
    "steer_vector_missing",  # a file's existence
}


def validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json_schema(kind)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# --------------------------------------------------------------------------- JSON Schemas


@pytest.mark.parametrize("path", VALID_SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_pass_their_json_schema(path: Path):
    errors = list(validator("scenario").iter_errors(tomllib.loads(path.read_text())))
    assert not errors, [error.message for error in errors]


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_shipped_vector_files_pass_their_json_schema(path: Path):
    kind = "role_set" if path.stem == "roles" else "vector_spec"
    errors = list(validator(kind).iter_errors(tomllib.loads(path.read_text())))
    assert not errors, [error.message for error in errors]


def test_goal_guarding_json_schema_rejects_what_it_can_state():
    data = tomllib.loads((ROOT / "scenarios" / "goal_guarding" / "battery.toml").read_text())
    data["channels"]["memroy"] = data["channels"].pop("memory")
    data["designs"]["quick"]["templates"] = 0
    data["designs"]["full"]["peers"].append("rival")
    errors = {tuple(e.absolute_path) for e in validator("goal_guarding").iter_errors(data)}
    assert errors == {
        ("channels",),
        ("designs", "quick", "templates"),
        ("designs", "full", "peers", 4),
    }


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_scenarios_fail_the_json_schema_where_it_can_say_why(path: Path):
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError:
        return  # not TOML: no schema to check against
    errors = list(validator("scenario").iter_errors(data))
    assert bool(errors) == (path.stem not in BEYOND_JSON_SCHEMA), [e.message for e in errors]


def test_schema_command_prints_each_kind(capsys):
    for kind in KINDS:
        assert main(["schema", kind]) == 0
        schema = json.loads(capsys.readouterr().out)
        assert schema == json_schema(kind)
        assert schema["$schema"].startswith("http://json-schema.org/draft-07")
        assert schema["additionalProperties"] is False
    model = json_schema("scenario")["definitions"]["DialogueSpec"]["properties"]["turns"]
    assert model["minimum"] == 1 and model["description"]  # field docstrings for editors


def test_schema_command_lists_the_kinds(capsys):
    assert main(["schema", "scenari"]) == 2
    assert "did you mean 'scenario'?" in capsys.readouterr().err
    assert main(["schema", "battery"]) == 2
    err = capsys.readouterr().err
    assert "expected one of " + ", ".join(repr(kind) for kind in KINDS) in err
    with pytest.raises(SystemExit):
        main(["schema", "--help"])
    assert ", ".join(KINDS) in " ".join(capsys.readouterr().out.split())


# --------------------------------------------------------------------------- a file kind


class Item(SchemaModel):
    """An item of the toy kind."""

    name: Name
    """Its name."""
    weight: Annotated[float, Field(gt=0, le=1), Expect(noun="weight")] = 1.0
    """Its weight."""


class Toy(SchemaModel):
    """A toy file kind, written as the guide in ``simulacra.schema`` says."""

    size: Count = 1
    """How many."""
    mode: Literal["fast", "slow"] = "fast"
    """How."""
    items: Annotated[Array[Item], Field(min_length=1), Unique("item name", "name")]
    """The items."""
    label: Text = "toy"
    """A label."""
    favourite: str | None = None
    """An item's name."""

    @field_validator("items")
    @classmethod
    def _remember(cls, items: tuple[Item, ...], info: ValidationInfo) -> tuple[Item, ...]:
        facts(info)["names"] = [item.name for item in items]
        return items

    @field_validator("favourite")
    @classmethod
    def _known(cls, name: str | None, info: ValidationInfo) -> str | None:
        names = facts(info).get("names")
        if name is not None and names is not None and name not in names:
            fail([((), unknown_name("item", name, names))])
        return name


def issues(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as info:
        validate(Toy, data, "toy.toml")
    assert all(issue.source == "toy.toml" for issue in info.value.issues)
    return [(issue.path, issue.message) for issue in info.value.issues]


def test_a_kind_gets_every_issue_located_worded_and_in_file_order():
    data = {
        "mode": "quick",
        "sise": 2,
        "items": [{"name": "a b", "weight": 0}, {"name": "b", "weight": "1"}],
        "label": " ",
    }
    assert issues(data) == [
        ("mode", "must be one of 'fast', 'slow'; got 'quick'"),
        ("sise", "unknown key 'sise'; did you mean 'size'?"),
        ("items[0].name", "invalid name \"a b\": use only letters, digits, '_' and '-'"),
        ("items[0].weight", "weight must be in (0, 1], got 0"),
        ("items[1].weight", 'expected a number, got string "1"'),
        ("label", "must not be empty"),
    ]


def test_strict_values_and_one_issue_per_mistake():
    items = [{"name": "a"}]
    assert issues({"size": True, "items": items}) == [
        ("size", "expected an integer, got boolean true")
    ]
    assert issues({"size": 0, "items": items}) == [("size", "must be >= 1, got 0")]
    # a misspelt required key is one mistake, not also a missing key
    assert issues({"items": [{"nmae": "a"}]}) == [
        ("items[0].nmae", "unknown key 'nmae'; did you mean 'name'?")
    ]
    assert issues({"items": {"name": "a"}}) == [
        ("items", "expected an array of tables ([[items]]), got a single table")
    ]
    assert issues({"items": []}) == [("items", "must have at least 1 entry, got 0")]
    assert validate(Toy, {"items": items}, "toy.toml").items[0].weight == 1.0


def test_references_are_checked_when_what_they_name_is_valid():
    two = [{"name": "pear"}, {"name": "plum"}]
    assert issues({"items": two, "favourite": "peer"}) == [
        ("favourite", "unknown item 'peer'; did you mean 'pear'?")
    ]
    assert issues({"items": [*two, {"name": "pear"}]}) == [
        ("items[2].name", "duplicate item name 'pear' (also items[0])")
    ]
    # the items are invalid: the reference to them is not checked (no cascade)
    assert issues({"items": [{"name": 3}], "favourite": "peer"}) == [
        ("items[0].name", "expected a string, got integer 3")
    ]


def test_read_toml_locates_the_mistake(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text("a = 1\nb = = 2\n")
    with pytest.raises(ScenarioError) as info:
        read_toml(path)
    (issue,) = info.value.issues
    assert issue.source == str(path) and issue.path == ""
    assert issue.message.startswith("invalid TOML") and "line 2" in issue.message
    with pytest.raises(ScenarioError, match="is a directory"):
        read_toml(tmp_path)
    with pytest.raises(ScenarioError, match="expected a table at the top level"):
        validate(Toy, [1], "toy.toml")


# --------------------------------------------------------------------------- every shipped file


def shipped_files() -> list[tuple[str, Path]]:
    """Every file under scenarios/ whose kind is registered, with its kind."""
    found = [("scenario", path) for path in sorted((ROOT / "scenarios").glob("*.toml"))]
    found += [("role_set" if p.stem == "roles" else "vector_spec", p) for p in VECTOR_FILES]
    for battery in sorted((ROOT / "scenarios").rglob("battery.toml")):
        data = tomllib.loads(battery.read_text())
        found.append((data["kind"], battery))
        if data["kind"] == "replication":
            found.append(("population", battery.parent / data.get("population", "population.toml")))
            effects = battery.parent / data.get("effects", "effects")
            found += [("effect", path) for path in sorted(effects.glob("*.toml"))]
        if data["kind"] == "goal_guarding":
            tasks = sorted((battery.parent / "tasks").glob("*.toml"))
            found += [("goal_guarding_task", path) for path in tasks]
    return [(kind, path) for kind, path in found if kind in KINDS]


SHIPPED = shipped_files()


@pytest.mark.parametrize(
    ("kind", "path"), SHIPPED, ids=[str(p.relative_to(ROOT)) for _, p in SHIPPED]
)
def test_every_shipped_file_passes_its_kinds_json_schema(kind: str, path: Path):
    errors = list(validator(kind).iter_errors(tomllib.loads(path.read_text())))
    assert not errors, [error.message for error in errors]


def test_every_shipped_kind_is_checked():
    kinds = {kind for kind, _ in SHIPPED}
    expected = {"scenario", "replication", "effect", "population"}
    assert expected | {"goal_guarding", "goal_guarding_task"} <= kinds
