"""The replication report's tables and figures without a model: moderator rows beside the
main effects, exploratory effects and the battery's source, a reason for every NaN,
the congruence tables, and figures that are never drawn empty."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from replication_frames import coded_answers, random_answers

from simulacra.analysis.congruence import KAHAN_DESIGN, congruence_analysis
from simulacra.analysis.moderators import moderator_analysis
from simulacra.batteries.replication import load, summarize
from simulacra.batteries.replication.congruence_tables import congruence_tables
from simulacra.batteries.replication.reasons import GROUPS
from simulacra.plots.replication import plot_effects_vs_target, plot_variance_ratio

ROOT = Path(__file__).resolve().parents[2]
ML1 = ROOT / "scenarios" / "replication" / "many_labs_1"
MOTIVATED = ROOT / "scenarios" / "motivated_reasoning"
GOLDEN = ROOT / "tests" / "golden" / "replication_no_moderators"
SOURCE = "Many Labs 1"


class Extended:
    """An effect with the fields of the newer effect files (moderators, exploratory, ...)."""

    def __init__(self, effect, **fields):
        self._effect = effect
        self.__dict__.update(fields)

    def __getattr__(self, name):
        return getattr(self._effect, name)


class Sourced:
    """A target that names its source."""

    def __init__(self, target, source):
        self._target, self.source = target, source

    def __getattr__(self, name):
        return getattr(self._target, name)


@pytest.fixture(scope="module")
def ml1():
    return load(ML1)


def ml1_people(n: int = 24) -> pd.DataFrame:
    return pd.DataFrame(
        {"participant": [f"p{k:04d}" for k in range(n)], "country": ["US"] * 20 + ["UK"] * 4}
    )


def round_trip(table: pd.DataFrame, tmp_path: Path, name: str) -> pd.DataFrame:
    table.to_csv(tmp_path / name, index=False)
    return pd.read_csv(tmp_path / name)


@pytest.fixture(scope="module")
def motivated():
    """The motivated-reasoning battery and its effects (with their moderators) by name."""
    battery = load(MOTIVATED)
    return battery, {e.name: e for e in battery.effects}


def motivated_people(battery, n: int, seed: int = 1) -> pd.DataFrame:
    people = battery.population_model(range(n)).frame()
    rng = np.random.default_rng(seed)
    return people.assign(
        condition=[list(KAHAN_DESIGN.conditions)[i] for i in rng.integers(4, size=n)]
    )


def congruent_truth(condition: str, politics: str, rng: np.random.Generator) -> int:
    """Correct 80% when the identity-frame result suits the side, 40% when not; 60% neutral."""
    frame, result = KAHAN_DESIGN.conditions[condition]
    side = (
        "democrat" if "Democrat" in politics else "republican" if "Republican" in politics else None
    )
    if frame == "neutral" or side is None:
        return int(rng.random() < 0.6)
    congruent = KAHAN_DESIGN.congenial[side] == result
    return int(rng.random() < (0.8 if congruent else 0.4))


def explained_leads(reason: str) -> set[str]:
    """The columns a reason explains: ``"a, b: why; c: why"`` -> ``{a, b, c}``."""
    leads: set[str] = set()
    for part in reason.split("; "):
        head, _, _ = part.partition(": ")
        leads.update(head.split(", "))
    return leads


# --------------------------------------------------------------------------- unchanged


def test_effects_without_moderators_keep_todays_tables(ml1, tmp_path):
    summary, overall, _ = summarize(random_answers(ml1.effects), ml1.effects, ml1_people())
    summary = round_trip(summary, tmp_path, "summary.csv")
    overall = round_trip(overall, tmp_path, "overall.csv")
    golden = pd.read_csv(GOLDEN / "summary.csv")
    golden_overall = pd.read_csv(GOLDEN / "overall.csv")
    pd.testing.assert_frame_equal(summary[list(golden.columns)], golden)
    pd.testing.assert_frame_equal(overall[list(golden_overall.columns)], golden_overall)
    # one main row per effect, no subgroup columns, every ML1 effect counted
    assert len(summary) == len(golden) and summary["level"].isna().all()
    assert "comparison" not in summary and summary["in_overall"].all()
    assert overall["left_out"].isna().all()


def test_every_nan_of_a_main_row_has_a_reason(ml1):
    answers = random_answers(ml1.effects, reasked=0)  # nobody re-asked
    summary, _, _ = summarize(answers, ml1.effects, ml1_people())
    assert summary["reason"].str.contains("run_persona_ratio: nobody re-asked").all()
    for _, row in summary.iterrows():
        explained = explained_leads(row["reason"])
        for lead, columns in GROUPS.items():
            if any(pd.isna(row[c]) for c in columns):
                assert lead in explained, (row["effect"], lead, row["reason"])
    distance = summary.set_index("effect").loc["anchoring_distance"]
    assert "too few parsed answers" in distance["reason"]  # the scoring drops them all
    flat = random_answers(ml1.effects[:1], reasked=0)
    flat["text"] = "No"
    flat_row = summarize(flat, ml1.effects[:1], ml1_people())[0].iloc[0]
    assert math.isnan(flat_row["d"])
    assert "d: no spread in either group" in flat_row["reason"]


# --------------------------------------------------------------------------- exploratory


def test_exploratory_and_foreign_targets_stay_out_of_the_criteria(ml1):
    answers = random_answers(ml1.effects)
    plain, plain_overall, _ = summarize(answers, ml1.effects, ml1_people(), source=SOURCE)
    effects = list(ml1.effects)
    names = [e.name for e in effects]
    i, j, k = names.index("sunk_costs"), names.index("reciprocity"), names.index("flag_priming")
    effects[i] = Extended(effects[i], exploratory=True)
    effects[j] = Extended(effects[j], target=Sourced(effects[j].target, "My lab 2024"))
    effects[k] = Extended(effects[k], target=Sourced(effects[k].target, SOURCE))
    summary, overall, _ = summarize(answers, effects, ml1_people(), source=SOURCE)
    by = summary.set_index("effect")
    assert not by.loc["sunk_costs", "in_overall"] and by.loc["sunk_costs", "exploratory"]
    assert "not in overall.csv: exploratory effect" in by.loc["sunk_costs", "reason"]
    assert not by.loc["reciprocity", "in_overall"]
    assert "My lab 2024" in by.loc["reciprocity", "reason"]
    assert by.loc["flag_priming", "in_overall"]  # its target is the battery's source
    row = overall.iloc[0]
    assert row["n_effects"] == plain_overall.iloc[0]["n_effects"] - 2
    assert row["left_out"] == "reciprocity, sunk_costs"
    # the criteria across effects are those of the counted effects alone
    counted = plain[~plain["effect"].isin(["sunk_costs", "reciprocity"])]
    finite = counted[np.isfinite(counted["d"])]
    assert row["r_ml1"] == pytest.approx(np.corrcoef(finite["d"], finite["target_d"])[0, 1])


def test_the_figure_names_the_source_and_lists_only_what_is_drawn(ml1):
    answers = random_answers(ml1.effects)
    effects = [e for e in ml1.effects if not e.has_tag("weak_control")]
    summary, _, _ = summarize(answers, effects, ml1_people(), source="Project X")
    fig = plot_effects_vs_target(summary, "Project X")
    (ax,) = fig.axes
    labels = ax.get_legend_handles_labels()[1]
    assert not any("weak control" in label for label in labels)
    assert not any("ML1" in label or "Many Labs" in label for label in labels)
    assert "Project X" in fig._suptitle.get_text() and "Project X" in ax.get_xlabel()
    plt.close(fig)
    effects = list(ml1.effects)
    effects[0] = Extended(effects[0], exploratory=True)
    summary, _, _ = summarize(answers, effects, ml1_people(), source="Project X")
    fig = plot_effects_vs_target(summary, "Project X")
    scatter, apart = fig.axes
    assert "weak control" in scatter.get_legend_handles_labels()[1]
    assert [t.get_text() for t in apart.get_yticklabels()] == [f"{effects[0].name} (main)"]
    plt.close(fig)


# --------------------------------------------------------------------------- moderators


def test_moderator_rows_sit_beside_the_main_effect(motivated):
    battery, effects = motivated
    effect = effects["covariance_detection"]
    people = motivated_people(battery, 160)
    answers = coded_answers(effect, people, congruent_truth)
    summary, overall, scores = summarize(answers, [effect], people.drop(columns="condition"))
    assert list(summary["level"].fillna("")) == ["", "democrat", "republican", "interaction"]
    assert list(summary["moderator"].fillna("")) == ["", "politics", "politics", "politics"]
    main, democrat, republican, interaction = (row for _, row in summary.iterrows())
    assert not main["in_overall"] and "no target (exploratory effect)" in main["reason"]
    for lead, columns in GROUPS.items():
        if any(pd.isna(main[c]) for c in columns):
            assert lead in explained_leads(main["reason"]), (lead, main["reason"])
    assert overall.iloc[0]["n_effects"] == 0 and overall.iloc[0]["left_out"] == effect.name
    # the rows are moderator_analysis's, on run 0's scores with the attributes joined
    frame = scores[f"model/{effect.name}"].merge(people[["participant", "politics"]])
    (moderator,) = effect.moderators
    direct = moderator_analysis(
        frame, moderator, treatment=effect.treatment, control=effect.control, seed=0
    ).rows()
    assert democrat["d"] == pytest.approx(direct[0]["d"])
    assert interaction["d"] == pytest.approx(direct[2]["d"])
    assert interaction["p"] == pytest.approx(direct[2]["p"])
    assert (
        interaction["test"] == "logit_wald" and interaction["comparison"] == "democrat - republican"
    )
    # the planted congruence: the ban working helps Democrats, hurts Republicans
    assert democrat["d"] > 0 > republican["d"]
    assert interaction["ci_low"] > 0 and interaction["p"] < 0.05
    assert interaction["n"] == democrat["n"] + republican["n"]
    assert democrat["odds_ratio"] > 1 > republican["odds_ratio"]


def test_a_target_interaction_fills_the_interaction_row(motivated):
    battery, effects = motivated
    effect = effects["evidence_evaluation"]
    people = motivated_people(battery, 60)
    rng = np.random.default_rng(3)
    rows = []
    conditions = effect.condition_names
    for k, person in enumerate(people.itertuples(index=False)):
        condition = conditions[k % 2]
        lean = 1 if "Democrat" in person.politics else -1 if "Republican" in person.politics else 0
        shift = lean * (1 if condition == "carry_raises_crime" else -1)
        for item in effect.items:
            point = float(np.clip(4 + shift + rng.integers(-1, 2), 1, 7))
            rows.append(
                {
                    "participant": person.participant,
                    "run": 0,
                    "effect": effect.name,
                    "condition": condition,
                    "item": item.name,
                    "role": "measure",
                    "kind": "likert",
                    "sample": 0,
                    "value": point,
                    "expected": point,
                    "mode": "sampled",
                    "persona": True,
                }
            )
    summary, _, _ = summarize(pd.DataFrame(rows), [effect], people.drop(columns="condition"))
    interaction = summary[summary["level"] == "interaction"].iloc[0]
    assert interaction["target_d"] == pytest.approx(1.01)
    assert interaction["test"] == "ols_hc2" and interaction["d"] > 0
    assert interaction["same_sign_sig"] in (True, False)
    levels = summary[summary["level"].isin(["democrat", "republican"])]
    assert levels["reason"].str.contains("odds ratio n/a").all()


def test_a_bare_model_gets_moderator_rows_that_say_why_they_are_empty(motivated):
    battery, effects = motivated
    effect = effects["covariance_detection"]
    people = motivated_people(battery, 40)
    answers = coded_answers(effect, people, congruent_truth).assign(persona=False)
    summary, _, scores = summarize(answers, [effect], people.drop(columns="condition"))
    subgroups = summary[summary["level"] != ""]
    assert len(subgroups) == 3 and subgroups["d"].isna().all()
    assert subgroups["reason"].str.contains("no 'politics' column").all()
    tables = congruence_tables(summary, scores, [effect], people)
    assert tables is not None
    congruence = tables[0]
    assert len(congruence) == 1 and "no side" in congruence["reason"].item()


# --------------------------------------------------------------------------- congruence


def test_congruence_tables_pool_the_plain_and_debiased_covariance_answers(motivated):
    battery, effects = motivated
    chosen = [effects["covariance_detection"], effects["covariance_debiased"]]
    people = motivated_people(battery, 120)
    parts = [coded_answers(chosen[0], people, congruent_truth)]
    again = motivated_people(battery, 120, seed=2)  # its own condition per study
    parts.append(coded_answers(chosen[1], again, congruent_truth, seed=1))
    answers = pd.concat(parts, ignore_index=True)
    attributes = people.drop(columns="condition")
    summary, _, scores = summarize(answers, chosen, attributes)
    congruence, cells, anchors = congruence_tables(summary, scores, chosen, attributes)
    assert set(congruence["task"]) == {"covariance_detection"}
    assert set(congruence["debiased"]) >= {"plain", "debiased", "plain - debiased"}
    # the same numbers as the analysis on the hand-built frame
    frames = []
    for effect, debiased in ((chosen[0], False), (chosen[1], True)):
        frame = scores[f"model/{effect.name}"].merge(attributes[["participant", "politics"]])
        (moderator,) = effect.moderators
        frames.append(
            frame.assign(side=frame["politics"].map(moderator.level_of), debiased=debiased)
        )
    data = pd.concat(frames)[["participant", "condition", "score", "side", "debiased"]]
    direct = congruence_analysis(data[data["side"].notna()], KAHAN_DESIGN, seed=0)
    pd.testing.assert_frame_equal(
        congruence.drop(columns=["model", "mode", "persona", "task", "effects"]).reset_index(
            drop=True
        ),
        direct.reset_index(drop=True),
    )
    # every condition and both sides appear among the cells, with their counts
    assert set(cells["side"]) == {"democrat", "republican"}
    assert set(zip(cells["frame"], cells["result"], strict=True)) == {
        (f, r) for f, r in KAHAN_DESIGN.conditions.values()
    }
    assert set(anchors["anchor"]) == {"Dash et al. 2025", "Ditto et al. 2019"}
    plain = congruence[
        (congruence["quantity"] == "congruence")
        & (congruence["debiased"] == "plain")
        & (congruence["side"] == "all")
        & (congruence["scale"] == "odds_ratio")
    ].iloc[0]
    assert plain["estimate"] > 1 and plain["ci_low"] > 1  # the planted congruence


# --------------------------------------------------------------------------- figures


def test_figures_mark_subgroups_and_are_never_drawn_empty(motivated, ml1):
    battery, effects = motivated
    effect = effects["covariance_detection"]
    people = motivated_people(battery, 60)
    answers = coded_answers(effect, people, congruent_truth)
    summary, _, _ = summarize(answers, [effect], people.drop(columns="condition"))
    fig = plot_effects_vs_target(summary, "Kahan et al. (2017)")
    (ax,) = fig.axes  # nothing counted: only the panel drawn apart
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "covariance_detection (main)"
    assert "covariance_detection · politics = democrat" in labels
    assert "covariance_detection · politics: democrat - republican" in labels
    legend = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("subgroup") for label in legend)
    assert any(label.startswith("interaction") for label in legend)
    plt.close(fig)
    assert plot_variance_ratio(summary) is None  # nobody re-asked: no empty figure
    summary, _, _ = summarize(random_answers(ml1.effects), ml1.effects, ml1_people())
    fig = plot_variance_ratio(summary)
    (ax,) = fig.axes
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert shown == [e.name for e in ml1.effects]  # every effect present
    notes = [t.get_text() for t in ax.texts]
    undefined = summary[summary["run_persona_ratio"].isna()]
    assert len(notes) == len(undefined) and all(n.startswith("undefined: ") for n in notes)
    plt.close(fig)


# --------------------------------------------------------------------------- the report


def test_write_report_writes_the_congruence_tables_and_no_empty_figure(
    motivated, tmp_path, monkeypatch
):
    from simulacra.batteries.replication import report as report_module
    from simulacra.batteries.runner import BatteryResult

    battery, effects = motivated
    chosen = [effects["covariance_detection"], effects["evidence_evaluation"]]
    people = motivated_people(battery, 40)
    answers = coded_answers(chosen[0], people, congruent_truth)
    attributes = people.drop(columns="condition")
    result = BatteryResult(tmp_path, {}, {"answers": answers, "participants": attributes})
    shown = Extended(battery, effects=tuple(chosen), source="Kahan et al. (2017)")
    monkeypatch.setattr(report_module, "battery_of", lambda _: shown)
    figdir = tmp_path / "report"
    figdir.mkdir()
    (figdir / "variance_ratio.png").write_bytes(b"stale")  # from an earlier report
    written = {p.name for p in report_module.write_report(result, figdir)}
    assert written == {
        "effects_vs_ml1.png",
        "summary.csv",
        "overall.csv",
        "composition.csv",
        "congruence.csv",
        "congruence_cells.csv",
        "anchors.csv",
    }
    assert not (figdir / "variance_ratio.png").exists()  # nobody re-asked: not drawn
    summary = pd.read_csv(figdir / "summary.csv")
    assert summary["reason"].str.contains("nobody re-asked").any()
    cells = pd.read_csv(figdir / "congruence_cells.csv")
    assert set(cells["task"]) == {"covariance_detection"}  # the evidence task had no answers
    congruence = pd.read_csv(figdir / "congruence.csv")
    evidence = congruence[congruence["task"] == "evidence_evaluation"]
    assert len(evidence) == 1 and "no participant" in evidence["reason"].item()
