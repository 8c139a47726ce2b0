"""The motivated-reasoning battery's files: valid as shipped, and correct.

The covariance stimuli are checked against the numbers they print: every condition shows
Kahan et al.'s counts, and the option coded 1 is the conclusion those counts support.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from simulacra.analysis.congruence import EVIDENCE_DESIGN, KAHAN_DESIGN
from simulacra.analysis.moderators import Moderator
from simulacra.batteries.replication import load
from simulacra.batteries.replication.congruence_tables import congruence_tasks

ROOT = Path(__file__).resolve().parents[2]
BATTERY = ROOT / "scenarios" / "motivated_reasoning"
ML1_POPULATION = ROOT / "scenarios" / "replication" / "many_labs_1" / "population.toml"
COVARIANCE = ("covariance_detection", "covariance_debiased", "covariance_capped")


@pytest.fixture(scope="module")
def battery():
    return load(BATTERY)


def effect_file(name: str) -> dict:
    return tomllib.loads((BATTERY / "effects" / f"{name}.toml").read_text())


def parse_table(stimulus: str) -> tuple[list[str], list[tuple[str, int, int]]]:
    """The column headings and the rows (label, first count, second count) of a stimulus."""
    lines = [line for line in stimulus.splitlines() if re.search(r"\s{3,}", line)]
    headings = re.split(r"\s{2,}", lines[0].strip())
    rows = []
    for line in lines[1:]:
        label, first, second = re.split(r"\s{2,}", line.strip())
        rows.append((label, int(first), int(second)))
    return headings, rows


def test_the_battery_validates_as_shipped(battery):
    assert {e.name for e in battery.effects} == {*COVARIANCE, "evidence_evaluation"}
    assert battery.participants == 400
    assert battery.source.startswith("Kahan et al. (2017)")
    # exploratory effects: no main target
    for effect in battery.effects:
        assert effect.exploratory and effect.target is None
        assert "target" not in effect_file(effect.name)


def test_condition_names_are_the_congruence_designs(battery):
    for name in COVARIANCE:
        assert battery.effect(name).condition_names == tuple(KAHAN_DESIGN.conditions)
    assert battery.effect("evidence_evaluation").condition_names == tuple(
        EVIDENCE_DESIGN.conditions
    )


@pytest.mark.parametrize("name", COVARIANCE)
def test_every_covariance_condition_shows_the_counts_and_codes_the_supported_conclusion(
    battery, name
):
    effect = battery.effect(name)
    (code,) = effect.steps
    for condition in effect.conditions:
        headings, rows = parse_table(condition.stimulus)
        assert [(first, second) for _, first, second in rows] == [(223, 75), (107, 21)]
        good = 0 if headings[0] in ("Rash improved", "Crime fell") else 1
        assert headings[1 - good] in ("Rash worse", "Crime rose")
        share = [(row[1 + good]) / (row[1] + row[2]) for row in rows]
        works = share[0] > share[1]  # the treated row did better
        frame, result = KAHAN_DESIGN.conditions[condition.name]
        assert result == ("works" if works else "backfires")
        assert frame == ("neutral" if "Rash" in headings[0] else "identity")
        (coded,) = code.one[condition.name]
        assert ("improve" in coded or "fall" in coded) == works, (condition.name, coded)


def test_the_debiased_task_is_the_plain_one_after_an_instruction(battery):
    plain, debiased = (battery.effect(name) for name in COVARIANCE[:2])
    for a, b in zip(plain.conditions, debiased.conditions, strict=True):
        instruction, rest = b.stimulus.split("\n\n", 1)
        assert rest == a.stimulus
        assert "accurate" in instruction and "numbers" in instruction
    assert plain.steps == debiased.steps
    assert (plain.treatment, plain.control) == (debiased.treatment, debiased.control)
    a, b = (effect_file(name) for name in COVARIANCE[:2])
    assert a["moderators"] == b["moderators"]
    assert a["items"] == b["items"] and a["scoring"] == b["scoring"]


def test_the_capped_task_is_the_plain_one_under_the_identity_lever(battery):
    plain, capped = battery.effect("covariance_detection"), battery.effect("covariance_capped")
    assert plain.conditions == capped.conditions and plain.steps == capped.steps
    assert plain.intervention is None
    lever = capped.intervention
    assert lever is not None and lever.steer is None and lever.label == "capped"
    assert lever.cap.spec == ROOT / "scenarios" / "vectors" / "partisan.toml"
    assert lever.cap.band == "neutral" and lever.cap.blocks == (8, 10, 12)
    a, b = effect_file("covariance_detection"), effect_file("covariance_capped")
    assert a["moderators"] == b["moderators"] and a["items"] == b["items"]
    (task, _) = congruence_tasks(battery.effects)
    assert [(name, lever) for name, lever, _ in task.effects] == [
        ("covariance_capped", "capped"),
        ("covariance_debiased", "debiased"),
        ("covariance_detection", "plain"),
    ]


def test_the_evidence_conditions_differ_only_in_the_finding(battery):
    first, second = (c.stimulus.split() for c in battery.effect("evidence_evaluation").conditions)
    changed = [(a, b) for a, b in zip(first, second, strict=True) if a != b]
    assert changed == [("rose", "fell"), ("increased", "reduced")]


def test_every_moderator_names_population_labels(battery):
    for name in (*COVARIANCE, "evidence_evaluation"):
        tables = effect_file(name)["moderators"]
        assert battery.effect(name).moderators == tuple(map(Moderator.from_table, tables))
        for moderator in battery.effect(name).moderators:
            attribute = battery.population.attribute(moderator.attribute)
            for labels in moderator.levels.values():
                assert set(labels) <= set(attribute.labels), (name, labels)
            assert moderator.reference_level == "republican"
            assert moderator.compared_levels == ("democrat",)
    target = battery.effect("evidence_evaluation").moderators[0].target
    assert target is not None and target.d_difference == pytest.approx(1.01)
    assert target.ci is None and "Ditto" in target.source


def test_a_moderator_on_an_ml1_effect_is_one_line():
    line = (
        'moderators = [{ attribute = "politics", levels = { liberal = ["very liberal", '
        '"liberal"], conservative = ["conservative", "very conservative"] } }]'
    )
    (table,) = tomllib.loads(line)["moderators"]
    moderator = Moderator.from_table(table)
    labels = tomllib.loads(ML1_POPULATION.read_text())["attributes"]["politics"]["labels"]
    assert {label for group in moderator.levels.values() for label in group} <= set(labels)
    assert moderator.level_of("moderate") is None


def test_the_population_is_a_us_sample_with_explicit_party_identity(battery):
    population = battery.population
    politics = population.attribute("politics")
    assert politics.labels == (
        "liberal Democrat",
        "moderate Democrat",
        "independent",
        "moderate Republican",
        "conservative Republican",
    )
    partisans = sum(politics.weights) - politics.weights[2]
    assert partisans / sum(politics.weights) > 0.8
    model = battery.population_model(range(30))
    for participant in model.participants:
        assert "living in the United States" in participant.persona
        assert f"Politically, you are {participant.attributes['politics']}." in participant.persona
