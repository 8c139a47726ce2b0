"""Replication statistics against scipy, hand computations and ML1's published numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulacra.analysis.replication import (
    Code,
    Composite,
    Drop,
    EffectStatistics,
    Rank,
    Reverse,
    Sqrt,
    apply_steps,
    code_binary,
    composite_mean,
    d_confidence_interval,
    d_for_power,
    d_standard_error,
    drop_values,
    effect_criteria,
    effect_statistics,
    overall_summary,
    rank_transform,
    reverse_scale,
    small_telescopes,
    sqrt_transform,
    standardized_mean_difference,
    two_sample_power,
    variance_decomposition,
    welch_test,
)


def binary(ones: int, n: int) -> np.ndarray:
    return np.r_[np.ones(ones), np.zeros(n - ones)]


# --------------------------------------------------------------------------- scoring steps


def test_code_binary_codes_sampled_and_expected_answers_per_condition():
    cells = [{"No": 1.0}, {"Yes": 1.0}, {"Yes": 0.3, "No": 0.7}, None, {"Yes": 0.25, "No": 0.75}]
    conditions = ["allow", "allow", "allow", "forbid", "forbid"]
    one = {"allow": ["No"], "forbid": ["Yes"]}
    coded = code_binary(cells, conditions, one)
    np.testing.assert_allclose(coded[[0, 1, 2, 4]], [1.0, 0.0, 0.7, 0.25])
    assert math.isnan(coded[3])


def test_reverse_scale_maps_one_to_points():
    np.testing.assert_array_equal(reverse_scale([1, 9, 5, 2], 9), [9, 1, 5, 8])
    assert math.isnan(reverse_scale([np.nan], 7)[0])


def test_drop_values_drops_at_and_beyond_both_bounds():
    values = [1000, 1500, 1501, 5999, 6000, 9000, np.nan]
    out = drop_values(values, at_or_below=1500, at_or_above=6000)
    np.testing.assert_array_equal(np.isnan(out), [True, True, False, False, True, True, True])
    only_high = drop_values([624, 625, 700], at_or_above=625)
    np.testing.assert_array_equal(only_high[:1], [624])
    assert np.isnan(only_high[1:]).all()


def test_sqrt_then_drop_25_equals_dropping_raw_625_and_more():
    raw = np.array([0, 4, 100, 624, 625, 10_000, -3])
    rooted = drop_values(sqrt_transform(raw), at_or_above=25)
    expected = np.sqrt(np.where((raw >= 0) & (raw < 625), raw, np.nan))
    np.testing.assert_allclose(rooted, expected)


def test_rank_transform_matches_scipy_average_ranks_and_keeps_missing():
    values = np.array([3.0, np.nan, 1.0, 3.0, 2.0, 10.0, 3.0])
    ranks = rank_transform(values)
    present = ~np.isnan(values)
    np.testing.assert_allclose(ranks[present], stats.rankdata(values[present]))
    np.testing.assert_allclose(ranks[present], [4, 1, 4, 2, 6, 4])
    assert np.isnan(ranks[1])


def test_composite_mean_needs_min_valid_items():
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": [3.0, np.nan, np.nan], "c": [5, 6, 7]})
    out = composite_mean(frame, min_valid=2)
    np.testing.assert_allclose(out[:2], [3.0, 4.0])
    assert math.isnan(out[2])
    np.testing.assert_allclose(composite_mean(frame, min_valid=1), [3.0, 4.0, 7.0])


def test_apply_steps_runs_ml1_anchoring_scoring_in_order():
    frame = pd.DataFrame(
        {
            "condition": ["low", "low", "low", "high", "high", "high"],
            "estimate": [1000.0, 2500.0, 2800.0, 3000.0, 6000.0, 2800.0],
        }
    )
    out = apply_steps(frame, [Drop("estimate", 1500, 6000), Rank("estimate")])
    np.testing.assert_allclose(out["estimate"].to_numpy(), [np.nan, 1, 2.5, 4, np.nan, 2.5])
    assert frame["estimate"].iloc[0] == 1000.0  # the input is not modified


def test_apply_steps_code_reverse_sqrt_composite():
    frame = pd.DataFrame(
        {
            "condition": ["a", "b"],
            "pick": [{"x": 1.0}, {"x": 0.2, "y": 0.8}],
            "likert": [2.0, 9.0],
            "count": [16.0, 49.0],
        }
    )
    steps = [
        Code("pick", {"a": frozenset({"x"}), "b": frozenset({"y"})}),
        Reverse("likert", 9),
        Sqrt("count"),
        Composite("both", ("likert", "count"), 2),
    ]
    out = apply_steps(frame, steps)
    np.testing.assert_allclose(out["pick"], [1.0, 0.8])
    np.testing.assert_allclose(out["likert"], [8.0, 1.0])
    np.testing.assert_allclose(out["count"], [4.0, 7.0])
    np.testing.assert_allclose(out["both"], [6.0, 4.0])


# --------------------------------------------------------------------------- effect size


def test_standardized_mean_difference_by_hand():
    a, b = [1, 2, 3, 4], [2, 3, 4, 5, 6]
    spread = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)  # sqrt((5/3 + 5/2) / 2)
    assert standardized_mean_difference(a, b) == pytest.approx((2.5 - 4.0) / spread)
    assert standardized_mean_difference(a, b) == pytest.approx(-1.039230, abs=1e-6)
    assert standardized_mean_difference([1, np.nan, 3], [1, 1, 2]) == pytest.approx(
        (2 - 4 / 3) / math.sqrt((2 + 1 / 3) / 2)
    )


def test_standardized_mean_difference_undefined_cases():
    assert math.isnan(standardized_mean_difference([1.0], [1.0, 2.0]))
    assert math.isnan(standardized_mean_difference([1.0, 1.0], [1.0, 1.0]))


@pytest.mark.parametrize(
    ("treatment", "control", "published"),
    [
        (binary(695, 2820), binary(221, 3079), 0.49),  # category scales, high - low
        (binary(2377, 3074), binary(2047, 3202), 0.30),  # reciprocity, second - first
        (binary(1974, 3174), binary(3097 - 2059, 3097), 0.60),  # P(risky), loss - gain
        (binary(round(0.237 * 3122), 3122), binary(round(0.072 * 3170), 3170), 0.47),
        (binary(round(0.763 * 3122), 3122), binary(round(0.072 * 3170), 3170), 1.96),
    ],
    ids=["scales", "reciprocity", "gain_loss", "allowed_corrected", "allowed_published"],
)
def test_d_on_01_codes_reproduces_ml1_from_its_counts(treatment, control, published):
    assert standardized_mean_difference(treatment, control) == pytest.approx(published, abs=0.006)


def test_d_standard_error_and_ci_reproduce_the_manylabs_notes():
    # Sunk costs: d = 0.27 with n = 3243 / 3087 -> 95% CI [0.22, 0.32] (ML1's sunk-cost effect).
    low, high = d_confidence_interval(0.27, 3243, 3087, 0.95)
    assert (round(low, 2), round(high, 2)) == (0.22, 0.32)
    se = d_standard_error(0.27, 3243, 3087)
    assert se == pytest.approx(math.sqrt(6330 / (3243 * 3087) + 0.27**2 / (2 * 6330)))
    _, high99 = d_confidence_interval(0.27, 3243, 3087, 0.99)
    assert high99 - 0.27 == pytest.approx(stats.norm.ppf(0.995) * se)
    assert all(math.isnan(v) for v in d_confidence_interval(math.nan, 10, 10))


def test_welch_test_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 2.0, 13), rng.normal(0.0, 1.0, 21)
    t, df, p = welch_test(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert t == pytest.approx(reference.statistic)
    assert p == pytest.approx(reference.pvalue)
    assert df == pytest.approx(reference.df)
    assert all(math.isnan(v) for v in welch_test([1, 1], [2, 2]))


def test_effect_statistics_collects_everything():
    a, b = [3.0, 4.0, 5.0, np.nan], [1.0, 2.0, 3.0]
    s = effect_statistics(a, b)
    assert (s.n_treatment, s.n_control) == (3, 3)
    assert s.d == pytest.approx(2.0)  # difference 2, both SDs 1
    assert (s.ci_low, s.ci_high) == pytest.approx(d_confidence_interval(2.0, 3, 3, 0.95))
    assert (s.ci99_low, s.ci99_high) == pytest.approx(d_confidence_interval(2.0, 3, 3, 0.99))
    assert s.p == pytest.approx(stats.ttest_ind([3, 4, 5], [1, 2, 3], equal_var=False).pvalue)


# --------------------------------------------------------------------------- small telescopes


def test_d33_has_one_third_power_by_noncentral_t():
    d33 = d_for_power(40)
    assert two_sample_power(d33, 40) == pytest.approx(1 / 3, abs=1e-9)
    # Simonsohn (2015): a study with 20 per cell has 33% power for d of about 0.49.
    assert d33 == pytest.approx(0.49, abs=0.01)
    # Against the normal approximation d33 ~ (z_.975 + z_(1/3)) sqrt(4 / N) for large N.
    approx = (stats.norm.ppf(0.975) + stats.norm.ppf(1 / 3)) * math.sqrt(4 / 2000)
    assert d_for_power(2000) == pytest.approx(approx, rel=0.01)


def test_two_sample_power_by_simulation():
    rng = np.random.default_rng(0)
    d, n, trials = 0.6, 30, 20_000
    a, b = rng.normal(d, 1, (trials, n // 2)), rng.normal(0, 1, (trials, n // 2))
    share = (stats.ttest_ind(a, b, axis=1).pvalue < 0.05).mean()
    assert two_sample_power(d, n) == pytest.approx(share, abs=0.012)


def test_small_telescopes_by_hand():
    p, passed = small_telescopes(0.1, 0.05, 0.3)
    assert p == pytest.approx(stats.norm.cdf(-4.0))
    assert passed is False
    p, passed = small_telescopes(0.25, 0.1, 0.3)
    assert p == pytest.approx(stats.norm.cdf(-0.5))
    assert passed is True
    assert small_telescopes(math.nan, 0.1, 0.3) == (pytest.approx(math.nan, nan_ok=True), None)
    with pytest.raises(ValueError, match="n_total"):
        d_for_power(3)


def stats_with(d: float, se: float, p: float, ci: tuple[float, float]) -> EffectStatistics:
    nan = math.nan
    return EffectStatistics(20, 20, nan, nan, nan, nan, d, se, ci[0], ci[1], nan, nan, nan, nan, p)


def test_effect_criteria_by_hand():
    s = stats_with(0.5, 0.1, 0.001, (0.3, 0.7))
    c = effect_criteria(s, target_d=0.45, target_ci=(0.4, 0.6), original_d=0.69, original_n=59)
    assert c["same_sign_sig"] is True
    assert c["within_target_ci"] is True
    assert c["original_in_ci"] is True
    assert c["d33"] == pytest.approx(d_for_power(59))
    assert c["small_telescopes_pass"] is True
    wrong = effect_criteria(
        stats_with(-0.5, 0.1, 0.001, (-0.7, -0.3)),
        target_d=0.45,
        target_ci=(0.4, 0.6),
        original_d=0.69,
        original_n=59,
    )
    assert wrong["same_sign_sig"] is False
    assert wrong["within_target_ci"] is False
    assert wrong["original_in_ci"] is False
    assert wrong["small_telescopes_pass"] is False
    unknown = effect_criteria(s, target_d=0.3, target_ci=(0.2, 0.4))
    assert unknown["small_telescopes_pass"] is None and unknown["original_in_ci"] is None


def test_effect_criteria_flip_small_telescopes_for_negative_originals():
    s = stats_with(-0.5, 0.1, 0.001, (-0.7, -0.3))
    c = effect_criteria(s, target_d=-0.4, target_ci=(-0.6, -0.2), original_d=-0.6, original_n=59)
    assert c["small_telescopes_pass"] is True
    assert c["d33"] < 0


# --------------------------------------------------------------------------- across effects


def test_overall_summary_by_hand():
    table = pd.DataFrame(
        {
            "d": [0.5, 1.0, -0.2, 0.05, 0.6, np.nan],
            "p": [0.01, 0.001, 0.3, 0.6, 0.01, np.nan],
            "target_d": [0.3, 1.2, 0.6, 0.03, -0.02, 0.2],
            "original_d": [0.2, 0.9, np.nan, 0.5, 0.8, 0.3],
            "negative_control": [False, False, False, True, True, False],
            "same_sign_sig": [True, True, False, False, False, None],
            "within_target_ci": [False, True, False, True, False, None],
            "small_telescopes_pass": [True, True, False, True, True, None],
            "original_in_ci": [True, False, None, True, True, None],
        }
    )
    out = overall_summary(table)
    defined = table.iloc[:5]
    assert out["n_effects"] == 6 and out["n_defined"] == 5
    assert out["r_ml1"] == pytest.approx(np.corrcoef(defined["d"], defined["target_d"])[0, 1])
    both = defined.dropna(subset=["original_d"])
    assert out["r_original"] == pytest.approx(np.corrcoef(both["d"], both["original_d"])[0, 1])
    assert out["sign_agreement"] == pytest.approx(2 / 3)
    assert out["specificity"] == pytest.approx(1 / 2)
    assert out["n_replicable"] == 4 and out["n_negative_controls"] == 2
    assert out["replicated_same_sign_sig"] == 2
    assert out["replicated_within_target_ci"] == 1
    assert out["replicated_small_telescopes_pass"] == 2
    assert out["replicated_original_in_ci"] == 1


# --------------------------------------------------------------------------- variance


def test_variance_decomposition_by_hand_balanced():
    # Two conditions x two personas x three runs.
    scores = {
        ("c1", "p1"): [1.0, 2.0, 3.0],
        ("c1", "p2"): [4.0, 5.0, 6.0],
        ("c2", "p3"): [2.0, 2.0, 2.0],
        ("c2", "p4"): [8.0, 6.0, 7.0],
    }
    rows = [
        {"condition": c, "participant": p, "run": r, "score": x}
        for (c, p), xs in scores.items()
        for r, x in enumerate(xs)
    ]
    out = variance_decomposition(pd.DataFrame(rows))
    # Means: p1 2, p2 5, p3 2, p4 7; c1 3.5, c2 4.5; grand 4.
    assert out["ss_condition"] == pytest.approx(6 * 0.25 + 6 * 0.25)
    assert out["ss_persona"] == pytest.approx(3 * (1.5**2 * 2) + 3 * (2.5**2 * 2))
    assert out["ss_run"] == pytest.approx(2 + 2 + 0 + 2)
    ms_run = 6 / (12 - 4)
    ms_persona = out["ss_persona"] / (4 - 2)
    assert out["var_run"] == pytest.approx(ms_run)
    assert out["var_persona"] == pytest.approx((ms_persona - ms_run) / 3)
    assert out["run_persona_ratio"] == pytest.approx(out["var_run"] / out["var_persona"])
    total = out["ss_condition"] + out["ss_persona"] + out["ss_run"]
    assert total == pytest.approx(((np.concatenate(list(scores.values())) - 4) ** 2).sum())
    assert out["n_participants"] == 4 and out["n_runs"] == 3


def test_variance_decomposition_zero_persona_variance_gives_infinite_ratio():
    rows = [
        {"condition": "c", "participant": p, "run": r, "score": float(r)}
        for p in ("a", "b")
        for r in range(3)
    ]
    out = variance_decomposition(pd.DataFrame(rows))
    assert out["var_persona"] == 0.0
    assert out["run_persona_ratio"] == math.inf
    empty = variance_decomposition(
        pd.DataFrame(columns=["condition", "participant", "run", "score"])
    )
    assert math.isnan(empty["run_persona_ratio"])
