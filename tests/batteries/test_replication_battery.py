"""The replication battery without a model: files, validation, population, plan, scoring."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
import pytest
from replication_frames import answer_row

from simulacra.batteries import RunOptions
from simulacra.batteries.replication import (
    Participant,
    composition,
    load,
    score_frame,
    summarize,
)
from simulacra.batteries.replication import interview as interview_module
from simulacra.batteries.replication.interview import answer_seed, interview
from simulacra.errors import ScenarioError
from simulacra.instruments import (
    INTERVIEWER,
    Answer,
    Choice,
    FreeText,
    Likert,
    Numeric,
    redraw,
)
from simulacra.simulation.simulacrum import Simulacrum

ROOT = Path(__file__).resolve().parents[2]
ML1 = ROOT / "scenarios" / "replication" / "many_labs_1"
ML1_EFFECTS = {
    "allowed_forbidden",
    "anchoring_babies",
    "anchoring_chicago",
    "anchoring_distance",
    "anchoring_everest",
    "category_scales",
    "currency_priming",
    "flag_priming",
    "gain_loss_framing",
    "gamblers_fallacy",
    "imagined_contact",
    "quote_attribution",
    "reciprocity",
    "sunk_costs",
}


@pytest.fixture(scope="module")
def battery():
    return load(ML1)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "ml1"
    shutil.copytree(ML1, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def issues_of(directory: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(ScenarioError) as info:
        load(directory)
    return [(Path(i.source).name, i.path, i.message) for i in info.value.issues]


# --------------------------------------------------------------------------- the ML1 files


def test_ml1_battery_covers_every_text_runnable_effect(battery):
    assert {e.name for e in battery.effects} == ML1_EFFECTS
    tags = {e.name: set(e.tags) for e in battery.effects}
    assert {"negative_control", "text_adaptation"} <= tags["flag_priming"]
    assert {"negative_control", "text_adaptation"} <= tags["currency_priming"]
    assert "weak_control" in tags["imagined_contact"]
    assert "us_centric" in tags["reciprocity"]
    assert battery.effect("flag_priming").only == {"country": ("US",)}


def test_ml1_targets_and_contrasts_follow_the_notes(battery):
    allowed = battery.effect("allowed_forbidden")
    assert allowed.target.d == 0.47 and allowed.target.published_d == 1.96
    assert (allowed.treatment, allowed.control) == ("allow", "forbid")
    code = allowed.steps[0]
    assert code.one == {"allow": frozenset({"No"}), "forbid": frozenset({"Yes"})}
    gambler = battery.effect("gamblers_fallacy")
    assert [type(s).__name__ for s in gambler.steps] == ["Sqrt", "Drop"]
    assert gambler.steps[1].at_or_above == 25
    anchor = battery.effect("anchoring_everest")
    assert [type(s).__name__ for s in anchor.steps] == ["Drop", "Rank"]
    assert (anchor.steps[0].at_or_below, anchor.steps[0].at_or_above) == (2000, 45500)
    quote = battery.effect("quote_attribution")
    assert quote.target.original_d is None and quote.steps[0].points == 9
    for effect in battery.effects:
        low, high = effect.target.ci
        assert low <= effect.target.d <= high, effect.name


def test_conditions_build_their_instruments(battery):
    scales = battery.effect("category_scales")
    low, high = (scales.measures(c)[0] for c in ("low", "high"))
    assert isinstance(low, Choice) and low.options[-1] == "more than 2.5"
    assert high.options[0] == "up to 2.5"
    allowed = battery.effect("allowed_forbidden")
    assert "forbid public speeches" in allowed.measures("forbid")[0].question
    assert allowed.measures("forbid")[0].question.startswith("The next question")
    reciprocity = battery.effect("reciprocity")
    assert reciprocity.lead_ins("first") == ()
    (lead,) = reciprocity.lead_ins("second")
    assert lead.name == "reciprocity.north_korea" and lead.question.startswith("The next")
    # With a lead-in the stimulus goes with it, not with the items.
    assert not reciprocity.measures("second")[0].question.startswith("The next")
    contact = battery.effect("imagined_contact")
    assert isinstance(contact.lead_ins("contact")[0], FreeText)
    assert all(isinstance(m, Likert) for m in contact.measures("control"))
    assert isinstance(battery.effect("anchoring_distance").measures("low")[0], Numeric)


# --------------------------------------------------------------------------- validation


def test_validation_names_file_field_and_suggests(copy):
    edit(copy / "effects" / "sunk_costs.toml", "title =", "tittle =")
    edit(copy / "effects" / "anchoring_babies.toml", 'step = "rank"', 'step = "rnak"')
    edit(
        copy / "effects" / "gain_loss_framing.toml", 'one = ["Program B"]', 'one = ["Programme B"]'
    )
    edit(
        copy / "effects" / "quote_attribution.toml",
        'treatment = "washington"',
        'treatment = "washingtn"',
    )
    edit(copy / "population.toml", "You are a {age}", "You are a {agee}")
    edit(copy / "battery.toml", 'mode = "sampled"', 'mode = "sampeld"')
    issues = issues_of(copy)
    expected = [
        ("sunk_costs.toml", "tittle", "unknown key 'tittle'; did you mean 'title'?"),
        ("anchoring_babies.toml", "scoring[1].step", "got 'rnak' (did you mean 'rank'?)"),
        ("gain_loss_framing.toml", "scoring[0].one", "did you mean 'Program B'?"),
        ("quote_attribution.toml", "contrast.treatment", "did you mean 'washington'?"),
        ("population.toml", "template", "unknown attribute '{agee}'; did you mean '{age}'?"),
        ("battery.toml", "mode", "got 'sampeld' (did you mean 'sampled'?)"),
    ]
    # the misspelt key is the one mistake: no "missing title" besides it
    assert not any(p == "title" for _, p, _ in issues)
    for name, path, message in expected:
        assert any(n == name and p == path and message in m for n, p, m in issues), (
            f"{name}: {path}: {message} not in {issues}"
        )
    assert all(source.endswith(".toml") for source, _, _ in issues)


def test_validation_of_items_conditions_and_steps(copy):
    effects = copy / "effects"
    edit(effects / "sunk_costs.toml", "points = 9", 'points = "nine"')
    edit(effects / "category_scales.toml", 'high = ["up to 2.5"', 'hihg = ["up to 2.5"')
    edit(effects / "quote_attribution.toml", 'step = "reverse"', 'step = "code"\none = ["Yes"]')
    code_step = '[[scoring]]\nstep = "code"\nitem = "us"\none = ["Yes"]\n'
    edit(effects / "reciprocity.toml", code_step, "")
    edit(effects / "gamblers_fallacy.toml", "at_or_above = 25", "at_or_above = -1\nat_or_below = 3")
    edit(effects / "flag_priming.toml", 'country = ["US"]', 'country = ["USA"]')
    edit(
        effects / "currency_priming.toml", "[[conditions]]", "[only]\nnation = []\n\n[[conditions]]"
    )
    issues = issues_of(copy)
    expected = [
        ("sunk_costs.toml", "items[0].points", 'expected an integer, got string "nine"'),
        (
            "category_scales.toml",
            "items[0].options.hihg",
            "unknown condition 'hihg'; did you mean 'high'?",
        ),
        ("category_scales.toml", "items[0].options", "missing a value for condition 'high'"),
        ("quote_attribution.toml", "scoring[0].item", "'agreement' is not an uncoded choice item"),
        ("reciprocity.toml", "contrast.score", "'us' is an uncoded choice item; add a 'code' step"),
        ("gamblers_fallacy.toml", "scoring[1].at_or_above", "must be above at_or_below (3)"),
        ("flag_priming.toml", "only.country[0]", "unknown label 'USA'; did you mean 'US'?"),
        ("currency_priming.toml", "only.nation", "must have at least 1 entry, got 0"),
    ]
    for name, path, message in expected:
        assert any(n == name and p == path and message in m for n, p, m in issues), (
            f"{name}: {path}: {message} not in {issues}"
        )


def test_validation_of_unreadable_and_missing_files(copy, tmp_path):
    (copy / "effects" / "broken.toml").write_text("title = [unclosed\n")
    with pytest.raises(ScenarioError) as info:
        load(copy)
    (issue,) = info.value.issues
    assert issue.source.endswith("broken.toml") and "invalid TOML" in issue.message
    (copy / "effects" / "broken.toml").unlink()
    (copy / "population.toml").unlink()
    with pytest.raises(ScenarioError, match=r"population.toml: file not found"):
        load(copy)
    with pytest.raises(ScenarioError, match=r"needs a battery\.toml"):
        load(tmp_path / "nowhere")


def test_plan_options_are_checked_and_named(battery):
    with pytest.raises(ScenarioError) as info:
        battery.plan(RunOptions(participants=2, mode="expectd", design="quick", seeds=0))
    paths = {i.path: i.message for i in info.value.issues}
    assert set(paths) == {"--participants", "--mode", "--design", "--seeds"}
    assert "did you mean 'expected'?" in paths["--mode"]


# --------------------------------------------------------------------------- population


def test_participants_are_agents_with_simulacra_and_stable_draws(battery):
    population = battery.population_model(range(12))
    assert isinstance(population, mesa.Model)
    people = population.participants
    assert all(isinstance(p, Participant) and isinstance(p, mesa.Agent) for p in people)
    assert all(isinstance(p.simulacrum, Simulacrum) for p in people)
    assert people[3].persona.startswith("You are a ")
    assert "{" not in people[3].persona
    assert sorted(people[3].order) == sorted(ML1_EFFECTS)
    assert len({p.order for p in people}) > 1  # each has its own order
    alone = battery.population_model([7]).participants[0]
    assert (alone.persona, alone.order, alone.conditions) == (
        people[7].persona,
        people[7].order,
        people[7].conditions,
    )
    again = battery.population_model(range(12)).frame()
    pd.testing.assert_frame_equal(population.frame(), again)


def test_conditions_do_not_depend_on_the_other_effects(battery):
    from simulacra.batteries.replication.population import Population

    effects = {e.name: e.condition_names for e in battery.effects}
    fewer = {k: v for k, v in effects.items() if k != "sunk_costs"}
    a = Population(battery.population, effects, range(20)).participants
    b = Population(battery.population, fewer, range(20)).participants
    for x, y in zip(a, b, strict=True):
        assert {k: x.conditions[k] for k in fewer} == y.conditions
        assert x.persona == y.persona


def test_composition_shares_follow_the_weights(battery):
    frame = battery.population_model(range(1000)).frame()
    table = composition(frame, battery.population)
    assert set(table["attribute"]) == {a.name for a in battery.population.attributes}
    for _, group in table.groupby("attribute"):
        assert group["count"].sum() == 1000
    us = table[(table["attribute"] == "country") & (table["label"] == "US")]["share"].item()
    assert us == pytest.approx(0.785, abs=0.04)
    conditions = pd.Series(
        [p.conditions["sunk_costs"] for p in battery.population_model(range(400)).participants]
    )
    assert conditions.value_counts(normalize=True)["paid"] == pytest.approx(0.5, abs=0.08)


def test_plan_chunks_participants_per_model(battery):
    assert [u.unit_id for u in battery.plan(RunOptions(participants=5))] == [
        "smollm2-135m-instruct-p0000-0001",
        "smollm2-135m-instruct-p0002-0003",
        "smollm2-135m-instruct-p0004-0004",
    ]
    units = battery.plan(
        RunOptions(participants=20, models=("a", "dir/b.gguf"), extra={"chunk": 8, "reask_runs": 2})
    )
    assert [u.unit_id for u in units[:3]] == ["a-p0000-0007", "a-p0008-0015", "a-p0016-0019"]
    assert units[3].unit_id == "b.gguf-p0000-0007" and units[3].model == "dir/b.gguf"
    assert units[0].params == {
        "mode": "sampled",
        "persona": True,
        "runs": 2,
        "reask": 4,
        "samples": 5,
        "start": 0,
        "stop": 8,
    }
    bare = battery.plan(RunOptions(participants=4, no_persona=True, mode="expected"))
    assert bare[0].params["persona"] is False and bare[0].params["mode"] == "expected"
    assert bare[0].params["reask"] == 0  # M = 4 is below the re-asking threshold


# --------------------------------------------------------------------------- interview (fake ask)


class FakeEngine:
    """Only what interview() touches outside ask: the cache reset."""

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1


class FakeAsk:
    """Stands in for instruments.ask: deterministic answers, records what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list]] = []

    def __call__(self, engine, items, *, seed=0):
        self.calls.append((seed, list(items)))
        answers = []
        for respondent, instrument in items:
            if isinstance(instrument, Choice):
                p = tuple(1 / len(instrument.options) for _ in instrument.options)
                answers.append(
                    Answer(
                        respondent.key,
                        instrument.name,
                        "choice",
                        instrument.options,
                        p,
                        per_order=tuple(p for _ in instrument.options),
                        text=instrument.options[0],
                        value=0.0,
                    )
                )
            elif isinstance(instrument, Likert):
                p = tuple(1 / instrument.points for _ in range(instrument.points))
                answers.append(
                    Answer(
                        respondent.key,
                        instrument.name,
                        "likert",
                        tuple(str(k + 1) for k in range(instrument.points)),
                        p,
                        expected=3.5,
                        text="4",
                        value=4.0,
                    )
                )
            elif isinstance(instrument, Numeric):
                number = 2000.0 + len(respondent.key)
                answers.append(
                    Answer(
                        respondent.key,
                        instrument.name,
                        "numeric",
                        text=str(number),
                        value=number,
                        parsed=True,
                    )
                )
            else:
                answers.append(Answer(respondent.key, instrument.name, "free_text", text="a walk"))
        return answers


