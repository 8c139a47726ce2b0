"""Moderators: whether an effect differs between subgroups of participants.

An effect file's main contrast (treatment minus control, over everyone) says whether
an effect appears on average; a *moderator* asks who shows it. A moderator is a
population attribute whose labels are grouped into levels (:class:`Moderator`),
e.g. ``politics`` with ``democrat = ["liberal Democrat", "moderate Democrat"]``;
participants whose label no level lists are left out and counted.

Given a tidy frame (one row per participant: ``score``, ``condition`` and the
participant's attributes), :func:`moderator_analysis` computes:

- **per level**, the main effect's statistics on that level's participants, with the
  *same* definitions (:func:`simulacra.analysis.replication.effect_statistics`):
  ML1's ``d = (M_t - M_c) / sqrt((SD_t^2 + SD_c^2) / 2)``, its normal-theory 95% and
  99% CIs and Welch's test; for 0/1 codes also the odds ratio
  ``OR = (a / b) / (c / d)`` (a, b: treatment ones and zeros; c, d: control) with
  Woolf's interval ``exp(log OR +- z sqrt(1/a + 1/b + 1/c + 1/d))``;
- **the interaction** of each level with the reference level (the first, unless
  named): the difference of ds ``d_level - d_reference`` with a percentile-bootstrap
  CI (participants resampled within level x condition, :mod:`.resampling`) and the
  large-sample SE ``sqrt(SE_level^2 + SE_reference^2)`` (the groups are disjoint);
  and a test of treatment x moderator on the scores:

  * continuous scores (and expected-mode fractional codes): OLS of
    ``score ~ treatment * level`` (saturated: one mean per cell) with HC2
    heteroscedasticity-consistent standard errors and a t reference on the
    residual degrees of freedom ``N - cells``. In a saturated model the
    interaction coefficient is the difference of raw mean differences
    ``(m_lt - m_lc) - (m_rt - m_rc)`` and its HC2 variance is ``sum s_cell^2 / n_cell``
    over the four cells (leverage ``1 / n_cell``), so both are computed in closed
    form (identical to ``statsmodels`` ``ols(...).fit(cov_type="HC2", use_t=True)``);
  * 0/1 codes: logistic regression of the same saturated model, whose interaction
    coefficient is the difference of the two levels' log odds ratios, with the Wald
    (Woolf) SE ``sqrt(sum 1/count)`` over the eight counts; ``exp`` of it is the
    ratio of odds ratios. A zero count has no maximum-likelihood estimate; the
    Haldane-Anscombe correction (+0.5 on every count involved) is then applied and
    flagged in ``reason``;
  * with more than two levels, also an omnibus Wald test of all interaction terms
    (F on ``(k - 1, N - cells)`` degrees of freedom for OLS-HC2, chi-square on
    ``k - 1`` for the logistic model: Woolf's test of homogeneity of odds ratios);
- **the target interaction** where the effect file gives one
  (:class:`InteractionTarget`).

Every undefined number comes with a ``reason``. :meth:`ModeratorResult.rows` lays
the result out as rows of ``summary.csv`` (:data:`MODERATOR_COLUMNS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from simulacra.analysis.replication import ALPHA, EffectStatistics, effect_statistics
from simulacra.analysis.resampling import (
    bootstrap_moments,
    cell_moments,
    d_from_moments,
    moment_summary,
    percentile_interval,
)

__all__ = [
    "INTERACTION",
    "MIN_PER_CELL",
    "MODERATOR_COLUMNS",
    "ContrastTest",
    "Interaction",
    "InteractionTarget",
    "LevelAssignment",
    "LevelEffect",
    "Moderator",
    "ModeratorResult",
    "Omnibus",
    "assign_levels",
    "d_reason",
    "is_binary",
    "log_odds_contrast",
    "mean_contrast",
    "moderator_analysis",
    "odds_ratio",
    "wald_omnibus",
]

INTERACTION = "interaction"
"""The ``level`` of an interaction row in ``summary.csv`` (not a level name)."""
MIN_PER_CELL = 2
"""Scores a cell (level x condition) needs for d and for the interaction test."""
MISSING_LABEL = "(missing)"
"""The excluded-count key of rows whose attribute is missing."""

MODERATOR_COLUMNS = (
    "moderator",
    "level",
    "comparison",
    "labels",
    "d",
    "se",
    "ci_low",
    "ci_high",
    "ci99_low",
    "ci99_high",
    "p",
    "test",
    "n_treatment",
    "n_control",
    "mean_treatment",
    "mean_control",
    "sd_treatment",
    "sd_control",
    "odds_ratio",
    "or_ci_low",
    "or_ci_high",
    "coefficient",
    "coefficient_se",
    "coefficient_ci_low",
    "coefficient_ci_high",
    "statistic",
    "df",
    "boot_defined",
    "target_d",
    "target_ci_low",
    "target_ci_high",
    "target_odds_ratio",
    "within_target_ci",
    "target_in_ci",
    "same_sign_sig",
    "excluded",
    "reason",
)
"""Columns of the moderator rows of ``summary.csv`` (see :meth:`ModeratorResult.rows`)."""


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class InteractionTarget:
    """A published interaction to compare with (``[moderators.target]``).

    Attributes:
        d_difference: ``d(level) - d(reference)`` in the source.
        ci: its confidence interval, if published.
        level: the compared level (default: the only level besides the reference).
        odds_ratio: the published ratio of odds ratios, if any (0/1 codes).
        source: where the numbers come from.
    """

    d_difference: float
    ci: tuple[float, float] | None = None
    level: str | None = None
    odds_ratio: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Moderator:
    """A population attribute whose labels are grouped into levels.

    Attributes:
        attribute: the attribute (a column of the participants table).
        levels: level name -> the attribute labels it groups, in report order.
        reference: the level every other level is compared with (default: the first).
        target: a published interaction, if any.
        name: the ``moderator`` cell of its rows (default: the attribute); two
            moderators of one effect on the same attribute need different names.

    Raises:
        ValueError: no level, a level without labels, a label in two levels, a
            reserved or empty level name, or a reference/target level not declared.
    """

    attribute: str
    levels: Mapping[str, tuple[str, ...]]
    reference: str | None = None
    target: InteractionTarget | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not self.attribute:
            raise ValueError("a moderator needs an attribute")
        if not self.levels:
            raise ValueError(f"moderator '{self.attribute}' has no levels")
        seen: dict[str, str] = {}
        for level, labels in self.levels.items():
            if not level or level == INTERACTION:
                raise ValueError(f"'{level}' cannot name a level (empty or reserved)")
            if not labels:
                raise ValueError(f"level '{level}' lists no labels")
            for label in labels:
                if label in seen:
                    raise ValueError(
                        f"label '{label}' is in two levels, '{seen[label]}' and '{level}'"
                    )
                seen[label] = level
        if self.reference is not None and self.reference not in self.levels:
            raise ValueError(f"reference '{self.reference}' is not a level")
        if self.target is not None:
            level = self.target.level
            if level is not None and (level not in self.levels or level == self.reference_level):
                raise ValueError(f"target level '{level}' is not a non-reference level")
            if level is None and len(self.levels) != 2:
                raise ValueError("with more than two levels, the target must name its level")

    @classmethod
    def of(
        cls,
        attribute: str,
        levels: Mapping[str, str | Sequence[str]] | Sequence[str],
        reference: str | None = None,
        target: InteractionTarget | None = None,
        name: str | None = None,
    ) -> Moderator:
        """A moderator from plain data: levels as a mapping, or labels each its own level."""
        if isinstance(levels, Mapping):
            grouped = {
                name: (labels,) if isinstance(labels, str) else tuple(labels)
                for name, labels in levels.items()
            }
        else:
            grouped = {label: (label,) for label in levels}
        return cls(attribute, grouped, reference, target, name)

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Moderator:
        """A moderator from one ``[[moderators]]`` table of an effect file.

        Fields: ``attribute``; ``levels`` (a table level -> labels, or an array of
        labels, each its own level); optional ``name``, ``reference`` and ``[target]`` with
        ``d_difference``, optional ``ci = [low, high]``, ``level``, ``odds_ratio`` and
        ``source``. The file's schema checks names, types and unknown keys; this
        builds the analysis object (and raises on what the schema cannot see).

        Raises:
            ValueError: a missing field or an inconsistent spec.
        """
        if "attribute" not in table or "levels" not in table:
            raise ValueError("a moderator needs 'attribute' and 'levels'")
        target = None
        if "target" in table:
            spec = table["target"]
            if "d_difference" not in spec:
                raise ValueError("a moderator target needs 'd_difference'")
            ci = spec.get("ci")
            target = InteractionTarget(
                d_difference=float(spec["d_difference"]),
                ci=None if ci is None else (float(ci[0]), float(ci[1])),
                level=spec.get("level"),
                odds_ratio=None if spec.get("odds_ratio") is None else float(spec["odds_ratio"]),
                source=str(spec.get("source", "")),
            )
        return cls.of(
            str(table["attribute"]),
            table["levels"],
            table.get("reference"),
            target,
            table.get("name"),
        )

    @property
    def label(self) -> str:
        """The ``moderator`` cell of its rows: the name, else the attribute."""
        return self.name or self.attribute

    @property
    def reference_level(self) -> str:
        """The reference level."""
        return self.reference if self.reference is not None else next(iter(self.levels))

    @property
    def compared_levels(self) -> tuple[str, ...]:
        """The levels compared with the reference, in declared order."""
        return tuple(level for level in self.levels if level != self.reference_level)

    def level_of(self, label: Any) -> str | None:
        """The level a label belongs to (None: unlisted or missing)."""
        for level, labels in self.levels.items():
            if label in labels:
                return level
        return None


@dataclass(frozen=True)
class LevelAssignment:
    """Each row's level, and what was left out.

    Attributes:
        levels: per row (aligned with the frame's index), its level; NaN when excluded.
        excluded: label -> rows left out (``(missing)`` for a missing attribute).
    """

    levels: pd.Series
    excluded: Mapping[str, int]

    @property
    def n_excluded(self) -> int:
        """Rows left out."""
        return sum(self.excluded.values())


def assign_levels(frame: pd.DataFrame, moderator: Moderator) -> LevelAssignment:
    """Assign every row to its moderator level; unlisted and missing labels are counted.

    Raises:
        KeyError: the frame has no column for the moderator's attribute.
    """
    labels = frame[moderator.attribute]
    lookup = {label: level for level, group in moderator.levels.items() for label in group}
    levels = labels.map(lookup)
    left = labels[levels.isna()]
    excluded = {
        str(label): int(count) for label, count in left.dropna().value_counts(sort=False).items()
    }
    if left.isna().any():
        excluded[MISSING_LABEL] = int(left.isna().sum())
    return LevelAssignment(levels.astype(object), excluded)


# --------------------------------------------------------------------------- contrast tests


@dataclass(frozen=True)
class ContrastTest:
    """A linear contrast of the cells of a saturated model, with its Wald test.

    Attributes:
        test: ``ols_hc2`` (cell means, HC2 SEs, t on the residual df) or
            ``logit_wald`` (cell log odds, Wald/Woolf SEs, normal reference).
        estimate: the contrast (a mean difference of differences, or a log OR ratio).
        se: its standard error.
        ci_low: lower bound of its 95% interval.
        ci_high: upper bound.
        statistic: t or z.
        df: the t's degrees of freedom (inf for z).
        p: two-sided p.
        corrected: the Haldane-Anscombe correction was applied (a zero count).
        reason: why anything above is NaN (empty when all is defined).
    """

    test: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    statistic: float
    df: float
    p: float
    corrected: bool = False
    reason: str = ""


def _undefined_test(test: str, reason: str, estimate: float = math.nan) -> ContrastTest:
    nan = math.nan
    return ContrastTest(test, estimate, nan, nan, nan, nan, nan, nan, False, reason)


def _small_cells(n: np.ndarray, weights: np.ndarray, names: Sequence[str] | None) -> str:
    small = [i for i in np.flatnonzero(weights) if n[i] < MIN_PER_CELL]
    if not small:
        return ""
    where = ", ".join(f"{names[i] if names else f'cell {i}'}: {int(n[i])}" for i in small)
    return f"too few scores in a cell ({where}; needs {MIN_PER_CELL})"


def _wald(
    test: str,
    values: np.ndarray,
    variances: np.ndarray,
    weights: np.ndarray,
    df: float,
    level: float,
    corrected: bool = False,
) -> ContrastTest:
    """``sum w x`` with SE ``sqrt(sum w^2 v)``, tested on t(df), or on z when df is inf."""
    used = weights != 0
    estimate = float(np.sum(weights[used] * values[used]))
    se = math.sqrt(float(np.sum(weights[used] ** 2 * variances[used])))
    if se == 0:
        return _undefined_test(test, "test undefined: no spread in any compared cell", estimate)
    if df < 1:
        return _undefined_test(test, "test undefined: no residual degrees of freedom", estimate)
    statistic = estimate / se
    reference = stats.norm if math.isinf(df) else stats.t(df)
    half = float(reference.ppf(0.5 + level / 2)) * se
    p = float(2 * reference.sf(abs(statistic)))
    reason = (
        "a zero count: Haldane-Anscombe +0.5 on every count (no maximum-likelihood estimate)"
        if corrected
        else ""
    )
    return ContrastTest(
        test, estimate, se, estimate - half, estimate + half, statistic, df, p, corrected, reason
    )


def mean_contrast(
    moments: np.ndarray,
    weights: ArrayLike,
    *,
    level: float = 0.95,
    names: Sequence[str] | None = None,
) -> ContrastTest:
    """A contrast of cell means in the saturated OLS model, with HC2 standard errors.

    The estimate is ``sum_c w_c m_c``; its HC2 variance ``sum_c w_c^2 s_c^2 / n_c``
    (``s_c`` with ``n - 1``); the reference is t on ``N - K`` degrees of freedom, N the
    scores and K the non-empty cells of ``moments`` (all cells of the model, also
    those a weight of 0 leaves out).

    Args:
        moments: ``(K, 3)`` cell moments (:func:`~.resampling.cell_moments`).
        weights: ``K`` contrast weights.
        level: the interval's coverage.
        names: the cells' names, for reasons.

    Returns:
        The :class:`ContrastTest` (``test = "ols_hc2"``).
    """
    w = np.asarray(weights, dtype=float)
    n, mean, var = moment_summary(moments)
    small = _small_cells(n, w, names)
    if small:
        return _undefined_test("ols_hc2", f"test undefined: {small}")
    with np.errstate(invalid="ignore", divide="ignore"):
        variances = var / n
    return _wald("ols_hc2", mean, variances, w, float(n.sum() - np.count_nonzero(n)), level)


def _log_odds(moments: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Cell log odds and their variances, Haldane-Anscombe corrected if a count is 0."""
    used = weights != 0
    ones = moments[:, 1]
    zeros = moments[:, 0] - ones
    corrected = bool(np.any((ones[used] == 0) | (zeros[used] == 0)))
    if corrected:
        ones, zeros = ones + 0.5, zeros + 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(ones / zeros), 1 / ones + 1 / zeros, corrected


def log_odds_contrast(
    moments: np.ndarray,
    weights: ArrayLike,
    *,
    level: float = 0.95,
    names: Sequence[str] | None = None,
) -> ContrastTest:
    """A contrast of cell log odds in the saturated logistic model (Wald = Woolf).

    As :func:`mean_contrast` (the same arguments, ``moments`` of 0/1 scores), on the
    cells' log odds: the estimate is ``sum_c w_c log(a_c / b_c)`` (a: ones, b: zeros
    of cell c), its variance ``sum_c w_c^2 (1/a_c + 1/b_c)``, the maximum-likelihood
    estimate and the Wald SE of the saturated logistic regression, with a normal
    reference (``test = "logit_wald"``). When a count of a weighted cell is 0 (no
    MLE), every weighted cell gets +0.5 on both counts (Haldane-Anscombe), flagged.
    """
    w = np.asarray(weights, dtype=float)
    small = _small_cells(moments[:, 0], w, names)
    if small:
        return _undefined_test("logit_wald", f"test undefined: {small}")
    logits, variances, corrected = _log_odds(moments, w)
    return _wald("logit_wald", logits, variances, w, math.inf, level, corrected)


@dataclass(frozen=True)
class Omnibus:
    """The joint Wald test of several contrasts (all interaction terms).

    Attributes:
        test: ``ols_hc2`` (F) or ``logit_wald`` (chi-square).
        statistic: F or chi-square.
        df_num: contrasts tested.
        df_den: F's denominator df (inf for chi-square).
        p: the p-value.
        reason: why it is NaN.
    """

    test: str
    statistic: float
    df_num: int
    df_den: float
    p: float
    reason: str = ""


def wald_omnibus(
    moments: np.ndarray, contrasts: ArrayLike, *, binary: bool, names: Sequence[str] | None = None
) -> Omnibus:
    """Joint Wald test that every row of ``contrasts`` is 0 (cells independent).

    ``W = theta' V^-1 theta`` with ``theta = C x`` and ``V = C diag(v) C'`` (x the cell
    means or log odds, v their HC2 or Woolf variances); OLS reports ``F = W / q`` on
    ``(q, N - K)`` df, the logistic model ``W`` on chi-square with ``q`` df.
    """
    matrix = np.atleast_2d(np.asarray(contrasts, dtype=float))
    q = matrix.shape[0]
    test = "logit_wald" if binary else "ols_hc2"
    involved = np.any(matrix != 0, axis=0).astype(float)
    small = _small_cells(moments[:, 0], involved, names)
    if small:
        return Omnibus(test, math.nan, q, math.nan, math.nan, f"omnibus undefined: {small}")
    if binary:
        x, v, corrected = _log_odds(moments, involved)
        df_den = math.inf
    else:
        n, x, var = moment_summary(moments)
        v = var / n
        df_den = float(n.sum() - np.count_nonzero(n))
        corrected = False
    keep = involved > 0
    theta = matrix[:, keep] @ x[keep]
    cov = matrix[:, keep] @ np.diag(v[keep]) @ matrix[:, keep].T
    if np.linalg.matrix_rank(cov) < q:
        return Omnibus(test, math.nan, q, df_den, math.nan, "omnibus undefined: no spread")
    w = float(theta @ np.linalg.solve(cov, theta))
    if binary:
        reason = "Haldane-Anscombe corrected (a zero count)" if corrected else ""
        return Omnibus(test, w, q, df_den, float(stats.chi2.sf(w, q)), reason)
    return Omnibus(test, w / q, q, df_den, float(stats.f.sf(w / q, q, df_den)))


@dataclass(frozen=True)
class OddsRatio:
    """One 2x2 table's odds ratio with Woolf's interval and Wald test.

    Attributes:
        odds_ratio: ``(a / b) / (c / d)``.
        ci_low: Woolf's lower bound.
        ci_high: upper bound.
        p: two-sided Wald p of ``log OR = 0``.
        corrected: Haldane-Anscombe +0.5 applied (a zero count).
        reason: why it is NaN, or that it was corrected.
    """

    odds_ratio: float
    ci_low: float
    ci_high: float
    p: float
    corrected: bool = False
    reason: str = ""


def odds_ratio(treatment: np.ndarray, control: np.ndarray, *, level: float = 0.95) -> OddsRatio:
    """The odds ratio of ones, treatment over control, from the two cells' moments."""
    test = log_odds_contrast(np.vstack([treatment, control]), [1.0, -1.0], level=level)
    reason = test.reason.replace("test undefined", "odds ratio undefined")
    return OddsRatio(
        math.exp(test.estimate) if math.isfinite(test.estimate) else math.nan,
        math.exp(test.ci_low) if math.isfinite(test.ci_low) else math.nan,
        math.exp(test.ci_high) if math.isfinite(test.ci_high) else math.nan,
        test.p,
        test.corrected,
        reason,
    )


# --------------------------------------------------------------------------- the analysis


def is_binary(scores: ArrayLike) -> bool:
    """Whether the present scores are all 0 or 1 (sampled codes), and there are some."""
    x = np.asarray(scores, dtype=float)
    x = x[~np.isnan(x)]
    return bool(len(x)) and bool(np.all((x == 0) | (x == 1)))


def d_reason(statistics: EffectStatistics) -> str:
    """Why a d is undefined (empty when it is defined)."""
    s = statistics
    if s.n_treatment < MIN_PER_CELL or s.n_control < MIN_PER_CELL:
        return (
            f"d undefined: too few scores (treatment {s.n_treatment}, control {s.n_control}; "
            f"d needs {MIN_PER_CELL} in each)"
        )
    if not math.isfinite(s.d):
        if s.mean_treatment == s.mean_control:
            return f"d undefined: no spread in either group: every score is {s.mean_treatment:g}"
        return (
            f"d undefined: no spread in either group: every treatment score is "
            f"{s.mean_treatment:g}, every control score {s.mean_control:g}"
        )
    return ""


@dataclass(frozen=True)
class LevelEffect:
    """The main effect within one level.

    Attributes:
        level: the level.
        labels: the attribute labels it groups.
        statistics: d, CIs, Welch's test (the main effect's definitions).
        odds_ratio: for 0/1 codes, the odds ratio (None otherwise).
        reason: why anything is NaN.
    """

    level: str
    labels: tuple[str, ...]
    statistics: EffectStatistics
    odds_ratio: OddsRatio | None
    reason: str


@dataclass(frozen=True)
class Interaction:
    """One level against the reference: difference of ds and the interaction test.

    Attributes:
        level: the compared level.
        reference: the reference level.
        d_difference: ``d(level) - d(reference)``.
        se: the large-sample SE ``sqrt(SE_level^2 + SE_reference^2)``.
        ci_low: bootstrap 95% percentile bound.
        ci_high: upper bound.
        ci99_low: bootstrap 99% bound.
        ci99_high: upper bound.
        boot_defined: the share of bootstrap replicates with both ds defined.
        test: treatment x moderator on the scores (OLS-HC2, or logistic for 0/1).
        reason: why anything is NaN.
    """

    level: str
    reference: str
    d_difference: float
    se: float
    ci_low: float
    ci_high: float
    ci99_low: float
    ci99_high: float
    boot_defined: float
    test: ContrastTest
    reason: str

    @property
    def comparison(self) -> str:
        """``level - reference``."""
        return f"{self.level} - {self.reference}"

    @property
    def odds_ratio(self) -> tuple[float, float, float]:
        """For the logistic test, the ratio of odds ratios and its CI (NaNs otherwise)."""
        if self.test.test != "logit_wald":
            return (math.nan, math.nan, math.nan)
        values = (self.test.estimate, self.test.ci_low, self.test.ci_high)
        estimate, low, high = (float(math.exp(v)) if math.isfinite(v) else math.nan for v in values)
        return (estimate, low, high)


@dataclass(frozen=True)
class ModeratorResult:
    """A moderator's analysis of one effect.

    Attributes:
        moderator: the spec.
        treatment: the treatment condition.
        control: the control condition.
        binary: whether the scores are 0/1 codes (odds ratios, logistic test).
        levels: per level, the main effect within it.
        interactions: per compared level, the interaction with the reference.
        omnibus: with more than two levels, the joint test (None otherwise).
        excluded: label -> rows left out (unlisted labels, missing attribute).
        reason: why the whole analysis is empty (e.g. no attribute column).
    """

    moderator: Moderator
    treatment: str
    control: str
    binary: bool
    levels: tuple[LevelEffect, ...]
    interactions: tuple[Interaction, ...]
    omnibus: Omnibus | None
    excluded: Mapping[str, int] = field(default_factory=dict)
    reason: str = ""

    def target_comparison(self) -> dict[str, Any]:
        """The interaction against the target: ``{}`` without a target.

        Returns:
            ``level``, ``target_d``, ``target_ci_low``, ``target_ci_high``,
            ``target_odds_ratio``, ``within_target_ci`` (the simulated d difference
            inside the target's CI; None without one or when undefined),
            ``target_in_ci`` (the target inside the simulated 95% bootstrap CI) and
            ``same_sign_sig`` (same sign as the target and interaction p < .05).
        """
        target = self.moderator.target
        if target is None:
            return {}
        level = target.level or self.moderator.compared_levels[0]
        found = next(i for i in self.interactions if i.level == level)
        d = found.d_difference
        defined = math.isfinite(d)
        ci = target.ci
        within = bool(ci[0] <= d <= ci[1]) if ci is not None and defined else None
        in_ci = (
            bool(found.ci_low <= target.d_difference <= found.ci_high)
            if math.isfinite(found.ci_low)
            else None
        )
        p = found.test.p
        same = (
            bool(np.sign(d) == np.sign(target.d_difference) and p < ALPHA)
            if (defined and math.isfinite(p))
            else None
        )
        return {
            "level": level,
            "target_d": target.d_difference,
            "target_ci_low": ci[0] if ci else math.nan,
            "target_ci_high": ci[1] if ci else math.nan,
            "target_odds_ratio": math.nan if target.odds_ratio is None else target.odds_ratio,
            "within_target_ci": within,
            "target_in_ci": in_ci,
            "same_sign_sig": same,
        }

    def rows(self) -> list[dict[str, Any]]:
        """Rows for ``summary.csv``: one per level, one per interaction, the omnibus.

        The level rows hold the main effect within the level (``p`` is Welch's); an
        interaction row has ``level = "interaction"`` and ``comparison = "B - A"``,
        ``d`` the difference of ds with its bootstrap CIs, ``p`` and ``coefficient*``
        the interaction test, ``odds_ratio`` the ratio of odds ratios (0/1 codes);
        with more than two levels a last interaction row (``comparison = "all
        levels"``) holds the omnibus test.
        """
        name = self.moderator.label
        rows = [_level_row(name, effect, self) for effect in self.levels]
        target = self.target_comparison()
        for interaction in self.interactions:
            row = _interaction_row(name, interaction, self)
            if target and target["level"] == interaction.level:
                row |= {k: v for k, v in target.items() if k != "level"}
            rows.append(row)
        if self.omnibus is not None:
            o = self.omnibus
            what = "F" if o.test == "ols_hc2" else "chi-square"
            reason = _join(
                [
                    f"omnibus {what} test of {o.df_num} interaction terms (df = "
                    f"{'its denominator df' if what == 'F' else 'the terms'}): no single d",
                    o.reason,
                ]
            )
            rows.append(
                _blank(name, INTERACTION)
                | {
                    "comparison": "all levels",
                    "p": o.p,
                    "test": f"{o.test}_omnibus",
                    "statistic": o.statistic,
                    "df": o.df_den if what == "F" else float(o.df_num),
                    "excluded": sum(self.excluded.values()),
                    "reason": reason,
                }
            )
        return rows


def _join(reasons: Sequence[str]) -> str:
    return "; ".join(dict.fromkeys(r for r in reasons if r))


def _blank(moderator: str, level: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(MODERATOR_COLUMNS, math.nan)
    row |= {"moderator": moderator, "level": level, "comparison": "", "labels": "", "test": ""}
    row |= {"within_target_ci": None, "target_in_ci": None, "same_sign_sig": None, "reason": ""}
    return row


def _level_row(name: str, effect: LevelEffect, result: ModeratorResult) -> dict[str, Any]:
    s = effect.statistics
    row = _blank(name, effect.level) | {
        "labels": ", ".join(effect.labels),
        "d": s.d,
        "se": s.se,
        "ci_low": s.ci_low,
        "ci_high": s.ci_high,
        "ci99_low": s.ci99_low,
        "ci99_high": s.ci99_high,
        "p": s.p,
        "test": "welch",
        "n_treatment": s.n_treatment,
        "n_control": s.n_control,
        "mean_treatment": s.mean_treatment,
        "mean_control": s.mean_control,
        "sd_treatment": s.sd_treatment,
        "sd_control": s.sd_control,
        "statistic": s.t,
        "df": s.df,
        "excluded": sum(result.excluded.values()),
        "reason": effect.reason,
    }
    if effect.odds_ratio is not None:
        o = effect.odds_ratio
        row |= {"odds_ratio": o.odds_ratio, "or_ci_low": o.ci_low, "or_ci_high": o.ci_high}
    elif not result.binary:
        row["reason"] = _join([effect.reason, _NOT_BINARY])
    reasons = [row["reason"], "no target per level"]
    row["reason"] = _join(reasons)
    return row


_NOT_BINARY = "odds ratio n/a: the scores are not all 0/1 (continuous or expected-mode codes)"


def _interaction_row(
    name: str, interaction: Interaction, result: ModeratorResult
) -> dict[str, Any]:
    t = interaction.test
    ratio, ratio_low, ratio_high = interaction.odds_ratio
    reasons = [interaction.reason]
    if not result.binary:
        reasons.append(_NOT_BINARY.replace("odds ratio", "ratio of odds ratios"))
    if result.moderator.target is None:
        reasons.append("no target interaction declared")
    return _blank(name, INTERACTION) | {
        "comparison": interaction.comparison,
        "d": interaction.d_difference,
        "se": interaction.se,
        "ci_low": interaction.ci_low,
        "ci_high": interaction.ci_high,
        "ci99_low": interaction.ci99_low,
        "ci99_high": interaction.ci99_high,
        "p": t.p,
        "test": t.test,
        "odds_ratio": ratio,
        "or_ci_low": ratio_low,
        "or_ci_high": ratio_high,
        "coefficient": t.estimate,
        "coefficient_se": t.se,
        "coefficient_ci_low": t.ci_low,
        "coefficient_ci_high": t.ci_high,
        "statistic": t.statistic,
        "df": t.df,
        "boot_defined": interaction.boot_defined,
        "excluded": sum(result.excluded.values()),
        "reason": _join(reasons),
    }


def _empty_statistics() -> EffectStatistics:
    return effect_statistics([], [])


def _no_attribute(moderator: Moderator, treatment: str, control: str) -> ModeratorResult:
    reason = (
        f"no '{moderator.attribute}' column: the answers carry no persona attributes "
        "(a bare model, --no-persona)"
    )
    levels = tuple(
        LevelEffect(level, labels, _empty_statistics(), None, reason)
        for level, labels in moderator.levels.items()
    )
    nan = math.nan
    interactions = tuple(
        Interaction(
            level,
            moderator.reference_level,
            nan,
            nan,
            nan,
            nan,
            nan,
            nan,
            0.0,
            _undefined_test("ols_hc2", reason),
            reason,
        )
        for level in moderator.compared_levels
    )
    omnibus = None
    if len(moderator.levels) > 2:
        omnibus = Omnibus("ols_hc2", nan, len(moderator.levels) - 1, nan, nan, reason)
    return ModeratorResult(
        moderator, treatment, control, False, levels, interactions, omnibus, {}, reason
    )


def moderator_analysis(
    frame: pd.DataFrame,
    moderator: Moderator,
    *,
    treatment: str,
    control: str,
    score: str = "score",
    n_boot: int = 2000,
    seed: int = 0,
) -> ModeratorResult:
    """The effect per moderator level, and its interaction with the moderator.

    Args:
        frame: one row per participant: ``condition``, the score column and the
            moderator's attribute (labels); rows of other conditions are ignored.
            A ``participant`` column, if present, must not repeat (use run 0).
        moderator: the attribute and its levels.
        treatment: the treatment condition (d = treatment minus control).
        control: the control condition.
        score: the score column (NaN: a missing score, left out).
        n_boot: bootstrap replicates for the CIs of the differences of ds.
        seed: the bootstrap's seed.

    Returns:
        The :class:`ModeratorResult`.

    Raises:
        ValueError: a participant appears twice.
    """
    rows = frame[frame["condition"].isin([treatment, control])]
    if "participant" in rows and rows["participant"].duplicated().any():
        raise ValueError("one row per participant expected (filter the answer run first)")
    if moderator.attribute not in rows:
        return _no_attribute(moderator, treatment, control)
    assignment = assign_levels(rows, moderator)
    names = list(moderator.levels)
    level_code = assignment.levels.map({level: i for i, level in enumerate(names)})
    scores = rows[score].astype(float).to_numpy()
    treated = (rows["condition"] == treatment).to_numpy()
    keep = level_code.notna().to_numpy() & ~np.isnan(scores)
    cells = (2 * level_code.to_numpy()[keep].astype(int) + treated[keep]).astype(int)
    x = scores[keep]
    moments = cell_moments(x, cells, 2 * len(names))
    binary = is_binary(x)
    cell_names = [f"{level}/{c}" for level in names for c in (control, treatment)]
    levels = tuple(
        _level_effect(level, moderator, moments, x, cells, i, binary)
        for i, level in enumerate(names)
    )
    boot = bootstrap_moments(
        x, cells, len(cell_names), np.arange(len(x)), cells, n_boot, np.random.default_rng(seed)
    )
    boot_d = d_from_moments(boot[:, 1::2], boot[:, 0::2])
    reference = names.index(moderator.reference_level)
    interactions = tuple(
        _interaction(levels, boot_d, moments, names.index(level), reference, binary, cell_names)
        for level in moderator.compared_levels
    )
    omnibus = None
    if len(names) > 2:
        matrix = np.array(
            [
                _interaction_weights(len(names), names.index(level), reference)
                for level in moderator.compared_levels
            ]
        )
        omnibus = wald_omnibus(moments, matrix, binary=binary, names=cell_names)
    return ModeratorResult(
        moderator,
        treatment,
        control,
        binary,
        levels,
        interactions,
        omnibus,
        dict(assignment.excluded),
    )


def _level_effect(
    level: str,
    moderator: Moderator,
    moments: np.ndarray,
    x: np.ndarray,
    cells: np.ndarray,
    index: int,
    binary: bool,
) -> LevelEffect:
    statistics = effect_statistics(x[cells == 2 * index + 1], x[cells == 2 * index])
    reason = d_reason(statistics)
    if statistics.n_treatment == 0 and statistics.n_control == 0:
        reason = f"no participants in level '{level}'"
    ratio = None
    if binary:
        ratio = odds_ratio(moments[2 * index + 1], moments[2 * index])
        reason = _join([reason, ratio.reason])
    return LevelEffect(level, moderator.levels[level], statistics, ratio, reason)


def _interaction_weights(k: int, level: int, reference: int) -> np.ndarray:
    """Cells ordered (level 0 control, level 0 treatment, level 1 control, ...)."""
    w = np.zeros(2 * k)
    w[2 * level + 1], w[2 * level] = 1.0, -1.0
    w[2 * reference + 1], w[2 * reference] = -1.0, 1.0
    return w


def _interaction(
    levels: Sequence[LevelEffect],
    boot_d: np.ndarray,
    moments: np.ndarray,
    level: int,
    reference: int,
    binary: bool,
    names: Sequence[str],
) -> Interaction:
    a, b = levels[level].statistics, levels[reference].statistics
    d = a.d - b.d
    se = math.sqrt(a.se**2 + b.se**2) if math.isfinite(d) else math.nan
    replicates = boot_d[:, level] - boot_d[:, reference]
    low, high, share = percentile_interval(replicates, 0.95)
    low99, high99, _ = percentile_interval(replicates, 0.99)
    weights = _interaction_weights(len(levels), level, reference)
    contrast = log_odds_contrast if binary else mean_contrast
    test = contrast(moments, weights, names=names)
    reasons = []
    if not math.isfinite(d):
        for effect in (levels[level], levels[reference]):
            if not math.isfinite(effect.statistics.d):
                reasons.append(f"d difference undefined: '{effect.level}': {effect.reason}")
    elif not math.isfinite(low):
        reasons.append(
            f"bootstrap CI undefined: a d undefined in {1 - share:.0%} of the resamples "
            "(a cell with no spread)"
        )
    reasons.append(test.reason)
    return Interaction(
        levels[level].level,
        levels[reference].level,
        d,
        se,
        low,
        high,
        low99,
        high99,
        share,
        test,
        _join(reasons),
    )
