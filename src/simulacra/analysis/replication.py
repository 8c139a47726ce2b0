"""Replication statistics: Many Labs 1's scoring steps, its effect size, and the criteria.

Pure functions on tidy tables, following Many Labs 1's scoring rules (Klein et al.
2014) and the replication criteria of ``docs/replication.md``.

Scoring steps (:class:`Code`, :class:`Reverse`, :class:`Drop`, :class:`Sqrt`,
:class:`Rank`, :class:`Composite`) transform a *score frame*: one row per participant
(and answer run), a ``condition`` column and one column per item. A choice item's
cell is a mapping ``option -> probability`` (one-hot for a sampled answer); a Likert
or numeric item's cell is a number, NaN when missing. :func:`apply_steps` runs them
in the declared order.

The effect size is ML1's standardized mean difference, for every effect, 0/1 codes
included::

    d = (M_t - M_c) / sqrt((SD_t^2 + SD_c^2) / 2)        (SDs with n - 1)

with the large-sample standard error
``SE = sqrt((n_t + n_c) / (n_t n_c) + d^2 / (2 (n_t + n_c)))`` and normal-theory
confidence intervals ``d +- z SE`` (ML1 reported 99% intervals, z = 2.576). The
significance test of an effect is Welch's two-sample t-test.

The four criteria per effect (:func:`effect_criteria`):

1. ``same_sign_sig``: the simulated d has the target's sign and p < .05;
2. ``within_target_ci``: the simulated d lies inside ML1's confidence interval;
3. ``small_telescopes_pass``: the simulated d is *not* significantly smaller than
   d33, the effect the original study had 33% power to detect (Simonsohn 2015):
   one-sided z-test of ``d < d33`` with the simulated SE at alpha = .05;
4. ``original_in_ci``: the original d lies inside the simulated 95% interval.

Across effects (:func:`overall_summary`): Pearson r of simulated with ML1 and with
original ds, sign agreement, specificity on the negative controls (the share with
p >= .05) and how many effects each criterion replicates. :func:`variance_decomposition`
splits re-asked answers into condition, persona and run components.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, stats

__all__ = [
    "CRITERIA",
    "Code",
    "Composite",
    "Drop",
    "EffectStatistics",
    "Rank",
    "Reverse",
    "ScoringStep",
    "Sqrt",
    "apply_steps",
    "code_binary",
    "composite_mean",
    "d_confidence_interval",
    "d_for_power",
    "d_standard_error",
    "drop_values",
    "effect_criteria",
    "effect_statistics",
    "overall_summary",
    "rank_transform",
    "reverse_scale",
    "small_telescopes",
    "sqrt_transform",
    "standardized_mean_difference",
    "two_sample_power",
    "variance_decomposition",
    "welch_test",
]

CRITERIA: tuple[str, ...] = (
    "same_sign_sig",
    "within_target_ci",
    "small_telescopes_pass",
    "original_in_ci",
)
"""The per-effect replication criteria, in report order."""

ALPHA = 0.05
"""Significance level of every test here."""


# --------------------------------------------------------------------------- scoring steps


def code_binary(
    cells: Iterable[Any], conditions: Iterable[str], one: Mapping[str, Iterable[str]]
) -> np.ndarray:
    """Code choice answers 0/1: the probability mass on the options coded 1.

    Args:
        cells: per row, a mapping option -> probability (one-hot for a sampled answer),
            or None/NaN for a missing answer.
        conditions: per row, the participant's condition.
        one: per condition, the option texts coded 1.

    Returns:
        Per row, the mass on the options coded 1 (exactly 0 or 1 for a sampled
        answer, the expected code for an expected answer); NaN when missing.

    Raises:
        KeyError: a row's condition has no entry in ``one``.
    """
    sets = {condition: frozenset(options) for condition, options in one.items()}
    out = []
    for cell, condition in zip(cells, conditions, strict=True):
        if not isinstance(cell, Mapping):
            out.append(math.nan)
            continue
        coded = sets[condition]
        out.append(float(sum(p for option, p in cell.items() if option in coded)))
    return np.asarray(out, dtype=float)


def reverse_scale(values: ArrayLike, points: int) -> np.ndarray:
    """Reverse a 1..points scale: ``x -> points + 1 - x`` (NaN stays NaN)."""
    return (points + 1) - np.asarray(values, dtype=float)


def drop_values(
    values: ArrayLike, *, at_or_below: float | None = None, at_or_above: float | None = None
) -> np.ndarray:
    """Set to NaN the values at or beyond the given bounds (e.g. ML1's anchors).

    Args:
        values: the numbers.
        at_or_below: drop values <= this bound.
        at_or_above: drop values >= this bound.

    Returns:
        A float copy with the dropped values as NaN.
    """
    out = np.array(values, dtype=float)
    with np.errstate(invalid="ignore"):
        if at_or_below is not None:
            out[out <= at_or_below] = math.nan
        if at_or_above is not None:
            out[out >= at_or_above] = math.nan
    return out


def sqrt_transform(values: ArrayLike) -> np.ndarray:
    """Square root; negative values (no square root) become NaN."""
    out = np.array(values, dtype=float)
    with np.errstate(invalid="ignore"):
        out[out < 0] = math.nan
    return np.sqrt(out)


def rank_transform(values: ArrayLike) -> np.ndarray:
    """Ranks 1..n over the non-missing values, ties sharing their mean rank (SPSS RANK).

    Args:
        values: the numbers; NaN stays NaN and is not ranked.

    Returns:
        The ranks as floats.
    """
    out = np.array(values, dtype=float)
    present = ~np.isnan(out)
    out[present] = stats.rankdata(out[present], method="average")
    return out


def composite_mean(values: pd.DataFrame, min_valid: int) -> np.ndarray:
    """Row means over item columns, NaN when fewer than ``min_valid`` items are present."""
    numbers = values.astype(float)
    means = numbers.mean(axis=1, skipna=True).to_numpy(dtype=float, copy=True)
    means[numbers.notna().sum(axis=1).to_numpy() < min_valid] = math.nan
    return means


@dataclass(frozen=True)
class Code:
    """Code a choice item 0/1.

    Attributes:
        item: the item (column).
        one: per condition, the option texts coded 1.
    """

    item: str
    one: Mapping[str, frozenset[str]]

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with the item replaced by its 0/1 code."""
        out = frame.copy()
        out[self.item] = code_binary(frame[self.item], frame["condition"], self.one)
        return out


@dataclass(frozen=True)
class Reverse:
    """Reverse a 1..points Likert item."""

    item: str
    points: int

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with the item reversed."""
        out = frame.copy()
        out[self.item] = reverse_scale(frame[self.item], self.points)
        return out


@dataclass(frozen=True)
class Drop:
    """Set an item to missing at or beyond bounds (either may be None)."""

    item: str
    at_or_below: float | None = None
    at_or_above: float | None = None

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with out-of-bounds values of the item missing."""
        out = frame.copy()
        out[self.item] = drop_values(
            frame[self.item], at_or_below=self.at_or_below, at_or_above=self.at_or_above
        )
        return out


@dataclass(frozen=True)
class Sqrt:
    """Square-root an item (negative values become missing)."""

    item: str

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with the item square-rooted."""
        out = frame.copy()
        out[self.item] = sqrt_transform(frame[self.item])
        return out


@dataclass(frozen=True)
class Rank:
    """Rank-transform an item over the whole sample (every condition together)."""

    item: str

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with the item replaced by its ranks."""
        out = frame.copy()
        out[self.item] = rank_transform(frame[self.item])
        return out


@dataclass(frozen=True)
class Composite:
    """A new column: the mean of several items, given at least ``min_valid`` of them."""

    name: str
    items: tuple[str, ...]
    min_valid: int

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` with the composite column added (or replaced)."""
        out = frame.copy()
        out[self.name] = composite_mean(frame[list(self.items)], self.min_valid)
        return out


ScoringStep = Code | Reverse | Drop | Sqrt | Rank | Composite
"""One declared scoring step."""


def apply_steps(frame: pd.DataFrame, steps: Sequence[ScoringStep]) -> pd.DataFrame:
    """Run scoring steps in order on a score frame (which must have ``condition``)."""
    for step in steps:
        frame = step.apply(frame)
    return frame


# --------------------------------------------------------------------------- effect size


def standardized_mean_difference(treatment: ArrayLike, control: ArrayLike) -> float:
    """ML1's d: mean difference over the root mean of the two variances (n - 1).

    Args:
        treatment: the treatment group's scores (NaN ignored).
        control: the control group's scores (NaN ignored).

    Returns:
        d; NaN when a group has fewer than two scores or both variances are zero.
    """
    a = _clean(treatment)
    b = _clean(control)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    spread = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    if spread == 0:
        return math.nan
    return float((a.mean() - b.mean()) / spread)


def d_standard_error(d: float, n_treatment: int, n_control: int) -> float:
    """Large-sample SE of d: ``sqrt((n1 + n2) / (n1 n2) + d^2 / (2 (n1 + n2)))``."""
    if n_treatment < 1 or n_control < 1 or not math.isfinite(d):
        return math.nan
    total = n_treatment + n_control
    return math.sqrt(total / (n_treatment * n_control) + d * d / (2 * total))


def d_confidence_interval(
    d: float, n_treatment: int, n_control: int, level: float = 0.95
) -> tuple[float, float]:
    """Normal-theory confidence interval ``d +- z SE`` (NaNs when d is undefined)."""
    se = d_standard_error(d, n_treatment, n_control)
    if not math.isfinite(se):
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return (d - z * se, d + z * se)


def welch_test(treatment: ArrayLike, control: ArrayLike) -> tuple[float, float, float]:
    """Welch's two-sample t-test.

    Returns:
        ``(t, df, p)``, p two-sided; NaNs when undefined (a group under two scores,
        or no variance in either group).
    """
    a = _clean(treatment)
    b = _clean(control)
    if len(a) < 2 or len(b) < 2:
        return (math.nan, math.nan, math.nan)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return (math.nan, math.nan, math.nan)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p = 2 * stats.t.sf(abs(t), df)
    return (float(t), float(df), float(p))


def two_sample_power(d: float, n_total: int, alpha: float = ALPHA) -> float:
    """Power of a two-sided two-sample t-test with two equal groups of ``n_total / 2``.

    Exact, by the noncentral t distribution with ``n_total - 2`` degrees of freedom
    and noncentrality ``d sqrt(n/2 * n/2 / n)`` (the normal limit where scipy's
    noncentral t does not converge, at thousands of degrees of freedom).
    """
    half = n_total / 2
    df = n_total - 2
    noncentrality = d * math.sqrt(half * half / n_total)
    critical = stats.t.ppf(1 - alpha / 2, df)
    power = stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    if not math.isfinite(power):  # scipy's nct fails at large df; t is normal there
        power = stats.norm.sf(critical - noncentrality) + stats.norm.cdf(-critical - noncentrality)
    return float(power)


def d_for_power(n_total: int, power: float = 1 / 3, alpha: float = ALPHA) -> float:
    """The d a two-group study of ``n_total`` had ``power`` to detect (d33 by default).

    Small telescopes (Simonsohn 2015) compare a replication with d33 of the original.

    Args:
        n_total: the original study's total N (two equal groups assumed), at least 4.
        power: the power (default one third).
        alpha: the original test's two-sided level.

    Returns:
        The positive d with that power.

    Raises:
        ValueError: ``n_total`` below 4 or ``power`` not above ``alpha``.
    """
    if n_total < 4:
        raise ValueError(f"n_total must be >= 4, got {n_total}")
    if not alpha < power < 1:
        raise ValueError(f"power must be in ({alpha}, 1), got {power}")
    high = 4 / math.sqrt(n_total)  # noncentrality 2: power above one third already
    while two_sample_power(high, n_total, alpha) < power:  # bracket without huge noncentrality
        high *= 2
    return float(optimize.brentq(lambda d: two_sample_power(d, n_total, alpha) - power, 1e-9, high))


def small_telescopes(
    d: float, se: float, d33: float, alpha: float = ALPHA
) -> tuple[float, bool | None]:
    """Whether a replication's d is significantly smaller than d33.

    One-sided z-test of ``H1: delta < d33`` with the replication's SE; the
    replication *fails* when ``p < alpha`` (its one-sided upper bound lies below d33).
    Effects expected to be negative should be passed sign-flipped (both d and d33
    are on the side of the original effect).

    Returns:
        ``(p, passed)``; ``(NaN, None)`` when d or se is undefined.
    """
    if not (math.isfinite(d) and math.isfinite(se) and se > 0 and math.isfinite(d33)):
        return (math.nan, None)
    p = NormalDist().cdf((d - d33) / se)
    return (p, not p < alpha)


@dataclass(frozen=True)
class EffectStatistics:
    """The statistics of one effect: group sizes, means, SDs, d with CIs, Welch's test."""

    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    sd_treatment: float
    sd_control: float
    d: float
    se: float
    ci_low: float
    ci_high: float
    ci99_low: float
    ci99_high: float
    t: float
    df: float
    p: float

    def as_dict(self) -> dict[str, float | int]:
        """The statistics by name."""
        return dict(self.__dict__)


def effect_statistics(treatment: ArrayLike, control: ArrayLike) -> EffectStatistics:
    """D (ML1's formula) with 95% and 99% CIs, and Welch's test, of two groups' scores."""
    a, b = _clean(treatment), _clean(control)
    d = standardized_mean_difference(a, b)
    ci95 = d_confidence_interval(d, len(a), len(b), 0.95)
    ci99 = d_confidence_interval(d, len(a), len(b), 0.99)
    t, df, p = welch_test(a, b)
    return EffectStatistics(
        n_treatment=len(a),
        n_control=len(b),
        mean_treatment=float(a.mean()) if len(a) else math.nan,
        mean_control=float(b.mean()) if len(b) else math.nan,
        sd_treatment=float(a.std(ddof=1)) if len(a) > 1 else math.nan,
        sd_control=float(b.std(ddof=1)) if len(b) > 1 else math.nan,
        d=d,
        se=d_standard_error(d, len(a), len(b)),
        ci_low=ci95[0],
        ci_high=ci95[1],
        ci99_low=ci99[0],
        ci99_high=ci99[1],
        t=t,
        df=df,
        p=p,
    )


def effect_criteria(
    statistics: EffectStatistics,
    *,
    target_d: float,
    target_ci: tuple[float, float],
    original_d: float | None = None,
    original_n: int | None = None,
) -> dict[str, Any]:
    """The four replication criteria of one effect (see the module docstring).

    Args:
        statistics: the simulated effect.
        target_d: ML1's d.
        target_ci: ML1's confidence interval (ML1 published 99%).
        original_d: the original study's d, if known.
        original_n: the original study's total N, if known (for d33).

    Returns:
        ``same_sign_sig``, ``within_target_ci``, ``small_telescopes_pass`` and
        ``original_in_ci`` (booleans, None where a criterion is undefined), plus
        ``d33`` and ``small_telescopes_p``.
    """
    d, p = statistics.d, statistics.p
    defined = math.isfinite(d)
    same_sign_sig = (
        bool(np.sign(d) == np.sign(target_d) and p < ALPHA)
        if defined and math.isfinite(p)
        else None
    )
    within = bool(target_ci[0] <= d <= target_ci[1]) if defined else None
    d33 = math.nan
    telescopes_p, telescopes = math.nan, None
    if original_d is not None and original_n is not None and original_d != 0:
        d33 = d_for_power(original_n)
        sign = 1.0 if original_d > 0 else -1.0
        telescopes_p, telescopes = small_telescopes(sign * d, statistics.se, d33)
        d33 = sign * d33
    original_in = None
    if original_d is not None and math.isfinite(statistics.ci_low):
        original_in = bool(statistics.ci_low <= original_d <= statistics.ci_high)
    return {
        "same_sign_sig": same_sign_sig,
        "within_target_ci": within,
        "small_telescopes_pass": telescopes,
        "original_in_ci": original_in,
        "d33": d33,
        "small_telescopes_p": telescopes_p,
    }


# --------------------------------------------------------------------------- across effects


def overall_summary(summary: pd.DataFrame) -> dict[str, Any]:
    """Across effects: correlations, sign agreement, specificity and replication counts.

    Args:
        summary: one row per effect with ``d``, ``p``, ``target_d``, ``original_d``
            (NaN when unknown), ``negative_control`` (bool) and the :data:`CRITERIA`.

    Returns:
        ``n_effects``, ``n_defined`` (effects with a finite simulated d),
        ``r_ml1`` and ``r_original`` (Pearson r over effects with both ds; NaN with
        fewer than three), ``sign_agreement`` (share of the effects ML1 replicated,
        i.e. not negative controls, whose simulated d has ML1's sign),
        ``specificity`` (share of negative controls with p >= .05), and per
        criterion ``replicated_<criterion>`` (how many of the non-negative-control
        effects meet it) with ``n_replicable`` (how many there are).
    """
    frame = summary.copy()
    defined = frame[np.isfinite(frame["d"].astype(float))]
    negative = frame["negative_control"].astype(bool)
    positive = defined[~defined["negative_control"].astype(bool)]
    controls = defined[defined["negative_control"].astype(bool)]
    out: dict[str, Any] = {
        "n_effects": len(frame),
        "n_defined": len(defined),
        "r_ml1": _pearson(defined["d"], defined["target_d"]),
        "r_original": _pearson(defined["d"], defined["original_d"]),
        "sign_agreement": (
            float((np.sign(positive["d"]) == np.sign(positive["target_d"])).mean())
            if len(positive)
            else math.nan
        ),
        "specificity": (
            float((controls["p"].astype(float) >= ALPHA).mean()) if len(controls) else math.nan
        ),
        "n_negative_controls": int(negative.sum()),
        "n_replicable": int((~negative).sum()),
    }
    replicable = frame[~negative]
    for criterion in CRITERIA:
        out[f"replicated_{criterion}"] = int((replicable[criterion] == True).sum())  # noqa: E712
    return out


def _pearson(x: pd.Series, y: pd.Series) -> float:
    """Pearson r over the pairs where both are finite; NaN with fewer than three."""
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
        return math.nan
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


# --------------------------------------------------------------------------- variance


def variance_decomposition(frame: pd.DataFrame, score: str = "score") -> dict[str, float]:
    """Split re-asked answers into condition, persona and run variance.

    A nested design: runs within participants (personas), participants within
    conditions. With ``N`` scores, ``P`` participants and ``C`` conditions the sums
    of squares are ``SS_condition = sum_c n_c (m_c - m)^2``,
    ``SS_persona = sum_p n_p (m_p - m_c(p))^2`` and ``SS_run = sum (x - m_p)^2``;
    the variance components follow from the mean squares (method of moments,
    unbalanced nested ANOVA): ``var_run = MS_run`` and
    ``var_persona = max(0, (MS_persona - MS_run) / n0)`` with
    ``n0 = (N - sum_c sum_p n_p^2 / n_c) / (P - C)``.

    Args:
        frame: rows with ``condition``, ``participant``, ``run`` and the score;
            rows with a missing score are dropped.
        score: the score column.

    Returns:
        ``n_scores``, ``n_participants``, ``n_runs`` (largest runs per participant),
        the three sums of squares and their shares of the total, ``var_persona``,
        ``var_run`` and ``run_persona_ratio`` (``var_run / var_persona``: inf when the
        persona component is zero and the run component is not; NaN when both are).
    """
    data = frame[["condition", "participant", "run", score]].dropna(subset=[score])
    x = data[score].astype(float)
    n = len(data)
    out = {
        "n_scores": float(n),
        "n_participants": float(data["participant"].nunique()),
        "n_runs": float(data.groupby("participant")["run"].nunique().max()) if n else 0.0,
    }
    nan_keys = (
        "ss_condition",
        "ss_persona",
        "ss_run",
        "share_condition",
        "share_persona",
        "share_run",
        "var_persona",
        "var_run",
        "run_persona_ratio",
    )
    if n < 2:
        return out | dict.fromkeys(nan_keys, math.nan)
    grand = x.mean()
    condition_mean = data.groupby("condition")[score].transform("mean")
    persona_mean = data.groupby(["condition", "participant"])[score].transform("mean")
    ss_condition = float(((condition_mean - grand) ** 2).sum())
    ss_persona = float(((persona_mean - condition_mean) ** 2).sum())
    ss_run = float(((x - persona_mean) ** 2).sum())
    total = ss_condition + ss_persona + ss_run
    n_conditions = data["condition"].nunique()
    sizes = data.groupby(["condition", "participant"]).size()
    n_personas = len(sizes)
    df_persona = n_personas - n_conditions
    df_run = n - n_personas
    var_run = ss_run / df_run if df_run > 0 else math.nan
    var_persona = math.nan
    if df_persona > 0 and math.isfinite(var_run):
        condition_sizes = sizes.groupby(level="condition").transform("sum")
        n0 = (n - float((sizes**2 / condition_sizes).sum())) / df_persona
        var_persona = max(0.0, (ss_persona / df_persona - var_run) / n0)
    if not (math.isfinite(var_run) and math.isfinite(var_persona)):
        ratio = math.nan
    elif var_persona > 0:
        ratio = var_run / var_persona
    else:
        ratio = math.inf if var_run > 0 else math.nan
    return out | {
        "ss_condition": ss_condition,
        "ss_persona": ss_persona,
        "ss_run": ss_run,
        "share_condition": ss_condition / total if total > 0 else math.nan,
        "share_persona": ss_persona / total if total > 0 else math.nan,
        "share_run": ss_run / total if total > 0 else math.nan,
        "var_persona": var_persona,
        "var_run": var_run,
        "run_persona_ratio": ratio,
    }


def _clean(values: ArrayLike) -> np.ndarray:
    """A float array without NaNs."""
    array = np.asarray(values, dtype=float)
    return array[~np.isnan(array)]