def test_interview_batches_lead_ins_then_measures_and_reasks(battery, monkeypatch):
    fake = FakeAsk()
    monkeypatch.setattr(interview_module, "ask", fake)
    people = battery.population_model(range(3)).participants
    engine = FakeEngine()
    answers = interview(
        engine,
        people,
        battery.effects,
        seed=5,
        mode="expected",
        persona=True,
        runs=2,
        reask=1,
        samples=3,
        name="Participant",
    )
    # Per participant: one lead-in call (depth 0) and one measure call per run; p0000 is
    # re-asked in run 1 right after its run 0; the cache is cleared before each persona.
    assert len(fake.calls) == 2 * 2 + 2 + 2
    assert engine.resets == 3
    assert [seed for seed, _ in fake.calls][:2] == [5, 5]
    assert fake.calls[2][0] != 5 and fake.calls[4][0] == 5
    measures = fake.calls[1][1]
    assert {r.key.split("~")[0] for r, _ in measures} == {"p0000"}
    contact = [r for r, i in measures if i.name == "imagined_contact.interact"]
    assert len(contact) == 1
    history = contact[0].history
    assert history[0].speaker == INTERVIEWER and history[1].speaker == "Participant"
    assert history[1].text == "a walk"
    assert contact[0].system == people[0].persona
    # Expected mode: numeric items are sampled `samples` times under distinct keys.
    keys = {r.key for r, i in measures if i.name == "anchoring_chicago.estimate"}
    assert keys == {"p0000", "p0000~s1", "p0000~s2"}
    assert set(answers["run"]) == {0, 1}
    assert set(answers.loc[answers["run"] == 1, "participant"]) == {"p0000"}
    leads = answers[answers["role"] == "lead_in"]
    assert set(leads["effect"]) <= {"imagined_contact", "flag_priming", "reciprocity"}
    assert (answers["position"] < len(ML1_EFFECTS)).all()


