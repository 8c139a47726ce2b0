"""Moderator statistics: planted interactions, null rates, degenerate cases, statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from simulacra.analysis.moderators import (
    INTERACTION,
    MODERATOR_COLUMNS,
    InteractionTarget,
    Moderator,
    assign_levels,
    moderator_analysis,
)
from simulacra.analysis.replication import effect_statistics

POLITICS = Moderator.of(
    "politics",
    {"liberal": ["very liberal", "liberal"], "conservative": ["conservative", "very conservative"]},
)
THREE = Moderator.of("party", ["dem", "ind", "rep"])

# tolerances of the statsmodels cross-checks: closed forms against the OLS fit are
# exact up to floating point; the logistic MLE converges to about 1e-8
OLS_RTOL = 1e-9
LOGIT_RTOL = 1e-6


def continuous_frame(
    seed: int,
    n: int,
    effects: dict[str, float],
    *,
    attribute: str = "politics",
    labels: dict[str, list[str]] | None = None,
    sd: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Scores N(effect * treated, sd) per level; the labels drawn uniformly within a level."""
    rng = np.random.default_rng(seed)
    labels = labels or {level: [level] for level in effects}
    levels = rng.choice(list(effects), n)
    treated = rng.random(n) < 0.5
    spread = np.array([(sd or {}).get(level, 1.0) for level in levels])
    shift = np.array([effects[level] for level in levels])
    drawn = np.empty(n, dtype=object)
    for level, options in labels.items():
        where = levels == level
        drawn[where] = np.array(options, dtype=object)[rng.integers(len(options), size=where.sum())]
    return pd.DataFrame(
        {
            "participant": np.arange(n),
            "condition": np.where(treated, "t", "c"),
            attribute: drawn,
            "score": rng.normal(size=n) * spread + shift * treated,
        }
    )


