"""Stability statistics: retention curves, half-lives, per-dialogue scores and paired contrasts.

Pure functions of the stability battery's tables (``turns``, ``self_report``,
``qa``; :mod:`simulacra.batteries.stability.run`). A *dialogue* (one unit, one
``unit_id``) is the resampling unit: every interval is a percentile bootstrap over
the dialogues of a condition (its seeds × paraphrases × personas), and every
contrast is paired over dialogues that share persona, paraphrase and seed. The
measures are defined in ``docs/stability.md``.

Conditions are ``model × source × pressure × capping``. The summary has one row
per model × metric × condition with ``estimate, ci_low, ci_high, n`` (and a
``p_value`` for the paired contrasts, from a sign-flip randomization test).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ABDULHAI_REDUCTION",
    "ALL_PRESSURES",
    "CAPPING_CONTRASTS",
    "CONDITION",
    "PAIR_KEYS",
    "PROJECTION_METRICS",
    "SCORE_METRICS",
    "SUMMARY_COLUMNS",
    "StabilitySettings",
    "axis_curves",
    "bootstrap_mean",
    "capping_contrasts",
    "condition_label",
    "dialogue_scores",
    "drift_reduction",
    "half_life",
    "half_lives",
    "line_retention",
    "paired_contrast",
    "paired_differences",
    "percentile_interval",
    "retention_curves",
    "self_report_lift",
    "summarize",
    "turn_curves",
]

CONDITION: tuple[str, ...] = ("model", "source", "pressure", "capping")
"""The columns that make a condition."""
PAIR_KEYS: tuple[str, ...] = ("persona", "paraphrase", "seed")
"""What two dialogues of different conditions share to be paired."""
SCORE_METRICS: tuple[str, ...] = (
    "retention",
    "line_retention",
    "prompt_to_line",
    "line_to_line",
    "self_report",
    "qa_consistency",
    "qa_change",
)
"""Per-dialogue scores summarised per condition (see :func:`dialogue_scores`)."""
PROJECTION_METRICS: tuple[str, ...] = ("persona_projection", "axis_projection", "axis_drift")
"""Per-dialogue scores of measure (b), summarised when the run read projections."""
SUMMARY_COLUMNS: tuple[str, ...] = (
    "model",
    "metric",
    "condition",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "p_value",
)
ABDULHAI_REDUCTION = 55.0
"""Abdulhai et al. (2025): multi-turn RL cut persona inconsistency "by over 55%"."""
SOURCE_ORDER: tuple[str, ...] = ("prompted_steered", "steered", "prompted", "none")
BASELINE_PRESSURE = "none"
ALL_PRESSURES = "all pressures"
"""The pressure label of rows pooled over every pressure of a run."""
PRESSURE_EFFECTS = {
    "retention": "pressure_effect",
    "prompt_to_line": "pressure_effect_prompt_to_line",
}
"""Scores compared between each pressure and ``none``, and the metric each becomes."""


@dataclass(frozen=True)
class StabilitySettings:
    """Resampling settings (the battery's ``[analysis]``)."""

    n_boot: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def rng(self, *key: object) -> np.random.Generator:
        """A generator seeded by the settings' seed and a key (stable across runs)."""
        tag = zlib.crc32("|".join(map(str, key)).encode())
        return np.random.default_rng([self.seed, tag])


# --------------------------------------------------------------------------- primitives


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central percentile interval of samples (infinities allowed, not interpolated)."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha], method="inverted_cdf")
    return float(lo), float(hi)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    settings: StabilitySettings,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """The mean of ``values`` (NaN dropped) with its percentile bootstrap interval.

    Returns:
        ``(estimate, ci_low, ci_high)``; all NaN without values, the interval NaN with one.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float("nan"), float("nan")
    idx = rng.integers(0, x.size, size=(settings.n_boot, x.size))
    lo, hi = percentile_interval(x[idx].mean(axis=1), settings.confidence)
    return float(x.mean()), lo, hi


def half_life(curve: Sequence[float] | np.ndarray, warmup: int, chance: float) -> float:
    """Pressure turns until the excess of retention over chance halves.

    The reference is the retention after the warm-up, ``m = curve[warmup]``; the
    half-life is the first ``j >= 1`` with ``curve[warmup + j] - chance <= (m - chance) / 2``.

    Args:
        curve: retention by turn, ``curve[0]`` the prior.
        warmup: the warm-up turns (the pressure starts at turn ``warmup + 1``).
        chance: the prior mass on the assigned identity.

    Returns:
        ``j``; ``inf`` when it never halves within the dialogue (censored); NaN when
        the reference is not above chance (nothing to halve).
    """
    curve = np.asarray(curve, dtype=float)
    reference = curve[warmup] - chance
    if not np.isfinite(reference) or reference <= 0:
        return float("nan")
    after = curve[warmup + 1 :] - chance
    below = np.flatnonzero(after <= reference / 2)
    return float(below[0] + 1) if below.size else float("inf")


def paired_contrast(
    differences: Sequence[float] | np.ndarray,
    settings: StabilitySettings,
    rng: np.random.Generator,
) -> tuple[float, float, float, float]:
    """Mean paired difference, its bootstrap interval and a sign-flip p-value.

    Returns:
        ``(estimate, ci_low, ci_high, p_value)``; the p-value is two-sided, from
        ``settings.n_boot`` random sign flips (with the +1 correction).
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    estimate, lo, hi = bootstrap_mean(d, settings, rng)
    if d.size < 2:
        return estimate, lo, hi, float("nan")
    signs = rng.choice(np.array([-1.0, 1.0]), size=(settings.n_boot, d.size))
    flipped = np.abs((signs * d).mean(axis=1))
    p = (1 + np.count_nonzero(flipped >= abs(d.mean()) - 1e-12)) / (settings.n_boot + 1)
    return estimate, lo, hi, float(p)


def drift_reduction(
    capped: Sequence[float] | np.ndarray,
    uncapped: Sequence[float] | np.ndarray,
    settings: StabilitySettings,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """Drift reduction in %: ``100 (1 - mean(capped drift) / mean(uncapped drift))``.

    Args:
        capped: per-dialogue drift with capping, paired element-wise with ``uncapped``.
        uncapped: the same dialogues' drift without capping.
        settings: the resampling settings.
        rng: the generator of the resamples.

    Returns:
        ``(estimate, ci_low, ci_high)`` from a paired bootstrap; NaN where the uncapped
        mean drift is not positive (no drift to reduce).
    """
    c = np.asarray(capped, dtype=float)
    u = np.asarray(uncapped, dtype=float)
    keep = ~(np.isnan(c) | np.isnan(u))
    c, u = c[keep], u[keep]
    if c.size == 0 or u.mean() <= 0:
        return float("nan"), float("nan"), float("nan")
    estimate = 100 * (1 - c.mean() / u.mean())
    if c.size == 1:
        return float(estimate), float("nan"), float("nan")
    idx = rng.integers(0, c.size, size=(settings.n_boot, c.size))
    um = u[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(um > 0, 100 * (1 - c[idx].mean(axis=1) / um), np.nan)
    lo, hi = percentile_interval(boot, settings.confidence)
    return float(estimate), lo, hi


# --------------------------------------------------------------------------- tables


def condition_label(source: str, pressure: str, capping: str = "off") -> str:
    """The ``condition`` of a summary row: ``"prompted / emotional"`` (``" / capped"`` if on)."""
    return f"{source} / {pressure}" + (" / capped" if capping == "on" else "")


def _curve_matrix(group: pd.DataFrame) -> tuple[np.ndarray, int, float]:
    """Dialogues × turns of retention, the warm-up and the chance level of one condition."""
    wide = group.pivot_table(index="unit_id", columns="turn", values="retention", aggfunc="first")
    return wide.to_numpy(float), int(group["warmup"].iloc[0]), float(group["prior"].iloc[0])


def turn_curves(
    turns: pd.DataFrame, column: str, settings: StabilitySettings, tag: str = "curve"
) -> pd.DataFrame:
    """The mean of ``column`` per condition and turn, with bootstrap intervals over dialogues.

    Args:
        turns: the ``turns`` table.
        column: the per-turn value averaged (``retention``, ``axis_projection``...).
        settings: the resampling settings.
        tag: names the resampling stream (keeps existing curves' intervals unchanged).

    Returns:
        Columns ``model, source, pressure, capping, turn, phase, estimate, ci_low,
        ci_high, n``.
    """
    rows = []
    for key, group in turns.groupby(list(CONDITION), sort=True):
        phases = group.groupby("turn")["phase"].first()
        for turn, at in group.groupby("turn", sort=True):
            estimate, lo, hi = bootstrap_mean(
                at[column].to_numpy(float), settings, settings.rng(tag, *key, turn)
            )
            rows.append(
                (*key, int(turn), phases[turn], estimate, lo, hi, int(at[column].notna().sum()))
            )
    columns = [*CONDITION, "turn", "phase", "estimate", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=columns)


def retention_curves(turns: pd.DataFrame, settings: StabilitySettings) -> pd.DataFrame:
    """Mean retention per condition and turn, with bootstrap intervals over dialogues.

    Returns:
        Columns ``model, source, pressure, capping, turn, phase, estimate, ci_low,
        ci_high, n`` (turn 0 is the prior).
    """
    return turn_curves(turns, "retention", settings)


def axis_curves(turns: pd.DataFrame, settings: StabilitySettings) -> pd.DataFrame:
    """Drift along the Assistant axis: the mean reply projection per condition and turn.

    Turn 0 (no reply) is left out. Empty without projections (an older run).

    Returns:
        The columns of :func:`turn_curves`; ``estimate`` is the projection on the axis.
    """
    if "axis_projection" not in turns or turns["axis_projection"].isna().all():
        return pd.DataFrame(
            columns=[*CONDITION, "turn", "phase", "estimate", "ci_low", "ci_high", "n"]
        )
    return turn_curves(turns[turns["turn"] > 0], "axis_projection", settings, tag="axis")


def half_lives(turns: pd.DataFrame, settings: StabilitySettings) -> pd.DataFrame:
    """The half-life of each condition's mean retention curve, bootstrapped over dialogues.

    Returns:
        Columns ``model, source, pressure, capping, estimate, ci_low, ci_high, n,
        censored`` (``inf``: never halved within the dialogue).
    """
    rows = []
    for key, group in turns.groupby(list(CONDITION), sort=True):
        matrix, warmup, chance = _curve_matrix(group)
        estimate = half_life(np.nanmean(matrix, axis=0), warmup, chance)
        rng = settings.rng("half_life", *key)
        n = matrix.shape[0]
        if n > 1:
            idx = rng.integers(0, n, size=(settings.n_boot, n))
            boot = [half_life(np.nanmean(matrix[i], axis=0), warmup, chance) for i in idx]
            lo, hi = percentile_interval(np.array(boot), settings.confidence)
        else:
            lo = hi = float("nan")
        rows.append((*key, estimate, lo, hi, n, bool(np.isinf(estimate))))
    columns = [*CONDITION, "estimate", "ci_low", "ci_high", "n", "censored"]
    return pd.DataFrame(rows, columns=columns)


def line_retention(
    beliefs: pd.DataFrame, turns: pd.DataFrame, beta: float = 1.0, per_token: bool = True
) -> pd.DataFrame:
    """The mass on the assigned identity from each line alone (a uniform prior, no memory).

    For reply ``t``: ``softmax_c(beta * log p(r_t | s_c, h_t) / n_t)`` (without ``/ n_t``
    when ``per_token`` is false), read at the assigned identity. Unlike the
    observer's cumulative posterior it reacts to the latest line only.

    Returns:
        Columns ``unit_id, turn, line_retention`` for the scored replies.
    """
    scored = beliefs[beliefs["turn"] > 0].merge(
        turns[["unit_id", "turn", "n_tokens"]], on=["unit_id", "turn"]
    )
    scored = scored[(scored["n_tokens"] > 0) & scored["loglik"].notna()].copy()
    scale = beta / scored["n_tokens"] if per_token else beta
    scored["z"] = scored["loglik"] * scale
    scored["z"] -= scored.groupby(["unit_id", "turn"])["z"].transform("max")
    scored["w"] = np.exp(scored["z"])
    scored["p"] = scored["w"] / scored.groupby(["unit_id", "turn"])["w"].transform("sum")
    out = scored[scored["assigned"]][["unit_id", "turn", "p"]]
    return out.rename(columns={"p": "line_retention"}).reset_index(drop=True)


def dialogue_scores(
    turns: pd.DataFrame,
    self_report: pd.DataFrame,
    qa: pd.DataFrame,
    lines: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per dialogue: its condition, pairing keys and scores.

    Scores (``docs/stability.md``):

    - ``retention``: the observer's mass on the assigned identity after the last turn;
    - ``line_retention``: the mass from each line alone (:func:`line_retention`, given
      as ``lines``), averaged over the pressure turns;
    - ``drift``: retention after the warm-up minus retention after the last turn;
    - ``prompt_to_line`` / ``line_to_line``: the per-token log-likelihood ratios,
      averaged over the pressure turns;
    - ``self_report``: P(assigned option) at the last probe;
    - ``qa_consistency``: mean P(true answer) over the facts after the last turn;
    - ``qa_change``: that minus the same mean at the start;
    - measure (b), when the run read projections (NaN otherwise):
      ``persona_projection`` and ``axis_projection``, the reply's projection on the
      assigned persona's vector and on the Assistant axis averaged over the pressure
      turns; ``axis_drift``, the mean axis projection over the warm-up replies minus
      that over the pressure replies (positive: moved away from the Assistant end).
    """
    keys = ["unit_id", *CONDITION, *PAIR_KEYS, "turns", "warmup"]
    base = turns.groupby("unit_id", sort=False)[keys[1:]].first().reset_index()
    last = turns[turns["turn"] == turns["turns"]].set_index("unit_id")["retention"]
    ref = turns[turns["turn"] == turns["warmup"]].set_index("unit_id")["retention"]
    pressure = turns[turns["phase"] == "pressure"].groupby("unit_id")
    out = base.set_index("unit_id")
    out["retention"] = last
    out["drift"] = ref - last
    out["prompt_to_line"] = pressure["prompt_to_line"].mean()
    out["line_to_line"] = pressure["line_to_line"].mean()
    for metric in ("persona_projection", "axis_projection"):
        out[metric] = pressure[metric].mean() if metric in turns else np.nan
    if "axis_projection" in turns:
        warm = turns[turns["phase"] == "warmup"].groupby("unit_id")["axis_projection"].mean()
        out["axis_drift"] = warm - out["axis_projection"]
    else:
        out["axis_drift"] = np.nan
    if lines is not None and not lines.empty:
        phase = turns[["unit_id", "turn", "phase"]]
        at = lines.merge(phase, on=["unit_id", "turn"])
        out["line_retention"] = (
            at[at["phase"] == "pressure"].groupby("unit_id")["line_retention"].mean()
        )
    else:
        out["line_retention"] = np.nan
    if not self_report.empty:
        final = self_report[
            self_report["turn"] == self_report.groupby("unit_id")["turn"].transform("max")
        ]
        out["self_report"] = final[final["assigned"]].set_index("unit_id")["probability"]
    else:
        out["self_report"] = np.nan
    if not qa.empty:
        true = qa[qa["correct"]].groupby(["unit_id", "occasion"])["probability"].mean().unstack()
        out["qa_consistency"] = true.get("end")
        out["qa_change"] = true.get("end") - true.get("start")
    else:
        out["qa_consistency"] = out["qa_change"] = np.nan
    return out.reset_index()


def self_report_lift(turns: pd.DataFrame, self_report: pd.DataFrame) -> pd.DataFrame:
    """How much a persona prompt raises the persona's self-report over no prompt at all.

    For each dialogue of a source other than ``none``: P(its persona's option) at the
    last probe minus the same option's probability in the ``none`` dialogue of the
    same model, pressure, capping, paraphrase and seed. It removes the model's
    preference among the option texts, which the raw self-report carries.

    Returns:
        Columns ``model, source, pressure, capping, persona, paraphrase, seed, lift``.
    """
    keys = ["model", "pressure", "capping", "paraphrase", "seed"]
    columns = ["model", "source", "pressure", "capping", "persona", "paraphrase", "seed", "lift"]
    if self_report.empty:
        return pd.DataFrame(columns=columns)
    units = turns.groupby("unit_id")[[*keys, "source", "persona"]].first().reset_index()
    last = self_report.groupby("unit_id")["turn"].transform("max")
    final = self_report[self_report["turn"] == last][["unit_id", "candidate", "probability"]]
    final = final.merge(units, on="unit_id")
    persona = final[(final["source"] != "none") & (final["candidate"] == final["persona"])]
    bare = final[final["source"] == "none"][[*keys, "candidate", "probability"]]
    joined = persona.merge(
        bare.rename(columns={"candidate": "persona", "probability": "bare"}),
        on=[*keys, "persona"],
    )
    joined["lift"] = joined["probability"] - joined["bare"]
    return joined[columns].reset_index(drop=True)


def paired_differences(
    scores: pd.DataFrame, metric: str, column: str, a: object, b: object, keys: Sequence[str]
) -> np.ndarray:
    """``metric`` of level ``a`` minus level ``b`` of ``column``, over dialogues sharing ``keys``.

    A dialogue of ``b`` may pair with several of ``a`` (the source ``none`` has one
    dialogue per paraphrase and seed, shared by every persona of ``prompted``).
    """
    cols = [*keys, metric]
    left = scores.loc[scores[column] == a, cols]
    right = scores.loc[scores[column] == b, cols]
    joined = left.merge(right, on=list(keys), how="inner", suffixes=("_a", "_b"))
    return (joined[f"{metric}_a"] - joined[f"{metric}_b"]).to_numpy(float)


def _row(model: str, metric: str, condition: str, stats: Sequence[float], n: int) -> dict:
    estimate, lo, hi, *p = stats
    return {
        "model": model,
        "metric": metric,
        "condition": condition,
        "estimate": estimate,
        "ci_low": lo,
        "ci_high": hi,
        "n": n,
        "p_value": p[0] if p else float("nan"),
    }


def _ordered(values: Sequence[str], order: Sequence[str]) -> list[str]:
    return sorted(values, key=lambda v: (order.index(v) if v in order else len(order), v))


SOURCE_CONTRASTS = {
    "retention": "source_contrast",
    "persona_projection": "source_contrast_persona_projection",
    "axis_drift": "source_contrast_axis_drift",
}
"""Scores compared between persona sources, and the metric each becomes."""


CAPPING_CONTRASTS = {
    "retention": "capping_contrast",
    "axis_projection": "capping_contrast_axis_projection",
    "persona_projection": "capping_contrast_persona_projection",
}
"""Scores compared between capped and uncapped dialogues, and the metric each becomes."""

CAPPED_MINUS_UNCAPPED = "capped - uncapped"
"""The last part of a capping contrast's condition label."""


def _measured(scores: pd.DataFrame, metrics: Sequence[str]) -> tuple[str, ...]:
    """The metrics among ``metrics`` the scores hold any value of."""
    return tuple(m for m in metrics if m in scores and scores[m].notna().any())


def _capping_pairs(scores: pd.DataFrame, drift: str) -> list[tuple[str, str, pd.DataFrame]]:
    """Capped and uncapped ``drift`` paired on source, persona, paraphrase and seed.

    Returns:
        ``(model, pressure, joined)`` per model and pressure, and ``"all pressures"``
        pooled when there are several; ``joined`` has columns ``on`` and ``off``.
    """
    pair = ["source", "pressure", *PAIR_KEYS]
    out = []
    for model, group in scores.groupby("model", sort=True):
        on = group[group["capping"] == "on"].set_index(pair)[drift]
        off = group[group["capping"] == "off"].set_index(pair)[drift]
        joined = pd.concat([on.rename("on"), off.rename("off")], axis=1, join="inner")
        pressures = sorted(set(joined.index.get_level_values("pressure")))
        for pressure in pressures:
            out.append((model, pressure, joined.xs(pressure, level="pressure")))
        if len(pressures) > 1:
            out.append((model, ALL_PRESSURES, joined))
    return out


def capping_contrasts(scores: pd.DataFrame, settings: StabilitySettings) -> list[dict]:
    """Capped minus uncapped, paired, per model, source and pressure (and pooled).

    For every score of :data:`CAPPING_CONTRASTS` the run measured, the mean of the
    per-pair differences capped minus uncapped (pairs share model, source, pressure,
    persona, paraphrase and seed), its bootstrap interval and a sign-flip p-value;
    condition ``SOURCE / PRESSURE / capped - uncapped``, and ``all pressures`` where
    several ran. Defined whatever the sign of the drift, unlike
    :func:`drift_reduction`.

    Args:
        scores: per-dialogue scores (:func:`dialogue_scores`) with both capping levels.
        settings: the resampling settings.

    Returns:
        Summary rows (the columns of :data:`SUMMARY_COLUMNS`).
    """
    rows = []
    for score, metric in CAPPING_CONTRASTS.items():
        if not _measured(scores, (score,)):
            continue
        for model, pressure, joined in _capping_pairs(scores, score):
            for source, pairs in joined.groupby(level="source", sort=True):
                d = (pairs["on"] - pairs["off"]).to_numpy(float)
                d = d[~np.isnan(d)]
                if d.size == 0:
                    continue
                rng = settings.rng("capping_contrast", score, model, pressure, source)
                label = f"{source} / {pressure} / {CAPPED_MINUS_UNCAPPED}"
                rows.append(_row(model, metric, label, paired_contrast(d, settings, rng), d.size))
    return rows


def _by_pressure_and_pooled(
    scores: pd.DataFrame,
) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """Dialogue scores per (model, pressure, capping), and pooled over the pressures.

    The pooled group (pressure :data:`ALL_PRESSURES`) is added where a model and
    capping level ran several pressures; pairs then also share the pressure.
    """
    out = [(key, group) for key, group in scores.groupby(["model", "pressure", "capping"])]
    for (model, capping), group in scores.groupby(["model", "capping"], sort=True):
        if group["pressure"].nunique() > 1:
            out.append(((model, ALL_PRESSURES, capping), group))
    return out


def summarize(
    turns: pd.DataFrame,
    self_report: pd.DataFrame,
    qa: pd.DataFrame,
    settings: StabilitySettings,
    lines: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The summary table: one row per model × metric × condition.

    Metrics: every score of :data:`SCORE_METRICS` per condition, ``half_life``;
    ``pressure_effect`` (retention under a pressure minus under ``none``, paired) and
    ``pressure_effect_prompt_to_line`` (the same for prompt-to-line);
    ``self_report_lift`` (:func:`self_report_lift`, paired against source ``none``);
    ``source_contrast`` (retention of one source minus a later one in
    ``prompted_steered, steered, prompted, none``, paired; per pressure and, where
    several ran, pooled over them: condition ``A - B / all pressures``, and a
    ``retention`` row per source over all pressures); ``model_contrast``
    (first model minus each other, paired; ``model`` reads ``"A - B"``) and
    ``capping_drift_reduction`` (%, paired; with Abdulhai's 55% as an anchor row) and
    ``capping_contrast*`` (:func:`capping_contrasts`), where the run has the levels
    they compare.
    """
    rows: list[dict] = []
    scores = dialogue_scores(turns, self_report, qa, lines)
    for key, group in scores.groupby(list(CONDITION), sort=True):
        model, source, pressure, capping = key
        label = condition_label(source, pressure, capping)
        for metric in (*SCORE_METRICS, *_measured(scores, PROJECTION_METRICS)):
            values = group[metric].to_numpy(float)
            stats = bootstrap_mean(values, settings, settings.rng(metric, *key))
            rows.append(_row(model, metric, label, stats, int((~np.isnan(values)).sum())))
    for (model, source, capping), group in scores.groupby(["model", "source", "capping"]):
        if group["pressure"].nunique() < 2:
            continue
        values = group["retention"].to_numpy(float)
        stats = bootstrap_mean(values, settings, settings.rng("retention", model, source, capping))
        label = condition_label(source, ALL_PRESSURES, capping)
        rows.append(_row(model, "retention", label, stats, int((~np.isnan(values)).sum())))
    for _, h in half_lives(turns, settings).iterrows():
        label = condition_label(h["source"], h["pressure"], h["capping"])
        stats = (h["estimate"], h["ci_low"], h["ci_high"])
        rows.append(_row(h["model"], "half_life", label, stats, int(h["n"])))
    for (model, source, capping), group in scores.groupby(["model", "source", "capping"]):
        pressures = sorted(set(group["pressure"]))
        if BASELINE_PRESSURE not in pressures:
            continue
        for pressure in pressures:
            if pressure == BASELINE_PRESSURE:
                continue
            label = condition_label(source, f"{pressure} - {BASELINE_PRESSURE}", capping)
            for score, metric in PRESSURE_EFFECTS.items():
                d = paired_differences(
                    group, score, "pressure", pressure, BASELINE_PRESSURE, PAIR_KEYS
                )
                if np.isnan(d).all():
                    continue
                stats = paired_contrast(
                    d, settings, settings.rng(metric, model, source, capping, pressure)
                )
                rows.append(_row(model, metric, label, stats, int((~np.isnan(d)).sum())))
    for (model, pressure, capping), group in _by_pressure_and_pooled(scores):
        sources = _ordered(sorted(set(group["source"])), SOURCE_ORDER)
        keys = ("pressure", "paraphrase", "seed")  # the source none has no persona of its own
        for i, a in enumerate(sources):
            for b in sources[i + 1 :]:
                pair = keys if "none" in (a, b) else ("pressure", *PAIR_KEYS)
                label = condition_label(f"{a} - {b}", pressure, capping)
                for score, metric in SOURCE_CONTRASTS.items():
                    if score != "retention" and not _measured(scores, (score,)):
                        continue
                    d = paired_differences(group, score, "source", a, b, pair)
                    if score != "retention":
                        d = d[~np.isnan(d)]
                        if d.size == 0:
                            continue
                    tag = ("source",) if score == "retention" else ("source", score)
                    stats = paired_contrast(
                        d, settings, settings.rng(*tag, model, pressure, capping, a, b)
                    )
                    rows.append(_row(model, metric, label, stats, int(d.size)))
    lift = self_report_lift(turns, self_report)
    for (model, source, pressure, capping), group in lift.groupby(
        ["model", "source", "pressure", "capping"]
    ):
        d = group["lift"].to_numpy(float)
        stats = paired_contrast(d, settings, settings.rng("lift", model, source, pressure, capping))
        label = condition_label(f"{source} - none", pressure, capping)
        rows.append(_row(model, "self_report_lift", label, stats, int(d.size)))
    models = list(dict.fromkeys(scores["model"]))
    for other in models[1:]:
        pair = ("source", "pressure", "capping", *PAIR_KEYS)
        for metric in ("retention", "drift"):
            d = paired_differences(scores, metric, "model", models[0], other, pair)
            stats = paired_contrast(d, settings, settings.rng("model", metric, models[0], other))
            rows.append(
                _row(f"{models[0]} - {other}", "model_contrast", metric, stats, int(d.size))
            )
    if {"on", "off"} <= set(scores["capping"]):
        drifts = {"drift": ""}
        if _measured(scores, ("axis_drift",)):
            drifts = {"axis_drift": " (axis drift)", "drift": " (retention drift)"}
        for drift, suffix in drifts.items():
            tag = ("capping",) if drift == "drift" else ("capping", drift)
            for model, pressure, joined in _capping_pairs(scores, drift):
                stats = drift_reduction(
                    joined["on"].to_numpy(),
                    joined["off"].to_numpy(),
                    settings,
                    settings.rng(*tag, model, pressure),
                )
                rows.append(
                    _row(model, "capping_drift_reduction", pressure + suffix, stats, len(joined))
                )
        rows.extend(capping_contrasts(scores, settings))
        rows.append(
            _row(
                "Abdulhai et al. 2025 (anchor)",
                "capping_drift_reduction",
                "multi-turn RL vs baseline, prompt-to-line",
                (ABDULHAI_REDUCTION, float("nan"), float("nan")),
                0,
            )
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
