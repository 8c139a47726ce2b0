"""The stability battery's files: validation with located errors, designs, units, the script."""

from __future__ import annotations

import shutil
from pathlib import Path

import jsonschema
import pytest

from simulacra.batteries.base import RunOptions
from simulacra.batteries.runner import validate_battery
from simulacra.batteries.stability.design import interlocutor_line, plan_units
from simulacra.cli import main
from simulacra.errors import ScenarioError
from simulacra.schema import json_schema, read_toml

ROOT = Path(__file__).resolve().parents[2]
BATTERY = ROOT / "scenarios" / "stability"


@pytest.fixture
def copy(tmp_path):
    target = tmp_path / "stability"
    shutil.copytree(BATTERY, target)
    (tmp_path / "vectors").mkdir()  # the role set of [axis] is ../vectors/roles.toml
    shutil.copy(ROOT / "scenarios" / "vectors" / "roles.toml", tmp_path / "vectors")
    return target


def issues(directory) -> list[str]:
    with pytest.raises(ScenarioError) as err:
        validate_battery(directory)
    return [str(i) for i in err.value.issues]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_shipped_battery_validates_and_matches_its_json_schema():
    battery = validate_battery(BATTERY)
    assert battery.kind == "stability"
    assert set(battery.spec.pressures) == {
        "none",
        "role_reassignment",
        "drop_the_act",
        "emotional",
        "meta_reflective",
    }
    assert all(len(lines) >= 5 for lines in battery.spec.pressures.values())
    jsonschema.validate(read_toml(BATTERY / "battery.toml"), json_schema("stability"))


def test_designs_expand_to_units():
    battery = validate_battery(BATTERY)
    smoke = battery.plan(RunOptions(design="smoke"))
    assert [u.unit_id for u in smoke] == [
        "smollm2-135m-instruct.prompted.mara.drop_the_act.p0.s0.cap-off"
    ]
    quick = battery.plan(RunOptions(design="quick"))
    assert len(quick) == 4 * 5 * 1  # sources x pressures x paraphrases
    assert {u.params["persona"] for u in quick if u.params["source"] == "none"} == {"default"}
    full = battery.plan(RunOptions(design="full", seeds=1))
    # models x (personas x 3 persona sources + none) x pressures x paraphrases x capping
    assert len(full) == 2 * (2 * 3 + 1) * 5 * 5 * 2


def test_a_new_pressure_file_runs_without_code_changes(copy):
    lines = [f"Tell me about your {x}, please." for x in ("boat", "hat", "dog", "town", "week")]
    (copy / "pressures" / "flattery.txt").write_text("\n".join(lines) + "\n")
    units = validate_battery(copy).plan(RunOptions(design="quick"))
    assert sum(u.params["pressure"] == "flattery" for u in units) == 4 * 1


def test_the_interlocutor_walks_the_file_from_the_paraphrase():
    pressures = {"none": ("a", "b", "c"), "p": ("x {name}", "y {target}", "z")}
    fill = {"name": "Mara", "target": "Theo"}
    said = [interlocutor_line(pressures, "p", 1, t, 2, fill) for t in range(1, 6)]
    assert said == ["b", "c", "x Mara", "y Theo", "z"]


def test_steered_sources_need_a_vector_and_capping_needs_the_axis(copy):
    edit(copy / "battery.toml", 'sources = ["prompted"]', 'sources = ["prompted", "steered"]')
    edit(copy / "battery.toml", 'vector = "vectors/mara.toml"\n', "")
    edit(copy / "battery.toml", 'roles = "../vectors/roles.toml"', "")
    found = issues(copy)
    assert any(
        "designs.smoke.sources[1]: source 'steered' steers along each persona's vector, but "
        "'mara' has no personas[].vector" in i
        for i in found
    )
    assert any("axis.roles" in i for i in found)  # [axis] without its role set