def binary_frame(seed: int, n: int, rates: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """0/1 scores with P(1) = rates[level] = (control, treatment)."""
    rng = np.random.default_rng(seed)
    levels = rng.choice(list(rates), n)
    treated = rng.random(n) < 0.5
    p = np.array([rates[level][int(t)] for level, t in zip(levels, treated, strict=True)])
    return pd.DataFrame(
        {
            "participant": range(n),
            "condition": np.where(treated, "t", "c"),
            "party": levels,
            "score": (rng.random(n) < p).astype(float),
        }
    )


def fit_frame(frame: pd.DataFrame, moderator: Moderator) -> pd.DataFrame:
    """The analysed rows with a level and a 0/1 treatment column, for statsmodels."""
    levels = assign_levels(frame, moderator).levels
    out = frame.assign(level=levels, treated=(frame["condition"] == "t").astype(int))
    return out[out["level"].notna()]


def term(level: str, reference: str) -> str:
    return f"treated:C(level, Treatment('{reference}'))[T.{level}]"


# --------------------------------------------------------------------------- the spec


def test_moderator_spec_checks_levels_labels_reference_and_target():
    with pytest.raises(ValueError, match="in two levels"):
        Moderator.of("politics", {"a": ["x", "y"], "b": ["y"]})
    with pytest.raises(ValueError, match="reserved"):
        Moderator.of("politics", {INTERACTION: ["x"], "b": ["y"]})
    with pytest.raises(ValueError, match="lists no labels"):
        Moderator.of("politics", {"a": [], "b": ["y"]})
    with pytest.raises(ValueError, match="reference"):
        Moderator.of("politics", ["x", "y"], reference="z")
    with pytest.raises(ValueError, match="must name its level"):
        Moderator.of("party", ["a", "b", "c"], target=InteractionTarget(0.5))
    with pytest.raises(ValueError, match="non-reference"):
        Moderator.of("party", ["a", "b"], target=InteractionTarget(0.5, level="a"))


def test_moderator_of_groups_labels_or_makes_each_label_a_level():
    assert POLITICS.levels["liberal"] == ("very liberal", "liberal")
    assert POLITICS.reference_level == "liberal"
    assert POLITICS.compared_levels == ("conservative",)
    assert THREE.levels == {"dem": ("dem",), "ind": ("ind",), "rep": ("rep",)}
    assert Moderator.of("party", ["dem", "rep"], reference="rep").compared_levels == ("dem",)
    assert POLITICS.level_of("very conservative") == "conservative"
    assert POLITICS.level_of("moderate") is None


def test_assign_levels_groups_labels_and_counts_the_unlisted_and_missing():
    frame = pd.DataFrame(
        {"politics": ["liberal", "moderate", "very conservative", None, "moderate", "very liberal"]}
    )
    assignment = assign_levels(frame, POLITICS)
    assert assignment.levels.tolist()[:3] == ["liberal", None, "conservative"] or (
        assignment.levels.iloc[0] == "liberal" and pd.isna(assignment.levels.iloc[1])
    )
    assert assignment.levels.iloc[5] == "liberal"
    assert dict(assignment.excluded) == {"moderate": 2, "(missing)": 1}
    assert assignment.n_excluded == 3


# --------------------------------------------------------------------------- per level


def test_level_rows_are_the_main_effect_statistics_of_the_subgroup():
    frame = continuous_frame(
        1, 300, {"lib": 0.3, "con": 0.9}, labels={"lib": ["liberal"], "con": ["conservative"]}
    )
    result = moderator_analysis(frame, POLITICS, treatment="t", control="c", n_boot=200)
    for level, labels in POLITICS.levels.items():
        sub = frame[frame["politics"].isin(labels)]
        expected = effect_statistics(
            sub.loc[sub["condition"] == "t", "score"], sub.loc[sub["condition"] == "c", "score"]
        )
        found = next(effect for effect in result.levels if effect.level == level)
        assert found.statistics == expected
        assert found.reason == ""


def test_level_odds_ratio_matches_statsmodels_woolf_interval():
    frame = binary_frame(2, 400, {"dem": (0.3, 0.6), "rep": (0.5, 0.4)})
    result = moderator_analysis(
        frame, Moderator.of("party", ["dem", "rep"]), treatment="t", control="c", n_boot=100
    )
    for effect in result.levels:
        sub = frame[frame["party"] == effect.level]
        t, c = sub[sub["condition"] == "t"]["score"], sub[sub["condition"] == "c"]["score"]
        table = sm.stats.Table2x2(
            np.array([[t.sum(), len(t) - t.sum()], [c.sum(), len(c) - c.sum()]])
        )
        assert effect.odds_ratio.odds_ratio == pytest.approx(table.oddsratio, rel=1e-12)
        low, high = table.oddsratio_confint()
        assert (effect.odds_ratio.ci_low, effect.odds_ratio.ci_high) == pytest.approx(
            (low, high), rel=1e-9
        )
        assert effect.odds_ratio.p == pytest.approx(table.oddsratio_pvalue(), rel=1e-9)


# --------------------------------------------------------------------------- statsmodels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ols_interaction_matches_statsmodels_hc2_with_two_and_three_levels(seed):
    frame = continuous_frame(
        seed,
        240,
        {"dem": 0.2, "ind": 0.0, "rep": 0.7},
        attribute="party",
        sd={"dem": 1.0, "ind": 2.5, "rep": 0.6},  # heteroscedastic: HC2 differs from OLS
    )
    frame = frame.iloc[: 240 - 17 * seed]  # unbalanced cells
    for moderator in (THREE, Moderator.of("party", ["rep", "dem"])):
        result = moderator_analysis(frame, moderator, treatment="t", control="c", n_boot=100)
        data = fit_frame(frame, moderator)
        reference = moderator.reference_level
        fit = smf.ols(f"score ~ treated * C(level, Treatment('{reference}'))", data).fit(
            cov_type="HC2", use_t=True
        )
        for interaction in result.interactions:
            name = term(interaction.level, reference)
            test = interaction.test
            assert test.test == "ols_hc2"
            assert test.estimate == pytest.approx(fit.params[name], rel=OLS_RTOL)
            assert test.se == pytest.approx(fit.bse[name], rel=OLS_RTOL)
            assert test.df == fit.df_resid
            assert test.p == pytest.approx(fit.pvalues[name], rel=1e-7)
            low, high = fit.conf_int().loc[name]
            assert (test.ci_low, test.ci_high) == pytest.approx((low, high), rel=1e-7)
        if result.omnibus is not None:
            names = [term(level, reference) for level in moderator.compared_levels]
            f_test = fit.f_test(", ".join(f"{name} = 0" for name in names))
            assert result.omnibus.statistic == pytest.approx(float(f_test.fvalue), rel=1e-8)
            assert result.omnibus.p == pytest.approx(float(f_test.pvalue), rel=1e-7)
            assert (result.omnibus.df_num, result.omnibus.df_den) == (
                f_test.df_num,
                f_test.df_denom,
            )


@pytest.mark.parametrize("seed", [3, 4])
def test_logistic_interaction_matches_statsmodels_logit(seed):
    frame = binary_frame(seed, 600, {"dem": (0.3, 0.7), "ind": (0.4, 0.5), "rep": (0.6, 0.45)})
    result = moderator_analysis(frame, THREE, treatment="t", control="c", n_boot=100)
    assert result.binary
    data = fit_frame(frame, THREE)
    fit = smf.logit("score ~ treated * C(level, Treatment('dem'))", data).fit(disp=0, tol=1e-12)
    for interaction in result.interactions:
        name = term(interaction.level, "dem")
        test = interaction.test
        assert test.test == "logit_wald"
        assert not test.corrected
        assert test.estimate == pytest.approx(fit.params[name], rel=LOGIT_RTOL)
        assert test.se == pytest.approx(fit.bse[name], rel=LOGIT_RTOL)
        assert test.p == pytest.approx(fit.pvalues[name], rel=LOGIT_RTOL)
        ratio, low, high = interaction.odds_ratio
        assert ratio == pytest.approx(math.exp(fit.params[name]), rel=LOGIT_RTOL)
        assert (low, high) == pytest.approx(tuple(np.exp(fit.conf_int().loc[name])), rel=1e-5)
    names = [term(level, "dem") for level in THREE.compared_levels]
    wald = fit.wald_test(", ".join(f"{name} = 0" for name in names), scalar=True)
    assert result.omnibus.statistic == pytest.approx(float(wald.statistic), rel=LOGIT_RTOL)
    assert result.omnibus.p == pytest.approx(float(wald.pvalue), rel=1e-5)


# --------------------------------------------------------------------------- planted


def test_a_planted_interaction_is_recovered_on_continuous_scores():
    # SD 1 in every cell: d = the planted shift; the d difference is 0.8 - 0.2 = 0.6
    frame = continuous_frame(
        5,
        8000,
        {"lib": 0.2, "mod": 0.5, "con": 0.8},
        labels={
            "lib": ["very liberal", "liberal"],
            "mod": ["moderate"],
            "con": ["conservative", "very conservative"],
        },
    )
    result = moderator_analysis(frame, POLITICS, treatment="t", control="c", n_boot=1000)
    (interaction,) = result.interactions
    assert abs(interaction.d_difference - 0.6) < 3 * interaction.se
    assert interaction.ci_low < 0.6 < interaction.ci_high
    assert interaction.ci99_low < interaction.ci_low and interaction.ci99_high > interaction.ci_high
    assert abs(interaction.test.estimate - 0.6) < 3 * interaction.test.se  # SD 1: raw = d
    assert interaction.test.p < 1e-6
    # the bootstrap and the large-sample SE agree at this size
    assert (interaction.ci_high - interaction.ci_low) / 3.92 == pytest.approx(
        interaction.se, rel=0.1
    )
    assert dict(result.excluded) == {"moderate": int((frame["politics"] == "moderate").sum())}


def test_a_planted_interaction_is_recovered_on_01_codes():
    rates = {"dem": (0.4, 0.7), "rep": (0.5, 0.5)}
    frame = binary_frame(6, 12000, rates)
    moderator = Moderator.of("party", ["dem", "rep"])
    result = moderator_analysis(frame, moderator, treatment="t", control="c", n_boot=1000)
    (interaction,) = result.interactions

    def d(control: float, treatment: float) -> float:
        var = (control * (1 - control) + treatment * (1 - treatment)) / 2
        return (treatment - control) / math.sqrt(var)

    def log_or(control: float, treatment: float) -> float:
        return math.log(treatment / (1 - treatment)) - math.log(control / (1 - control))

    true_d = d(*rates["rep"]) - d(*rates["dem"])
    true_log_ratio = log_or(*rates["rep"]) - log_or(*rates["dem"])
    # within 3 SEs (a fixed seed: these hold or fail once and for all)
    assert abs(interaction.d_difference - true_d) < 3 * interaction.se
    assert interaction.ci_low < true_d < interaction.ci_high
    assert abs(interaction.test.estimate - true_log_ratio) < 3 * interaction.test.se
    assert interaction.test.ci_low < true_log_ratio < interaction.test.ci_high
    dem = result.levels[0].odds_ratio
    assert dem.ci_low < math.exp(log_or(*rates["dem"])) < dem.ci_high


def test_without_an_interaction_tests_reject_at_about_the_nominal_rate():
    # about 50 scores a cell; at 20 a cell the HC2 t test rejects about 7% and the
    # percentile interval covers about 93% (1,000 null data sets, docs/motivated-reasoning.md)
    ols, logit, covered = [], [], []
    moderator = Moderator.of("party", ["a", "b"])
    for seed in range(300):
        frame = continuous_frame(seed, 200, {"a": 0.5, "b": 0.5}, attribute="party")
        result = moderator_analysis(frame, moderator, treatment="t", control="c", n_boot=300)
        (interaction,) = result.interactions
        ols.append(interaction.test.p < 0.05)
        covered.append(interaction.ci_low <= 0 <= interaction.ci_high)
        binary = binary_frame(seed, 200, {"a": (0.4, 0.6), "b": (0.4, 0.6)})
        result = moderator_analysis(binary, moderator, treatment="t", control="c", n_boot=10)
        logit.append(result.interactions[0].test.p < 0.05)
    # 300 draws at 5%: SD 1.3 points; 2% .. 9% is about -2.3 .. +3 SD
    assert 0.02 <= np.mean(ols) <= 0.09
    assert 0.02 <= np.mean(logit) <= 0.09
    assert np.mean(covered) >= 0.91


# --------------------------------------------------------------------------- degenerate


def test_an_empty_level_gives_nans_with_reasons():
    frame = continuous_frame(7, 100, {"dem": 0.4}, attribute="party")
    moderator = Moderator.of("party", ["dem", "rep"])
    result = moderator_analysis(frame, moderator, treatment="t", control="c", n_boot=50)
    rep = result.levels[1]
    assert math.isnan(rep.statistics.d)
    assert rep.reason == "no participants in level 'rep'"
    (interaction,) = result.interactions
    assert math.isnan(interaction.d_difference) and math.isnan(interaction.test.p)
    assert "'rep': no participants" in interaction.reason
    assert "too few scores in a cell (rep/c: 0, rep/t: 0; needs 2)" in interaction.reason


def test_no_spread_and_too_few_scores_are_named():
    frame = pd.DataFrame(
        {
            "condition": ["t", "t", "c", "c", "t", "c", "c"],
            "party": ["a", "a", "a", "a", "b", "b", "b"],
            "score": [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0],
        }
    )
    result = moderator_analysis(
        frame, Moderator.of("party", ["a", "b"]), treatment="t", control="c", n_boot=50
    )
    a, b = result.levels
    assert a.reason.startswith("d undefined: no spread in either group: every score is 1")
    assert b.reason.startswith("d undefined: too few scores (treatment 1, control 2")
    assert "too few scores in a cell (b/t: 1; needs 2)" in result.interactions[0].reason


def test_a_zero_count_is_corrected_and_flagged():
    rows = [("t", "a", 1.0)] * 10 + [("c", "a", 1.0)] * 6 + [("c", "a", 0.0)] * 4
    rows += [("t", "b", 1.0)] * 5 + [("t", "b", 0.0)] * 5 + [("c", "b", 1.0)] * 5
    rows += [("c", "b", 0.0)] * 5
    frame = pd.DataFrame(rows, columns=["condition", "party", "score"])
    result = moderator_analysis(
        frame, Moderator.of("party", ["a", "b"]), treatment="t", control="c", n_boot=50
    )
    a = result.levels[0].odds_ratio
    assert a.corrected and "Haldane-Anscombe" in a.reason
    assert a.odds_ratio == pytest.approx((10.5 / 0.5) / (6.5 / 4.5))
    test = result.interactions[0].test
    assert test.corrected and math.isfinite(test.p)
    assert "Haldane-Anscombe" in result.interactions[0].reason


def test_a_bare_model_without_attributes_gives_reasons_not_errors():
    frame = continuous_frame(8, 60, {"a": 0.5}, attribute="party").drop(columns="party")
    result = moderator_analysis(frame, POLITICS, treatment="t", control="c")
    assert "no 'politics' column" in result.reason
    rows = result.rows()
    assert [row["level"] for row in rows] == ["liberal", "conservative", INTERACTION]
    assert all("--no-persona" in row["reason"] for row in rows)
    assert all(math.isnan(row["d"]) for row in rows)


def test_expected_mode_codes_get_ols_and_no_odds_ratio():
    frame = binary_frame(9, 200, {"a": (0.3, 0.6), "b": (0.3, 0.4)})
    frame["score"] = frame["score"] * 0.8 + 0.1  # probabilities, not 0/1
    result = moderator_analysis(
        frame, Moderator.of("party", ["a", "b"]), treatment="t", control="c", n_boot=50
    )
    assert not result.binary
    assert result.interactions[0].test.test == "ols_hc2"
    rows = result.rows()
    assert all(math.isnan(row["odds_ratio"]) for row in rows)
    assert all("not all 0/1" in row["reason"] for row in rows)


def test_a_participant_twice_is_an_error():
    frame = continuous_frame(10, 20, {"a": 0.5}, attribute="party")
    with pytest.raises(ValueError, match="one row per participant"):
        moderator_analysis(pd.concat([frame, frame]), THREE, treatment="t", control="c", n_boot=10)


# --------------------------------------------------------------------------- target, rows


def test_target_comparison_and_summary_rows():
    target = InteractionTarget(d_difference=0.6, ci=(0.4, 0.8), source="planted")
    moderator = Moderator.of(
        "politics",
        {"liberal": ["very liberal", "liberal"], "conservative": ["conservative"]},
        target=target,
    )
    frame = continuous_frame(
        11,
        4000,
        {"lib": 0.2, "con": 0.8},
        labels={"lib": ["very liberal", "liberal"], "con": ["conservative"]},
    )
    result = moderator_analysis(frame, moderator, treatment="t", control="c", n_boot=500)
    comparison = result.target_comparison()
    assert comparison["level"] == "conservative"
    assert comparison["within_target_ci"] is True
    assert comparison["target_in_ci"] is True
    assert comparison["same_sign_sig"] is True
    rows = result.rows()
    assert [(row["level"], row["comparison"]) for row in rows] == [
        ("liberal", ""),
        ("conservative", ""),
        (INTERACTION, "conservative - liberal"),
    ]
    assert all(set(row) == set(MODERATOR_COLUMNS) for row in rows)
    interaction = rows[-1]
    assert interaction["target_d"] == 0.6 and interaction["target_ci_low"] == 0.4
    assert interaction["d"] == result.interactions[0].d_difference
    assert interaction["test"] == "ols_hc2" and interaction["coefficient"] > 0
    assert rows[0]["test"] == "welch" and rows[0]["labels"] == "very liberal, liberal"


def test_three_levels_give_an_interaction_row_per_level_and_an_omnibus_row():
    frame = continuous_frame(12, 600, {"dem": 0.1, "ind": 0.4, "rep": 0.9}, attribute="party")
    result = moderator_analysis(frame, THREE, treatment="t", control="c", n_boot=200)
    rows = result.rows()
    assert [row["comparison"] for row in rows if row["level"] == INTERACTION] == [
        "ind - dem",
        "rep - dem",
        "all levels",
    ]
    omnibus = rows[-1]
    assert omnibus["test"] == "ols_hc2_omnibus" and omnibus["p"] < 0.01
    assert omnibus["df"] == result.omnibus.df_den
    assert math.isnan(omnibus["d"]) and "no single d" in omnibus["reason"]


def test_a_named_moderator_names_its_rows():
    strength = Moderator.from_table(
        {
            "name": "strength",
            "attribute": "party",
            "levels": {"strong": ["dem", "rep"], "weak": ["ind"]},
            "target": {"d_difference": 0.2, "ci": [0.0, 0.4], "source": "made up"},
        }
    )
    assert strength.target.ci == (0.0, 0.4) and strength.label == "strength"
    frame = continuous_frame(13, 200, {"dem": 0.5, "ind": 0.5, "rep": 0.5}, attribute="party")
    rows = moderator_analysis(frame, strength, treatment="t", control="c", n_boot=50).rows()
    assert {row["moderator"] for row in rows} == {"strength"}
    assert rows[-1]["target_d"] == 0.2
