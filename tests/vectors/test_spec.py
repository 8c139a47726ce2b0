"""Extraction specs and role sets: the shipped files, and errors that name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulacra.errors import ScenarioError
from simulacra.vectors import ExtractionSpec, RoleSet, load_role_set, load_spec

FILES = Path(__file__).resolve().parents[2] / "scenarios" / "vectors"


@pytest.mark.parametrize("name", ["pirate", "physicist", "guarding"])
def test_shipped_specs_load(name):
    spec = load_spec(FILES / f"{name}.toml")
    assert isinstance(spec, ExtractionSpec)
    assert spec.name == name
    assert len(spec.pairs) == 5
    assert len(spec.questions.extraction) + len(spec.questions.evaluation) >= 12
    assert spec.style.positive and spec.style.negative
    assert all(1 <= b < 30 for b in spec.layers)  # steerable blocks of SmolLM2
    assert len(spec.prompts_sha256()) == 64


def test_shipped_role_set_spans_persona_space():
    roles = load_role_set(FILES / "roles.toml")
    assert isinstance(roles, RoleSet)
    assert len(roles.roles) >= 60
    assert all(2 <= len(role.prompts) <= 3 for role in roles.roles)
    assert "" in roles.default.prompts and 4 <= len(roles.default.prompts) <= 5
    assert len(roles.questions) >= 24
    names = {role.name for role in roles.roles}
    assert {"evaluator", "consultant", "analyst", "bard", "ghost", "oracle"} <= names
    assert {"trickster", "leviathan"} <= names
    assert roles.role("bard").prompts
    longest = max(len(p) for role in roles.roles for p in role.prompts)
    assert longest <= 120  # short prompts keep role x prompt x question decodes cheap
    with pytest.raises(KeyError):
        roles.role("nobody")


def test_prompts_hash_ignores_the_description_but_not_the_prompts():
    spec = load_spec(FILES / "pirate.toml")
    changed_text = spec.model_copy(update={"description": "other"})
    assert changed_text.prompts_sha256() == spec.prompts_sha256()
    fewer = spec.model_copy(update={"pairs": spec.pairs[:4]})
    assert fewer.prompts_sha256() != spec.prompts_sha256()


def test_specs_are_frozen():
    spec = load_spec(FILES / "pirate.toml")
    with pytest.raises(Exception, match="frozen"):
        spec.name = "other"


BAD_SPEC = """
name = "bad name"
method = "median"
layers = [3, -1, 3]
colour = "red"

[[pairs]]
positive = "You are a pirate."

[[pairs]]
positive = "   "
negative = "You are an assistant."

[questions]
extraction = ["Same?"]
evaluation = ["Same?"]
"""


def issues_of(path, loader) -> dict[str, str]:
    with pytest.raises(ScenarioError) as info:
        loader(path)
    assert all(issue.source == str(path) for issue in info.value.issues)
    return {issue.path: issue.message for issue in info.value.issues}


def test_every_problem_of_a_spec_is_reported_with_its_path(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD_SPEC)
    issues = issues_of(path, load_spec)
    assert issues["name"].startswith('invalid name "bad name"')
    assert "mean_diff" in issues["method"]
    assert issues["layers[1]"] == "must be >= 0, got -1"
    assert issues["colour"].startswith("unknown key 'colour'; expected one of 'name'")
    assert issues["pairs[0].negative"] == "missing required key 'negative'"
    assert issues["pairs[1].positive"] == "must not be empty"
    assert "both extraction and evaluation" in issues["questions.evaluation[0]"]
    assert "pairs" not in issues  # the broken pairs are blamed, not the list


def test_duplicate_layers_and_roles_are_reported(tmp_path):
    spec = tmp_path / "dup.toml"
    spec.write_text(
        'name = "x"\nlayers = [4, 4]\n[[pairs]]\npositive = "a"\nnegative = "b"\n'
        '[questions]\nextraction = ["q", "q"]\nevaluation = ["r"]\n'
    )
    issues = issues_of(spec, load_spec)
    assert issues["layers[1]"] == "duplicate layer 4 (also layers[0])"
    assert "duplicate question 'q'" in issues["questions.extraction[1]"]
    roles = tmp_path / "roles.toml"
    roles.write_text(
        'questions = ["q"]\n[default]\nprompts = ["", ""]\n'
        + "".join(f'[[roles]]\nname = "{n}"\nprompts = ["p"]\n' for n in ("a", "b", "a"))
    )
    issues = issues_of(roles, load_role_set)
    assert "duplicate role name 'a'" in issues["roles[2].name"]
    assert "duplicate prompt ''" in issues["default.prompts[1]"]
    reserved = tmp_path / "reserved.toml"
    reserved.write_text(
        'questions = ["q"]\n[default]\nprompts = [""]\n'
        + "".join(f'[[roles]]\nname = "{n}"\nprompts = ["p"]\n' for n in ("a", "b", "default"))
    )
    assert "reserved" in issues_of(reserved, load_role_set)["roles[2].name"]


def test_role_set_needs_roles_questions_and_a_default(tmp_path):
    path = tmp_path / "roles.toml"
    path.write_text('[[roles]]\nname = "a"\nprompts = []\n')
    issues = issues_of(path, load_role_set)
    assert issues["default"] == "missing required key 'default'"
    assert issues["questions"] == "missing required key 'questions'"
    assert "at least 3" in issues["roles"]
    assert "at least 1" in issues["roles[0].prompts"]


def test_unreadable_files_are_scenario_errors(tmp_path):
    assert issues_of(tmp_path / "missing.toml", load_spec) == {"": "file not found"}
    broken = tmp_path / "broken.toml"
    broken.write_text("name = ")
    (message,) = issues_of(broken, load_spec).values()
    assert message.startswith("invalid TOML")