def test_a_reasked_unchanged_choice_or_scale_keeps_its_scores_and_is_drawn_again(
    battery, monkeypatch
):
    fake = FakeAsk()
    monkeypatch.setattr(interview_module, "ask", fake)
    people = battery.population_model(range(1)).participants
    answers = interview(
        FakeEngine(),
        people,
        battery.effects,
        seed=5,
        mode="sampled",
        persona=True,
        runs=2,
        reask=1,
        samples=1,
        name="Participant",
    )
    lead_in_effects = set(answers.loc[answers["role"] == "lead_in", "effect"])
    run1_measures = fake.calls[3][1]
    # Asked again in run 1: numeric items (sampled anew) and the items of effects with a
    # lead-in (their history holds run 1's own lead-in reply, a new prompt); not the
    # choices and scales put to an unchanged prompt.
    assert run1_measures
    for _, instrument in run1_measures:
        assert isinstance(instrument, Numeric) or instrument.name.split(".")[0] in (lead_in_effects)
    kept = answers[(answers["role"] == "measure") & ~answers["effect"].isin(lead_in_effects)]
    kept = kept[kept["kind"].isin(["choice", "likert"])]
    run0 = kept[kept["run"] == 0].set_index(["effect", "item"])
    run1 = kept[kept["run"] == 1].set_index(["effect", "item"])
    assert len(run1) == len(run0) > 0
    for key, row in run1.iterrows():
        assert row["probabilities"] == run0.loc[key, "probabilities"]
    # The draw is the one ask makes with run 1's scores and seed.
    seed1 = answer_seed(5, 1)
    for respondent, instrument in fake.calls[1][1]:
        key = tuple(instrument.name.split(".", 1))
        if key in run1.index:
            (scored,) = FakeAsk()(None, [(respondent, instrument)])
            assert run1.loc[key, "text"] == redraw(scored, respondent, instrument, seed1).text


