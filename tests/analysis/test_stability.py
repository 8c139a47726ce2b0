"""Stability statistics on synthetic tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulacra.analysis.stability import (
    ALL_PRESSURES,
    SUMMARY_COLUMNS,
    StabilitySettings,
    axis_curves,
    bootstrap_mean,
    dialogue_scores,
    drift_reduction,
    half_life,
    half_lives,
    line_retention,
    paired_contrast,
    paired_differences,
    percentile_interval,
    retention_curves,
    self_report_lift,
    summarize,
)

SETTINGS = StabilitySettings(n_boot=400, confidence=0.95, seed=3)


# --------------------------------------------------------------------------- primitives


def test_half_life_counts_pressure_turns_until_the_excess_halves():
    # chance 0.25, reference after warm-up 2 is 0.85 (excess 0.6): halves at <= 0.55
    curve = [0.25, 0.7, 0.85, 0.8, 0.6, 0.5, 0.3]
    assert half_life(curve, warmup=2, chance=0.25) == 3.0


def test_half_life_is_censored_when_it_never_halves_and_nan_without_a_persona():
    assert half_life([0.25, 0.9, 0.9, 0.8, 0.7], warmup=1, chance=0.25) == float("inf")
    assert np.isnan(half_life([0.25, 0.2, 0.1, 0.1], warmup=1, chance=0.25))


def test_bootstrap_mean_covers_the_mean_and_is_reproducible():
    x = np.arange(10.0)
    est, lo, hi = bootstrap_mean(x, SETTINGS, SETTINGS.rng("a"))
    assert est == 4.5 and lo < 4.5 < hi
    assert (est, lo, hi) == bootstrap_mean(x, SETTINGS, SETTINGS.rng("a"))
    one = bootstrap_mean([2.0, np.nan], SETTINGS, SETTINGS.rng("a"))
    assert one[0] == 2.0 and np.isnan(one[1])


def test_percentile_interval_keeps_infinities():
    lo, hi = percentile_interval(np.array([1.0, 2.0, np.inf, np.inf]), 0.5)
    assert lo == 1.0 and hi == np.inf


def test_paired_contrast_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    shifted = 0.3 + rng.normal(0, 0.05, 30)
    _, lo, hi, p = paired_contrast(shifted, SETTINGS, SETTINGS.rng("x"))
    assert lo > 0.25 and hi < 0.35 and p < 0.01
    noise = rng.normal(0, 0.05, 30)
    assert paired_contrast(noise, SETTINGS, SETTINGS.rng("y"))[3] > 0.05


def test_drift_reduction_is_the_relative_cut_in_mean_drift():
    uncapped = np.array([0.4, 0.6, 0.5, 0.5])
    capped = uncapped * 0.45  # a 55% reduction in every pair
    est, lo, hi = drift_reduction(capped, uncapped, SETTINGS, SETTINGS.rng("c"))
    assert est == pytest.approx(55.0) and lo == pytest.approx(55.0) and hi == pytest.approx(55.0)
    assert np.isnan(drift_reduction([0.1], [-0.2], SETTINGS, SETTINGS.rng("c"))[0])


# --------------------------------------------------------------------------- tables


def synthetic_turns(decay: dict[tuple[str, str], float], n_dialogues=4, turns=6, warmup=2):
    """Retention curves 0.25 -> 0.85 during the warm-up, then geometric decay of the excess."""
    rows = []
    for (source, pressure), rate in decay.items():
        for d in range(n_dialogues):
            persona = "default" if source == "none" else "mara"
            unit = f"{source}.{pressure}.{d}"
            for t in range(turns + 1):
                if t == 0:
                    m = 0.25
                elif t <= warmup:
                    m = 0.85
                else:
                    m = 0.25 + 0.6 * rate ** (t - warmup)
                phase = "start" if t == 0 else ("warmup" if t <= warmup else "pressure")
                rows.append(
                    {
                        "unit_id": unit,
                        "model": "m",
                        "source": source,
                        "persona": persona,
                        "pressure": pressure,
                        "paraphrase": d % 2,
                        "seed": d // 2,
                        "capping": "off",
                        "turns": turns,
                        "warmup": warmup,
                        "turn": t,
                        "phase": phase,
                        "prior": 0.25,
                        "retention": m + 0.001 * d,
                        "prompt_to_line": np.nan if t == 0 else 0.5,
                        "line_to_line": np.nan if t <= 1 else 0.1 * d,
                    }
                )
    return pd.DataFrame(rows)


def test_retention_curves_average_over_dialogues():
    turns = synthetic_turns({("prompted", "none"): 1.0})
    curves = retention_curves(turns, SETTINGS)
    at0 = curves[curves["turn"] == 0].iloc[0]
    assert at0["estimate"] == pytest.approx(0.25 + 0.0015) and at0["n"] == 4
    assert list(curves["turn"]) == list(range(7))


def test_half_lives_per_condition_known_answers():
    # rate 0.45 halves the excess after 1 pressure turn; rate 0.8: 0.8^3 = 0.51, 0.8^4 = 0.41 -> 4
    turns = synthetic_turns(
        {("prompted", "drop"): 0.45, ("prompted", "slow"): 0.8, ("prompted", "none"): 1.0}
    )
    h = half_lives(turns, SETTINGS).set_index("pressure")
    assert h.loc["drop", "estimate"] == 1.0
    assert h.loc["slow", "estimate"] == 4.0
    assert h.loc["none", "estimate"] == np.inf and h.loc["none", "censored"]


def synthetic_probes(turns):
    units = turns.groupby("unit_id")[
        ["model", "source", "persona", "pressure", "paraphrase", "seed", "capping", "turns"]
    ].first()
    reports, qa = [], []
    for unit, row in units.iterrows():
        end = row["turns"]
        for turn, p in ((0, 0.9), (end, 0.6)):
            reports.append(
                {
                    "unit_id": unit,
                    "turn": turn,
                    "candidate": "mara",
                    "assigned": True,
                    "probability": p,
                }
            )
            reports.append(
                {
                    "unit_id": unit,
                    "turn": turn,
                    "candidate": "x",
                    "assigned": False,
                    "probability": 1 - p,
                }
            )
        for occasion, p in (("start", 0.8), ("end", 0.5)):
            for fact in ("fact0", "fact1"):
                qa.append(
                    {
                        "unit_id": unit,
                        "occasion": occasion,
                        "fact": fact,
                        "correct": True,
                        "probability": p,
                    }
                )
                qa.append(
                    {
                        "unit_id": unit,
                        "occasion": occasion,
                        "fact": fact,
                        "correct": False,
                        "probability": 1 - p,
                    }
                )
    return pd.DataFrame(reports), pd.DataFrame(qa)


def test_dialogue_scores_known_answers():
    turns = synthetic_turns({("prompted", "drop"): 0.5})
    reports, qa = synthetic_probes(turns)
    scores = dialogue_scores(turns, reports, qa).set_index("unit_id")
    first = scores.loc["prompted.drop.0"]
    assert first["retention"] == pytest.approx(0.25 + 0.6 * 0.5**4)
    assert first["drift"] == pytest.approx(0.6 * (1 - 0.5**4))
    assert first["prompt_to_line"] == 0.5
    assert scores.loc["prompted.drop.3", "line_to_line"] == pytest.approx(0.3)
    assert first["self_report"] == 0.6
    assert first["qa_consistency"] == 0.5 and first["qa_change"] == pytest.approx(-0.3)


def test_paired_differences_pair_on_the_shared_keys():
    scores = pd.DataFrame(
        {"source": ["a", "a", "b", "b"], "seed": [0, 1, 1, 0], "v": [1.0, 5.0, 2.0, 0.5]}
    )
    np.testing.assert_allclose(
        paired_differences(scores, "v", "source", "a", "b", ["seed"]), [0.5, 3.0]
    )


TWO_SOURCES_TWO_PRESSURES = {
    ("prompted", "drop"): 0.5,
    ("prompted", "none"): 1.0,
    ("none", "drop"): 0.9,
    ("none", "none"): 1.0,
}
"""Decay rates of the excess retention: a prompted persona and the default, under drop and none."""


def test_summary_has_every_metric_and_the_contrasts():
    turns = synthetic_turns(TWO_SOURCES_TWO_PRESSURES)
    reports, qa = synthetic_probes(turns)
    summary = summarize(turns, reports, qa, SETTINGS)
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    metrics = set(summary["metric"])
    assert {
        "retention",
        "half_life",
        "prompt_to_line",
        "line_to_line",
        "qa_consistency",
        "pressure_effect",
        "source_contrast",
    } <= metrics
    assert "capping_drift_reduction" not in metrics  # no capped runs
    effect = summary[
        (summary["metric"] == "pressure_effect")
        & (summary["condition"] == "prompted / drop - none")
    ].iloc[0]
    assert effect["estimate"] == pytest.approx(0.6 * 0.5**4 - 0.6) and effect["ci_high"] < 0
    ptl = summary[
        (summary["metric"] == "pressure_effect_prompt_to_line")
        & (summary["condition"] == "prompted / drop - none")
    ].iloc[0]
    assert ptl["estimate"] == 0.0 and ptl["n"] == 4  # prompt-to-line is 0.5 in both
    contrast = summary[
        (summary["metric"] == "source_contrast")
        & (summary["condition"] == "prompted - none / drop")
    ].iloc[0]
    assert contrast["estimate"] == pytest.approx(0.6 * (0.5**4 - 0.9**4))
    assert contrast["n"] == 4
    again = summarize(turns, reports, qa, SETTINGS)
    pd.testing.assert_frame_equal(summary, again)  # reproducible


def test_source_contrast_and_retention_pooled_over_pressures_known_answer():
    turns = synthetic_turns(TWO_SOURCES_TWO_PRESSURES)
    reports, qa = synthetic_probes(turns)
    summary = summarize(turns, reports, qa, SETTINGS).set_index(["metric", "condition"])
    pooled = summary.loc[("source_contrast", f"prompted - none / {ALL_PRESSURES}")]
    # pairs share pressure, paraphrase and seed: 4 pairs at 0, 4 under "drop"
    assert pooled["n"] == 8
    assert pooled["estimate"] == pytest.approx(0.6 * (0.5**4 - 0.9**4) / 2)
    assert pooled["ci_low"] <= pooled["estimate"] <= pooled["ci_high"]
    per_pressure = summary.loc[("source_contrast", "prompted - none / drop")]
    assert per_pressure["n"] == 4  # unchanged by pooling
    retention = summary.loc[("retention", f"prompted / {ALL_PRESSURES}")]
    drop, none = (
        summary.loc[("retention", f"prompted / {p}"), "estimate"] for p in ("drop", "none")
    )
    assert retention["estimate"] == pytest.approx((drop + none) / 2) and retention["n"] == 8


def test_summary_reports_capping_drift_reduction_beside_the_anchor():
    off = synthetic_turns({("prompted", "drop"): 0.5})
    on = off.copy()
    on["capping"] = "on"
    on["unit_id"] = on["unit_id"] + ".on"
    pressure = on["phase"] == "pressure"
    # capped: the excess decays to 0.6 * (1 - 0.45 * (1 - 0.5^k)) -> drift cut by 55%
    k = on["turn"] - on["warmup"]
    on.loc[pressure, "retention"] = (
        0.25
        + 0.6 * (1 - 0.45 * (1 - 0.5**k))
        + 0.001 * on.loc[pressure, "unit_id"].str.split(".").str[2].astype(int)
    )
    turns = pd.concat([off, on], ignore_index=True)
    reports, qa = synthetic_probes(turns)
    summary = summarize(turns, reports, qa, SETTINGS)
    rows = summary[summary["metric"] == "capping_drift_reduction"]
    assert len(rows) == 2
    assert rows.iloc[0]["estimate"] == pytest.approx(55.0)
    assert rows.iloc[1]["estimate"] == 55.0 and "anchor" in rows.iloc[1]["model"]


def test_line_retention_is_the_softmax_of_one_line_per_token():
    beliefs = pd.DataFrame(
        {
            "unit_id": ["u"] * 6,
            "turn": [0, 0, 1, 1, 2, 2],
            "candidate": ["a", "b"] * 3,
            "assigned": [True, False] * 3,
            "loglik": [np.nan, np.nan, -4.0, -8.0, np.nan, np.nan],
        }
    )
    turns = pd.DataFrame({"unit_id": ["u"] * 3, "turn": [0, 1, 2], "n_tokens": [0, 2, 0]})
    lines = line_retention(beliefs, turns, beta=1.0)
    assert list(lines["turn"]) == [1]  # the empty reply of turn 2 carries no evidence
    assert lines["line_retention"].iloc[0] == pytest.approx(1 / (1 + np.exp(-2)))
    summed = line_retention(beliefs, turns, beta=0.5, per_token=False)
    assert summed["line_retention"].iloc[0] == pytest.approx(1 / (1 + np.exp(-2)))


def test_self_report_lift_removes_the_option_preference():
    turns = pd.DataFrame(
        {
            "unit_id": ["p", "n"],
            "model": ["m", "m"],
            "source": ["prompted", "none"],
            "persona": ["mara", "default"],
            "pressure": ["drop", "drop"],
            "capping": ["off", "off"],
            "paraphrase": [0, 0],
            "seed": [0, 0],
        }
    )
    rows = [
        ("p", 0, "mara", 0.9),
        ("p", 4, "mara", 0.7),
        ("p", 4, "default", 0.3),
        ("n", 4, "mara", 0.8),
        ("n", 4, "default", 0.2),
    ]
    reports = pd.DataFrame(rows, columns=["unit_id", "turn", "candidate", "probability"])
    lift = self_report_lift(turns, reports)
    assert len(lift) == 1 and lift["lift"].iloc[0] == pytest.approx(-0.1)


# --------------------------------------------------------------------------- measure (b)


def with_projections(turns, warm_axis, pressure_axis, persona=1.0):
    """Add the axis projection (``warm_axis`` in the warm-up, then ``pressure_axis``) per turn."""
    out = turns.copy()
    d = out["unit_id"].str.split(".").str[-1].astype(int)
    out["axis_projection"] = np.where(
        out["phase"] == "warmup",
        warm_axis,
        np.where(out["phase"] == "pressure", pressure_axis, np.nan),
    ) + 0.01 * d * (out["turn"] > 0)
    out["persona_projection"] = np.where(out["turn"] > 0, persona + 0.1 * d, np.nan)
    return out


def test_axis_drift_is_warmup_minus_pressure_projection():
    turns = with_projections(synthetic_turns({("prompted", "drop"): 0.5}), 2.0, 1.25, persona=3.0)
    reports, qa = synthetic_probes(turns)
    scores = dialogue_scores(turns, reports, qa).set_index("unit_id")
    np.testing.assert_allclose(scores["axis_drift"], 0.75)  # the per-dialogue offset cancels
    assert scores.loc["prompted.drop.2", "axis_projection"] == pytest.approx(1.27)
    assert scores.loc["prompted.drop.3", "persona_projection"] == pytest.approx(3.3)
    curves = axis_curves(turns, SETTINGS)
    assert list(curves["turn"]) == list(range(1, 7))
    assert curves.iloc[0]["estimate"] == pytest.approx(2.0 + 0.015)
    assert curves.iloc[-1]["estimate"] == pytest.approx(1.25 + 0.015)


def test_axis_curves_are_empty_without_projections():
    assert axis_curves(synthetic_turns({("prompted", "drop"): 0.5}), SETTINGS).empty


def test_capping_drift_reduction_along_the_axis_known_answer():
    off = with_projections(synthetic_turns({("prompted", "drop"): 0.5}), 2.0, 1.0)
    on = with_projections(synthetic_turns({("prompted", "drop"): 0.5}), 2.0, 1.6)
    on["capping"] = "on"
    on["unit_id"] = on["unit_id"] + ".on"
    turns = pd.concat([off, on], ignore_index=True)
    reports, qa = synthetic_probes(turns)
    summary = summarize(turns, reports, qa, SETTINGS)
    rows = summary[summary["metric"] == "capping_drift_reduction"].set_index("condition")
    axis = rows.loc["drop (axis drift)"]
    assert axis["estimate"] == pytest.approx(60.0)  # drift 1.0 uncapped, 0.4 capped
    assert axis["ci_low"] == pytest.approx(60.0) and axis["n"] == 4
    assert "drop (retention drift)" in rows.index
    anchor = summary[summary["model"].str.contains("anchor")]
    assert anchor["estimate"].tolist() == [55.0]


def test_source_contrasts_on_projections_are_paired_known_answer():
    steered = with_projections(synthetic_turns({("steered", "drop"): 0.5}), 2.0, 1.0, persona=3.0)
    prompted = with_projections(synthetic_turns({("prompted", "drop"): 0.5}), 2.0, 1.5, persona=1.0)
    turns = pd.concat([steered, prompted], ignore_index=True)
    reports, qa = synthetic_probes(turns)
    summary = summarize(turns, reports, qa, SETTINGS)
    persona = summary[summary["metric"] == "source_contrast_persona_projection"].iloc[0]
    assert persona["condition"] == "steered - prompted / drop"
    assert persona["estimate"] == pytest.approx(2.0) and persona["n"] == 4
    drift = summary[summary["metric"] == "source_contrast_axis_drift"].iloc[0]
    assert drift["estimate"] == pytest.approx(0.5)
    means = summary[summary["metric"] == "persona_projection"].set_index("condition")
    assert means.loc["steered / drop", "estimate"] == pytest.approx(3.15)


def test_capping_contrast_is_capped_minus_uncapped_paired_known_answer():
    # two sources, two pressures; capping lifts the axis projection by 0.6 (drift 1.0 -> 0.4)
    # and costs the prompted persona's retention exactly 0.1 after the warm-up
    decay = {("prompted", "drop"): 0.5, ("prompted", "meta"): 0.5, ("none", "drop"): 0.5}
    off = with_projections(synthetic_turns(decay), 2.0, 1.0)
    on = with_projections(synthetic_turns(decay), 2.0, 1.6)
    on["capping"] = "on"
    on["unit_id"] = on["unit_id"] + ".on"
    on.loc[(on["source"] == "prompted") & (on["phase"] == "pressure"), "retention"] -= 0.1
    turns = pd.concat([off, on], ignore_index=True)
    reports, qa = synthetic_probes(turns)
    summary = summarize(turns, reports, qa, SETTINGS).set_index(["metric", "condition"])
    retention = summary.loc["capping_contrast"]
    assert retention.loc["prompted / drop / capped - uncapped", "estimate"] == pytest.approx(-0.1)
    assert retention.loc["none / drop / capped - uncapped", "estimate"] == pytest.approx(0.0)
    pooled = retention.loc["prompted / all pressures / capped - uncapped"]
    assert pooled["estimate"] == pytest.approx(-0.1) and pooled["n"] == 8
    assert pooled["ci_low"] == pytest.approx(-0.1) and pooled["p_value"] < 0.05
    axis = summary.loc["capping_contrast_axis_projection"]
    assert axis.loc["none / drop / capped - uncapped", "estimate"] == pytest.approx(0.6)
    # the drift reduction of the same run: 60% along the axis, whatever the retention did
    reduction = summary.loc[("capping_drift_reduction", "all pressures (axis drift)")]
    assert reduction["estimate"] == pytest.approx(60.0)


def test_capping_contrast_is_defined_when_there_is_no_drift_to_reduce():
    off = with_projections(synthetic_turns({("none", "drop"): 0.5}), 1.0, 2.0)  # drift -1
    on = with_projections(synthetic_turns({("none", "drop"): 0.5}), 1.0, 3.0)
    on["capping"] = "on"
    on["unit_id"] = on["unit_id"] + ".on"
    turns = pd.concat([off, on], ignore_index=True)
    reports, qa = synthetic_probes(turns)
    summary = summarize(turns, reports, qa, SETTINGS).set_index(["metric", "condition"])
    assert np.isnan(summary.loc[("capping_drift_reduction", "drop (axis drift)"), "estimate"])
    contrast = summary.loc[("capping_contrast_axis_projection", "none / drop / capped - uncapped")]
    assert contrast["estimate"] == pytest.approx(1.0) and contrast["n"] == 4