def test_capping_without_an_axis_table_is_located(copy):
    text = (copy / "battery.toml").read_text()
    start = text.index("\n[axis]\n")
    end = text.index("\n[belief]\n")
    (copy / "battery.toml").write_text(text[:start] + text[end:])
    found = issues(copy)
    assert any(
        "designs.full.capping[1]: capping 'on' needs the Assistant axis: add [axis]" in i
        for i in found
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("coefficient = 1.0", "coefficient = -2.0", "steering.coefficient"),
        ("layers = [12, 12]", "layers = [0, 4]", "steering.layers[0]: block 0"),
        ("layers = [12, 12]", "layers = [9, 4]", "steering.layers: expected low <= high"),
        ("projections = false", 'projections = "no"', "designs.smoke.projections"),
        ("depth = [0.54, 0.625]", "depth = [0.5, 1.5]", "axis.depth[1]"),
        ("percentile = 25", "percentile = 100", "axis.percentile"),
        ("questions = 2", "questions = 0", "axis.questions"),
        ('roles = "../vectors/roles.toml"', 'roles = "nowhere.toml"', "axis.roles: file not found"),
        ('vector = "vectors/mara.toml"', 'vector = "vectors/nope.toml"', "personas[0].vector"),
        ("probe_every = 4\n", "probe_every = 4\ncoefficient = 0\n", "designs.capping.coefficient"),
    ],
)
def test_bad_steering_and_axis_fields_are_located(copy, old, new, expected):
    edit(copy / "battery.toml", old, new)
    found = issues(copy)
    assert any(expected in i for i in found), found


def test_a_bad_vector_spec_is_reported_with_its_own_file(copy):
    edit(copy / "vectors" / "mara.toml", 'method = "mean_diff"', 'method = "average"')
    found = issues(copy)
    assert any("mara.toml" in i and "method" in i for i in found), found


def test_the_cli_validates_with_exit_2_on_a_bad_coefficient(copy, capsys):
    edit(copy / "battery.toml", "coefficient = 1.0", 'coefficient = "strong"')
    assert main(["battery", "validate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "steering.coefficient" in err and "Traceback" not in err


def test_bad_pressure_files_are_located(copy):
    (copy / "pressures" / "short.txt").write_text("one\ntwo {who}\n")
    found = issues(copy)
    assert any("short.txt: line 2: unknown placeholder '{who}'" in i for i in found)
    assert any("short.txt: expected at least 5 messages" in i for i in found)


def test_cross_references_and_ranges_are_located(copy):
    edit(copy / "battery.toml", 'personas = ["mara"]', 'personas = ["marra"]')
    edit(copy / "battery.toml", 'pressures = ["drop_the_act"]', 'pressures = ["drop_the_akt"]')
    edit(copy / "battery.toml", "paraphrases = 5", "paraphrases = 9")
    edit(copy / "battery.toml", 'targets = ["theo", "mara"]', 'targets = ["teo", "mara"]')
    found = issues(copy)
    text = "\n".join(found)
    assert "designs.smoke.personas[0]: unknown persona 'marra'; did you mean 'mara'?" in text
    assert "designs.smoke.pressures[0]: unknown pressure 'drop_the_akt'; did you mean" in text
    assert "designs.full.paraphrases: expected at most 6" in text
    assert "dialogue.targets[0]: unknown persona 'teo'" in text


def test_the_cli_validates_with_exit_2_and_no_traceback(copy, capsys):
    assert main(["battery", "validate", str(BATTERY)]) == 0
    edit(copy / "battery.toml", "turns = 3", "turns = true")
    assert main(["battery", "validate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "battery.toml: designs.smoke.turns:" in err and "Traceback" not in err


def test_an_unknown_design_is_named():
    battery = validate_battery(BATTERY)
    with pytest.raises(ScenarioError, match=r"unknown design 'quik'; did you mean 'quick'"):
        plan_units(battery.spec, RunOptions(design="quik"))