def test_interview_without_persona_uses_the_bare_model(battery, monkeypatch):
    fake = FakeAsk()
    monkeypatch.setattr(interview_module, "ask", fake)
    people = battery.population_model(range(2)).participants
    engine = FakeEngine()
    interview(
        engine,
        people,
        battery.effects,
        seed=1,
        mode="sampled",
        persona=False,
        runs=1,
        reask=0,
        samples=3,
        name="Participant",
    )
    assert all(r.system == "" for _, items in fake.calls for r, _ in items)
    assert engine.resets == 0  # the bare model's prompts are shared across participants
    measures = fake.calls[-1][1]
    assert all("~" not in r.key for r, _ in measures)  # one sample in sampled mode


# --------------------------------------------------------------------------- scoring


def test_score_frame_codes_allowed_forbidden_as_support_for_a_ban(battery):
    effect = battery.effect("allowed_forbidden")
    rows = [
        answer_row(
            "p1",
            effect.name,
            "allow",
            "speeches",
            "choice",
            text="No",
            options=["Yes", "No"],
            probabilities=[0.4, 0.6],
        ),
        answer_row(
            "p2",
            effect.name,
            "allow",
            "speeches",
            "choice",
            text="Yes",
            options=["Yes", "No"],
            probabilities=[0.9, 0.1],
        ),
        answer_row(
            "p3",
            effect.name,
            "forbid",
            "speeches",
            "choice",
            text="Yes",
            options=["Yes", "No"],
            probabilities=[0.2, 0.8],
        ),
    ]
    answers = pd.DataFrame(rows)
    sampled = score_frame(answers, effect, "sampled")
    assert sampled["score"].tolist() == [1.0, 0.0, 1.0]
    expected = score_frame(answers, effect, "expected")
    assert expected["score"].tolist() == pytest.approx([0.6, 0.1, 0.2])


