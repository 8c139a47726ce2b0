"""Congruence quantities on synthetic answers of known truth, and against statsmodels."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from simulacra.analysis.congruence import (
    CONGRUENCE_COLUMNS,
    DASH_2025_MAX_RELATIVE_INCREASE,
    DITTO_2019_R,
    EVIDENCE_DESIGN,
    KAHAN_DESIGN,
    CongruenceDesign,
    accuracy_table,
    anchor_comparison,
    congruence_analysis,
    d_to_r,
    label_answers,
    r_to_d,
)

# P(correct) given (debiased, frame, congruent)
Truth = Callable[[bool, str, bool, str], float]


def answers(
    seed: int,
    participants: int,
    truth: Truth,
    *,
    design: CongruenceDesign = KAHAN_DESIGN,
    debiased: tuple[bool, ...] = (False, True),
    binary: bool = True,
) -> pd.DataFrame:
    """Every participant answers once per instruction condition, in a random condition."""
    rng = np.random.default_rng(seed)
    conditions = list(design.conditions)
    rows = []
    for i in range(participants):
        side = design.sides[i % 2]
        for flag in debiased:
            condition = conditions[rng.integers(len(conditions))]
            frame, result = design.conditions[condition]
            p = truth(flag, frame, design.congenial[side] == result, side)
            score = float(rng.random() < p) if binary else p
            rows.append((f"p{i}", side, condition, flag, score))
    return pd.DataFrame(rows, columns=["participant", "side", "condition", "debiased", "score"])


def pick(table: pd.DataFrame, quantity: str, scale: str, **where: str) -> pd.Series:
    rows = table[(table["quantity"] == quantity) & (table["scale"] == scale)]
    for column, value in ({"side": "all", "debiased": "plain"} | where).items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, (quantity, scale, where, rows)
    return rows.iloc[0]


def effect_coded(data: pd.DataFrame, design: CongruenceDesign) -> pd.DataFrame:
    """s = +1 for the first side, r = +1 for its congenial result; f = +1 identity."""
    rows = label_answers(data, design)
    first = design.sides[0]
    return rows.assign(
        s=np.where(rows["side"] == first, 1, -1),
        r=np.where(rows["result"] == design.congenial[first], 1, -1),
        f=np.where(rows["frame"] == "identity", 1, -1),
    )


def planted(flag: bool, frame: str, congruent: bool, side: str) -> float:
    if frame == "neutral":
        return 0.7
    if flag:
        return 0.65
    return 0.8 if congruent else 0.5


# --------------------------------------------------------------------------- anchors, design


def test_r_to_d_and_back():
    assert r_to_d(DITTO_2019_R) == pytest.approx(2 * 0.245 / math.sqrt(1 - 0.245**2))
    assert r_to_d(DITTO_2019_R) == pytest.approx(0.5054, abs=1e-4)
    for r in (-0.4, 0.0, 0.1, 0.245, 0.7):
        assert d_to_r(r_to_d(r)) == pytest.approx(r)


def test_a_design_needs_two_results_split_between_two_sides():
    with pytest.raises(ValueError, match="frame"):
        CongruenceDesign({"a": ("topic", "x"), "b": ("identity", "y")}, {"l": "x", "r": "y"})
    with pytest.raises(ValueError, match="two results"):
        CongruenceDesign({"a": ("identity", "x")}, {"l": "x", "r": "x"})
    with pytest.raises(ValueError, match="two sides"):
        CongruenceDesign({"a": ("identity", "x"), "b": ("identity", "y")}, {"l": "x", "r": "x"})
    assert KAHAN_DESIGN.frames == ("neutral", "identity")
    assert EVIDENCE_DESIGN.frames == ("identity",)


def test_label_answers_marks_congruence_by_side_and_result():
    data = pd.DataFrame(
        {
            "side": ["democrat", "democrat", "republican", None, "independent"],
            "condition": ["ban_works", "cream_backfires", "ban_works", "ban_works", "ban_works"],
        }
    )
    rows = label_answers(data, KAHAN_DESIGN)
    assert rows["frame"].tolist() == ["identity", "neutral", "identity", "identity", "identity"]
    assert rows["congruent"].tolist() == [True, False, False, None, None]


# --------------------------------------------------------------------------- known answers


def test_a_planted_congruence_is_recovered_on_every_scale():
    data = answers(0, 4000, planted)
    table = congruence_analysis(data, KAHAN_DESIGN, n_boot=1000)
    assert list(table.columns) == list(CONGRUENCE_COLUMNS)
    truth = {
        "relative_increase": 0.8 / 0.5 - 1,
        "odds_ratio": (0.8 / 0.2) / (0.5 / 0.5),
        "d": 0.3 / math.sqrt((0.8 * 0.2 + 0.5 * 0.5) / 2),
    }
    for scale, value in truth.items():
        row = pick(table, "congruence", scale, frame="identity")
        assert row["ci_low"] < value < row["ci_high"], (scale, row)
        assert row["interpretable"] is True
    assert pick(table, "congruence", "odds_ratio", frame="identity")["p"] < 1e-10
    for name, value in (("p_congruent", 0.8), ("p_incongruent", 0.5)):
        row = pick(table, name, "probability", frame="identity")
        assert row["ci_low"] < value < row["ci_high"]
    neutral = pick(table, "neutral_accuracy", "balanced_accuracy", frame="neutral")
    assert neutral["ci_low"] < 0.7 < neutral["ci_high"]
    assert neutral["interpretable"] is True and neutral["test"] == "fisher_exact"
    # the neutral frame has no congruence, the debiased condition none either
    assert pick(table, "pseudo_congruence", "d", frame="neutral")["ci_low"] < 0
    did = pick(table, "identity_minus_neutral", "d", frame="identity - neutral")
    assert did["ci_low"] < truth["d"] < did["ci_high"]
    debiasing = pick(table, "debiasing", "d", debiased="plain - debiased", frame="identity")
    assert debiasing["ci_low"] < truth["d"] < debiasing["ci_high"]
    assert debiasing["test"] == "bootstrap_z" and debiasing["p"] < 1e-4
    for side in KAHAN_DESIGN.sides:
        row = pick(table, "congruence", "d", frame="identity", side=side)
        assert row["ci_low"] < truth["d"] < row["ci_high"] and row["test"] == "welch"


def test_the_difference_in_differences_removes_a_side_by_result_tendency_of_both_frames():
    def skeptic(flag: bool, frame: str, congruent: bool, side: str) -> float:
        # republicans doubt that anything works, in both frames; only the ban
        # adds a topic-specific congruence of +0.2 on the probability scale
        works = congruent == (side == "democrat")
        base = 0.7 - (0.2 if side == "republican" and works else 0.0)
        return base + (0.1 if frame == "identity" and congruent else 0.0)

    data = answers(1, 6000, skeptic, debiased=(False,))
    table = congruence_analysis(data, KAHAN_DESIGN, n_boot=800)
    probability = {
        (frame, congruent, side): skeptic(False, frame, congruent, side)
        for frame in ("neutral", "identity")
        for congruent in (True, False)
        for side in KAHAN_DESIGN.sides
    }

    def true_d(frame: str) -> float:
        out = []
        for side in KAHAN_DESIGN.sides:
            a, b = probability[(frame, True, side)], probability[(frame, False, side)]
            out.append((a - b) / math.sqrt((a * (1 - a) + b * (1 - b)) / 2))
        return sum(out) / 2

    neutral = pick(table, "pseudo_congruence", "d", frame="neutral")
    assert neutral["ci_low"] < true_d("neutral") < neutral["ci_high"]
    assert neutral["ci_low"] > 0  # the tendency alone looks like congruence
    did = pick(table, "identity_minus_neutral", "d", frame="identity - neutral")
    expected = true_d("identity") - true_d("neutral")
    assert did["ci_low"] < expected < did["ci_high"]
    assert not np.any(table["quantity"].str.startswith("debiasing"))


def test_congruence_tests_match_statsmodels_effect_coded_models():
    data = answers(2, 1500, planted, debiased=(False,))
    table = congruence_analysis(data, KAHAN_DESIGN, n_boot=200)
    coded = effect_coded(data, KAHAN_DESIGN)
    identity = coded[coded["frame"] == "identity"]
    fit = smf.logit("score ~ s * r", identity).fit(disp=0, tol=1e-12)
    row = pick(table, "congruence", "odds_ratio", frame="identity")
    # balanced log OR = 2 g; Woolf's SE = 2 SE(g)
    assert math.log(row["estimate"]) == pytest.approx(2 * fit.params["s:r"], rel=1e-6)
    low, high = np.exp(2 * fit.conf_int().loc["s:r"])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-5)
    assert row["p"] == pytest.approx(fit.pvalues["s:r"], rel=1e-5)
    # identity minus neutral: the three-way term, 4 h
    both = smf.logit("score ~ s * r * f", coded).fit(disp=0, tol=1e-12)
    did = pick(table, "identity_minus_neutral", "odds_ratio", frame="identity - neutral")
    assert math.log(did["estimate"]) == pytest.approx(4 * both.params["s:r:f"], rel=1e-6)
    assert did["p"] == pytest.approx(both.pvalues["s:r:f"], rel=1e-5)


def test_rating_congruence_matches_statsmodels_ols_hc2():
    rng = np.random.default_rng(3)
    base = answers(3, 600, lambda *_: 0.5, design=EVIDENCE_DESIGN, debiased=(False,))
    congruent = label_answers(base, EVIDENCE_DESIGN)["congruent"].astype(bool)
    spread = np.where(base["side"] == "democrat", 1.0, 1.8)
    data = base.assign(score=4 + 0.6 * congruent + rng.normal(size=len(base)) * spread)
    table = congruence_analysis(data, EVIDENCE_DESIGN, n_boot=300)
    assert set(table["scale"]) == {"d"}  # ratings: no proportions, no odds
    row = pick(table, "congruence", "d", frame="identity")
    coded = effect_coded(data, EVIDENCE_DESIGN)
    fit = smf.ols("score ~ s * r", coded).fit(cov_type="HC2", use_t=True)
    assert row["test"] == "ols_hc2"
    assert row["p"] == pytest.approx(fit.pvalues["s:r"], rel=1e-8)
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    assert row["interpretable"] is None


def test_without_congruence_the_odds_ratio_test_keeps_its_level():
    rejected, covered = [], []
    for seed in range(150):
        data = answers(100 + seed, 300, lambda *_: 0.6, debiased=(False,))
        table = congruence_analysis(data, KAHAN_DESIGN, n_boot=200)
        rejected.append(pick(table, "congruence", "odds_ratio", frame="identity")["p"] < 0.05)
        d = pick(table, "congruence", "d", frame="identity")
        covered.append(d["ci_low"] <= 0 <= d["ci_high"])
    # 150 draws at 5%: SD 1.8 points
    assert 0.01 <= np.mean(rejected) <= 0.11
    assert np.mean(covered) >= 0.9


# --------------------------------------------------------------------------- neutral frame


def test_a_model_naming_always_the_same_conclusion_is_not_above_chance():
    rng = np.random.default_rng(4)
    conditions = rng.choice(list(KAHAN_DESIGN.conditions), 400, p=[0.35, 0.15, 0.25, 0.25])
    # always "the treatment works": correct exactly when the result is "works"
    score = [float(KAHAN_DESIGN.conditions[c][1] == "works") for c in conditions]
    data = pd.DataFrame(
        {
            "participant": range(400),
            "side": np.where(np.arange(400) % 2, "democrat", "republican"),
            "condition": conditions,
            "score": score,
        }
    )
    table = congruence_analysis(data, KAHAN_DESIGN, n_boot=200)
    neutral = pick(table, "neutral_accuracy", "balanced_accuracy", frame="neutral")
    assert neutral["estimate"] == 0.5  # although 70% of the neutral answers are correct
    works = data["condition"] == "cream_works"
    backfires = data["condition"] == "cream_backfires"
    expected = stats.fisher_exact([[works.sum(), 0], [backfires.sum(), 0]], alternative="greater")
    assert neutral["p"] == pytest.approx(expected[1])
    assert neutral["interpretable"] is False
    congruence = pick(table, "congruence", "d", frame="identity")
    assert congruence["interpretable"] is False
    assert "not interpretable as motivated reasoning" in congruence["reason"]
    assert math.isnan(congruence["estimate"])  # each side's cells are constant: no spread
    odds = pick(table, "congruence", "odds_ratio", frame="identity")
    assert "Haldane-Anscombe" in odds["reason"]


def test_expected_mode_probabilities_use_welch_for_the_neutral_frame_and_no_odds():
    data = answers(5, 800, planted, binary=False, debiased=(False,))
    data["score"] += np.random.default_rng(5).normal(0, 0.05, len(data))
    data["score"] = data["score"].clip(0, 1)
    table = congruence_analysis(data, KAHAN_DESIGN, n_boot=300)
    assert "odds_ratio" not in set(table["scale"])
    neutral = pick(table, "neutral_accuracy", "balanced_accuracy", frame="neutral")
    assert neutral["test"] == "welch_one_sided" and neutral["p"] < 1e-6
    row = pick(table, "congruence", "relative_increase", frame="identity")
    assert row["estimate"] == pytest.approx(0.6, abs=0.02)


def test_a_missing_side_leaves_ds_undefined_with_reasons():
    data = answers(6, 200, planted, debiased=(False,))
    data = data[data["side"] == "democrat"]
    table = congruence_analysis(data, KAHAN_DESIGN, n_boot=100)
    row = pick(table, "congruence", "d", frame="identity")
    assert math.isnan(row["estimate"])
    assert "a side's d is undefined" in row["reason"]
    rep = pick(table, "congruence", "d", frame="identity", side="republican")
    assert rep["reason"].startswith("d undefined: too few scores (congruent 0, incongruent 0")


def test_identity_conditions_alone_cannot_be_judged_interpretable():
    data = answers(7, 300, planted, debiased=(False,))
    data = data[data["condition"].str.startswith("ban")]
    table = congruence_analysis(data, KAHAN_DESIGN, n_boot=100)
    assert not (table["frame"] == "neutral").any()
    row = pick(table, "congruence", "d", frame="identity")
    assert row["interpretable"] is None
    assert "no neutral frame" in row["reason"]


# --------------------------------------------------------------------------- tables


def test_anchor_comparison_sets_the_measured_congruence_beside_dash_and_ditto():
    table = congruence_analysis(answers(8, 3000, planted), KAHAN_DESIGN, n_boot=500)
    anchors = anchor_comparison(table).set_index("anchor")
    dash = anchors.loc["Dash et al. 2025"]
    assert dash["published"] == DASH_2025_MAX_RELATIVE_INCREASE
    assert (
        dash["estimate"]
        == pick(table, "congruence", "relative_increase", frame="identity")["estimate"]
    )
    assert dash["published_in_ci"] == (dash["ci_low"] <= 0.9 <= dash["ci_high"])
    ditto = anchors.loc["Ditto et al. 2019"]
    assert ditto["published"] == pytest.approx(r_to_d(0.245))
    assert ditto["measured_r"] == pytest.approx(d_to_r(ditto["estimate"]))
    debiased = anchor_comparison(table, "debiased").set_index("anchor")
    assert debiased.loc["Ditto et al. 2019", "ci_low"] < 0.3


def test_accuracy_table_counts_every_cell():
    data = answers(9, 400, planted)
    table = accuracy_table(data, KAHAN_DESIGN)
    assert table["n"].sum() == len(data)
    assert len(table) == 16
    cell = table[
        (table["debiased"] == "plain")
        & (table["frame"] == "identity")
        & (table["side"] == "democrat")
        & (table["result"] == "works")
    ].iloc[0]
    assert bool(cell["congruent"]) is True
    rows = label_answers(data, KAHAN_DESIGN)
    mask = (
        ~rows["debiased"]
        & (rows["frame"] == "identity")
        & (rows["side"] == "democrat")
        & (rows["result"] == "works")
    )
    assert cell["mean"] == pytest.approx(rows.loc[mask, "score"].mean())


def test_a_participant_answering_twice_in_one_condition_is_an_error():
    data = answers(10, 20, planted, debiased=(False,))
    with pytest.raises(ValueError, match="one answer per participant"):
        congruence_analysis(pd.concat([data, data]), KAHAN_DESIGN, n_boot=10)


def test_every_lever_is_compared_with_plain_and_a_lever_that_damages_reading_is_caught():
    """Three conditions by name: the instruction halves nothing, the cap removes the
    congruence but also drags the neutral reading to chance (a damaged reader)."""

    def truth(lever: str, frame: str, congruent: bool, side: str) -> float:
        if lever == "capped":
            return 0.5  # no congruence left, and no reading either
        if frame == "neutral":
            return 0.75
        return 0.8 if congruent else 0.5

    data = answers(11, 3000, truth, debiased=("plain", "debiased", "capped"))
    table = congruence_analysis(data, KAHAN_DESIGN, n_boot=400)
    assert list(dict.fromkeys(table["debiased"]))[:3] == ["plain", "debiased", "capped"]
    d = 0.3 / math.sqrt((0.8 * 0.2 + 0.5 * 0.5) / 2)
    for lever, removed in (("debiased", 0.0), ("capped", d)):
        row = pick(table, "debiasing", "d", debiased=f"plain - {lever}", frame="identity")
        assert row["ci_low"] < removed < row["ci_high"], (lever, row)
    change = pick(
        table,
        "neutral_accuracy_change",
        "balanced_accuracy",
        debiased="plain - capped",
        frame="neutral",
    )
    assert change["ci_low"] < 0.25 < change["ci_high"] and change["p"] < 1e-6
    same = pick(
        table,
        "neutral_accuracy_change",
        "balanced_accuracy",
        debiased="plain - debiased",
        frame="neutral",
    )
    assert abs(same["estimate"]) < 0.05  # no damage (its CI covered 0 in 17 of 20 seeds)
    capped = pick(table, "congruence", "d", debiased="capped", frame="identity")
    assert capped["interpretable"] is False and "not above chance" in capped["reason"]
    cells = accuracy_table(data, KAHAN_DESIGN)
    assert set(cells["debiased"]) == {"plain", "debiased", "capped"}
    # booleans still mean plain / debiased, and give the same numbers as their names
    named = data[data["debiased"] != "capped"]
    flags = named.assign(debiased=named["debiased"] == "debiased")
    a = congruence_analysis(named, KAHAN_DESIGN, n_boot=200)
    b = congruence_analysis(flags, KAHAN_DESIGN, n_boot=200)
    pd.testing.assert_frame_equal(a, b)