def test_score_frame_numeric_modes_and_unparsed(battery):
    effect = battery.effect("anchoring_distance")
    rows = [
        answer_row(
            "p1",
            effect.name,
            "low",
            "estimate",
            "numeric",
            sample=0,
            value=2000.0,
            parsed=True,
            text="2000",
        ),
        answer_row(
            "p1",
            effect.name,
            "low",
            "estimate",
            "numeric",
            sample=1,
            value=None,
            parsed=False,
            text="far",
        ),
        answer_row(
            "p1",
            effect.name,
            "low",
            "estimate",
            "numeric",
            sample=2,
            value=3000.0,
            parsed=True,
            text="3000",
        ),
        answer_row(
            "p2",
            effect.name,
            "high",
            "estimate",
            "numeric",
            sample=0,
            value=None,
            parsed=False,
            text="I don't know",
        ),
        answer_row(
            "p3",
            effect.name,
            "high",
            "estimate",
            "numeric",
            sample=0,
            value=7000.0,
            parsed=True,
            text="7000",
        ),
        answer_row(
            "p4",
            effect.name,
            "high",
            "estimate",
            "numeric",
            sample=0,
            value=2600.0,
            parsed=True,
            text="2600",
        ),
    ]
    answers = pd.DataFrame(rows)
    expected = score_frame(answers, effect, "expected")
    # p1: mean of the parsed samples 2500; p2 unparsed; p3 beyond the anchor; p4 kept.
    assert expected["estimate"].tolist()[0] == 1.0  # rank of 2500 among {2500, 2600}
    assert math.isnan(expected["score"].iloc[1]) and math.isnan(expected["score"].iloc[2])
    assert expected["score"].iloc[3] == 2.0
    sampled = score_frame(answers, effect, "sampled")
    assert sampled["score"].iloc[0] == 1.0  # sample 0: 2000


def test_summarize_reports_every_effect_with_criteria(battery):
    rng = np.random.default_rng(0)
    rows = []
    for effect in battery.effects:
        for k in range(24):
            condition = effect.condition_names[k % 2]
            participant = f"p{k:04d}"
            for run in (0, 1) if k < 6 else (0,):
                for item in effect.items:
                    instrument = item.instruments[condition]
                    if item.kind == "choice":
                        pick = instrument.options[int(rng.integers(len(instrument.options)))]
                        extra = {
                            "text": pick,
                            "options": list(instrument.options),
                            "probabilities": [1 / len(instrument.options)]
                            * len(instrument.options),
                        }
                    elif item.kind == "likert":
                        point = float(rng.integers(1, instrument.points + 1))
                        extra = {"value": point, "expected": point}
                    else:
                        number = float(rng.integers(1, 30_000))
                        extra = {"value": number, "parsed": bool(k % 7), "text": str(number)}
                    rows.append(
                        answer_row(
                            participant,
                            effect.name,
                            condition,
                            item.name,
                            item.kind,
                            run=run,
                            **extra,
                        )
                    )
    answers = pd.DataFrame(rows)
    participants = pd.DataFrame(
        {"participant": [f"p{k:04d}" for k in range(24)], "country": ["US"] * 20 + ["UK"] * 4}
    )
    summary, overall, scores = summarize(answers, battery.effects, participants)
    assert set(summary["effect"]) == ML1_EFFECTS
    for column in (
        "effect",
        "d",
        "ci_low",
        "ci_high",
        "target_d",
        "target_ci_low",
        "target_ci_high",
        "same_sign_sig",
        "within_target_ci",
        "small_telescopes_pass",
        "original_in_ci",
        "n",
        "unparsed",
    ):
        assert column in summary
    flag = summary.set_index("effect").loc["flag_priming"]
    assert flag["n"] == 20  # US participants only
    assert summary.set_index("effect").loc["sunk_costs", "n"] == 24
    numeric = summary[summary["numeric_answers"] > 0]
    assert (numeric["unparsed"] > 0).all()
    assert summary["reasked"].eq(6).all()
    assert len(overall) == 1 and overall["n_effects"].item() == len(ML1_EFFECTS)
    assert overall["n_negative_controls"].item() == 2
    assert set(scores) == {f"model/{e}" for e in ML1_EFFECTS}


def test_cli_validate_prints_every_error_without_traceback(copy, capsys):
    from simulacra.cli import main

    assert main(["battery", "validate", str(ML1)]) == 0
    assert "ok (replication battery)" in capsys.readouterr().out
    edit(copy / "effects" / "sunk_costs.toml", "points = 9", "points = 1")
    edit(copy / "population.toml", "seed = 1941", "seed = -1")
    status = main(["battery", "validate", str(copy)])
    err = capsys.readouterr().err
    assert status == 2
    assert "sunk_costs.toml: items[0].points: must be in [2, 101], got 1" in err
    assert "population.toml: seed: must be >= 0, got -1" in err
    assert "Traceback" not in err


def test_describe_records_the_files_and_rebuilds_the_same_battery(battery, tmp_path):
    import json

    from simulacra.batteries.replication import build
    from simulacra.batteries.replication.interview import answer_seed, sample_key

    record = json.loads(json.dumps(battery.describe()))
    assert record["kind"] == "replication" and len(record["effects"]) == len(ML1_EFFECTS)
    rebuilt = build(tmp_path / "gone", record["files"])  # the directory need not exist
    assert [e.name for e in rebuilt.effects] == [e.name for e in battery.effects]
    assert rebuilt.effect("reciprocity").measures("second") == battery.effect(
        "reciprocity"
    ).measures("second")
    assert answer_seed(7, 0) == 7 and answer_seed(7, 1) != answer_seed(7, 2)
    assert sample_key("p0001", 0) == "p0001" and sample_key("p0001", 2) == "p0001~s2"
