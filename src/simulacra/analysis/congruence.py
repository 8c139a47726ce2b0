"""Congruence: identity-motivated reasoning as the effect of a result fitting one's side.

The motivated-reasoning battery (``scenarios/motivated_reasoning``, method in
``docs/motivated-reasoning.md``) asks each participant to read evidence whose
result, drawn at random, points one way or the other. A participant's *side* is a
moderator level (``democrat`` or ``republican``); a result is *congruent* when it is
the one congenial to the side (:class:`CongruenceDesign`). In the covariance task
(Kahan et al. 2017) the same 2x2 table of counts is framed either as a skin cream
(the *neutral* frame) or as a ban on carrying concealed handguns (the *identity*
frame); the score is 1 for the correct reading of the table (or, in expected mode,
the probability of it).

Cells are side x result (x frame x debiasing instruction). With ``p_sr`` the mean
score of side s given result r and ``c(s)`` the result congenial to s, the
quantities, each computed for one frame and one instruction condition, are:

- balanced proportions ``P_congruent = mean_s p_s,c(s)`` and
  ``P_incongruent = mean_s p_s,not c(s)`` (the two sides weigh equally whatever the
  population's political mix);
- ``relative_increase = P_congruent / P_incongruent - 1`` (Dash et al. 2025 report
  "up to 90% more likely": 0.90 on this scale, if their figure is a ratio of
  proportions);
- the congruence odds ratio ``exp(mean_s log OR_s)``, with ``OR_s`` the odds of a
  correct answer, congruent over incongruent, within side s. It is ``exp(2 g)`` for
  the interaction g of the saturated logistic model ``logit p = a + b s + c r + g s r``
  in +-1 effect codes; Woolf's SE ``(1/2) sqrt(sum 1/count)`` over the eight counts
  is that model's Wald SE (:func:`~.moderators.log_odds_contrast`);
- the congruence d ``= mean_s d_s``, ``d_s`` ML1's d of congruent minus incongruent
  within side s (:func:`simulacra.analysis.replication.standardized_mean_difference`);
  on continuous scores (ratings) the test is OLS-HC2 on the same contrast of means;
- ``identity_minus_neutral``: the identity frame's congruence minus the neutral
  frame's *pseudo*-congruence (the same side x result contrast on the cream, with
  "the cream works" in the place of "the ban works"): a difference in differences
  that removes any side x result tendency not specific to the political topic
  (d difference; ratio of odds ratios);
- ``debiasing``: the congruence without minus with a lever (positive: the lever
  reduced it), and the same for the difference in differences. A lever is the
  debiasing instruction (``debiased``) or any other named condition the same
  participants answered under, e.g. ``capped`` (an identity direction capped,
  :mod:`simulacra.batteries.replication.intervention`); each is compared with
  ``plain``, with ``neutral_accuracy_change`` checking that it left the reading
  of the neutral table intact;
- ``neutral_accuracy``: the balanced accuracy ``(p_r1 + p_r2) / 2`` of the neutral
  frame (per side and over both), and whether the answers track the table: a
  one-sided Fisher exact test of answer x true result (0/1 codes; a one-sided Welch
  test on expected-mode codes). A model that always names the same conclusion has
  balanced accuracy 0.5 whatever the mix of directions. Congruence is read as
  motivated reasoning only where the neutral accuracy is above chance
  (``interpretable``).

Confidence intervals of ds, proportions, relative increases and of every
difference are percentile intervals of a cluster bootstrap: participants resampled
within side, each with all of its answers (so the same participants answering with
and without the instruction stay paired; :mod:`.resampling`). A single odds ratio
has Woolf's interval. p-values: the saturated-model Wald tests where the compared
cells hold different participants (a congruence effect; the difference in
differences within one instruction condition), a bootstrap z test (estimate over
the bootstrap SD) for the debiasing contrasts, whose cells share participants.

:func:`anchor_comparison` sets the measured congruence beside the published figures:
Dash et al.'s 0.90 and Ditto et al.'s (2019) r = .245, converted to
``d = 2 r / sqrt(1 - r^2)`` (:func:`r_to_d`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from simulacra.analysis.moderators import (
    ContrastTest,
    is_binary,
    log_odds_contrast,
    mean_contrast,
)
from simulacra.analysis.replication import ALPHA, effect_statistics
from simulacra.analysis.resampling import (
    bootstrap_moments,
    cell_moments,
    d_from_moments,
    moment_summary,
    percentile_interval,
)

__all__ = [
    "CONGRUENCE_COLUMNS",
    "DASH_2025_MAX_RELATIVE_INCREASE",
    "DITTO_2019_R",
    "DITTO_2019_R_CONSERVATIVES",
    "DITTO_2019_R_LIBERALS",
    "EVIDENCE_DESIGN",
    "FRAMES",
    "KAHAN_DESIGN",
    "CongruenceDesign",
    "accuracy_table",
    "anchor_comparison",
    "congruence_analysis",
    "d_to_r",
    "label_answers",
    "r_to_d",
]

FRAMES = ("neutral", "identity")
"""The frames of a congruence design: a neutral control and the identity-relevant topic."""

DASH_2025_MAX_RELATIVE_INCREASE = 0.90
"""Dash et al. 2025 (arXiv 2506.20020), abstract: political personas "up to 90% more
likely" to evaluate the gun-control evidence correctly when the correct answer is
congruent: the largest over 8 LLMs, read here as ``P_cong / P_incong - 1``."""
DITTO_2019_R = 0.245
"""Ditto et al. 2019 (Perspect. Psychol. Sci. 14(2)), overall partisan bias, 51 studies."""
DITTO_2019_R_LIBERALS = 0.235
"""Ditto et al. 2019, liberals."""
DITTO_2019_R_CONSERVATIVES = 0.255
"""Ditto et al. 2019, conservatives."""

CONGRUENCE_COLUMNS = (
    "quantity",
    "debiased",
    "frame",
    "side",
    "scale",
    "estimate",
    "ci_low",
    "ci_high",
    "p",
    "test",
    "n",
    "boot_defined",
    "interpretable",
    "reason",
)
"""Columns of :func:`congruence_analysis`'s table."""

_PLAIN, _DEBIASED = "plain", "debiased"
_CELLS_PER_CONDITION = 8  # frame x side x result


def lever_names(flags: pd.Series) -> pd.Series:
    """The ``debiased`` column as lever names: booleans as ``plain`` / ``debiased``."""
    return flags.map(lambda v: v if isinstance(v, str) else (_DEBIASED if v else _PLAIN))


def _condition_order(names: Sequence[str]) -> tuple[str, ...]:
    """``plain`` first, then ``debiased``, then the other levers by name."""
    present = set(names) | {_PLAIN}
    rest = sorted(present - {_PLAIN, _DEBIASED})
    return (_PLAIN, *([_DEBIASED] if _DEBIASED in present else []), *rest)


# --------------------------------------------------------------------------- design


@dataclass(frozen=True)
class CongruenceDesign:
    """Which condition shows which frame and result, and which result suits which side.

    Attributes:
        conditions: condition name -> ``(frame, result)``; frames from :data:`FRAMES`,
            two results shared by the frames (in the neutral frame the result that
            takes the place of the identity frame's).
        congenial: side (a moderator level) -> the result congenial to it; two sides
            with different results.

    Raises:
        ValueError: an unknown frame, other than two results, or sides that do not
            split the results.
    """

    conditions: Mapping[str, tuple[str, str]]
    congenial: Mapping[str, str]

    def __post_init__(self) -> None:
        for condition, (frame, _) in self.conditions.items():
            if frame not in FRAMES:
                raise ValueError(f"condition '{condition}': frame '{frame}' not in {FRAMES}")
        if len(self.results) != 2:
            raise ValueError(f"expected two results, got {self.results}")
        if len(self.congenial) != 2 or set(self.congenial.values()) != set(self.results):
            raise ValueError("expected two sides, each congenial to a different result")

    @property
    def results(self) -> tuple[str, ...]:
        """The results, in the order the conditions first name them."""
        return tuple(dict.fromkeys(result for _, result in self.conditions.values()))

    @property
    def sides(self) -> tuple[str, ...]:
        """The two sides, in declared order."""
        return tuple(self.congenial)

    @property
    def frames(self) -> tuple[str, ...]:
        """The frames present, in :data:`FRAMES` order."""
        present = {frame for frame, _ in self.conditions.values()}
        return tuple(frame for frame in FRAMES if frame in present)


KAHAN_DESIGN = CongruenceDesign(
    conditions={
        "cream_works": ("neutral", "works"),
        "cream_backfires": ("neutral", "backfires"),
        "ban_works": ("identity", "works"),
        "ban_backfires": ("identity", "backfires"),
    },
    congenial={"democrat": "works", "republican": "backfires"},
)
"""The covariance task of ``scenarios/motivated_reasoning`` (``covariance_*.toml``):
"works" is the cream improving the rash, the ban lowering crime; the standard US
partisan mapping makes the ban working congenial to Democrats."""

EVIDENCE_DESIGN = CongruenceDesign(
    conditions={
        "carry_raises_crime": ("identity", "works"),
        "carry_lowers_crime": ("identity", "backfires"),
    },
    congenial={"democrat": "works", "republican": "backfires"},
)
"""The evidence-evaluation task (``evidence_evaluation.toml``): "works" is a finding that
supports restricting guns (allowing concealed carry raised crime)."""


def label_answers(data: pd.DataFrame, design: CongruenceDesign) -> pd.DataFrame:
    """Add ``frame``, ``result`` and ``congruent`` to rows with ``condition`` and ``side``.

    Rows of other conditions are dropped; ``congruent`` is None where the side is
    none of the design's (unlisted or missing).
    """
    rows = data[data["condition"].isin(list(design.conditions))].copy()
    condition = rows["condition"].astype(object)
    rows["frame"] = condition.map({c: frame for c, (frame, _) in design.conditions.items()})
    rows["result"] = condition.map({c: result for c, (_, result) in design.conditions.items()})
    congenial = rows["side"].astype(object).map(dict(design.congenial))
    congruent = (congenial == rows["result"]).astype(object)
    rows["congruent"] = congruent.where(congenial.notna(), None)
    return rows


# --------------------------------------------------------------------------- anchors


def r_to_d(r: float) -> float:
    """A correlation as Cohen's d for two equal groups: ``d = 2 r / sqrt(1 - r^2)``."""
    return 2 * r / math.sqrt(1 - r * r)


def d_to_r(d: float) -> float:
    """The inverse of :func:`r_to_d`: ``r = d / sqrt(d^2 + 4)``."""
    return d / math.sqrt(d * d + 4)


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class _Layout:
    """Cell codes: lever condition x frame x side x result (K x 2 x 2 x 2)."""

    design: CongruenceDesign
    conditions: tuple[str, ...] = (_PLAIN, _DEBIASED)

    @property
    def n_cells(self) -> int:
        return _CELLS_PER_CONDITION * len(self.conditions)

    def __post_init__(self) -> None:
        results, sides = self.design.results, self.design.sides
        congenial = tuple(results.index(self.design.congenial[side]) for side in sides)
        object.__setattr__(self, "_congenial", congenial)

    def code(self, debiased: int, frame: int, side: int, result: int) -> int:
        return ((debiased * 2 + frame) * 2 + side) * 2 + result

    def congenial(self, side: int) -> int:
        return self._congenial[side]  # type: ignore[attr-defined]

    def pick(self, m: np.ndarray, debiased: int, frame: int, side: int, result: int) -> np.ndarray:
        return m[..., self.code(debiased, frame, side, result), :]

    def pair(self, m: np.ndarray, debiased: int, frame: int, side: int) -> tuple[Any, Any]:
        """The congruent and the incongruent cell of one side."""
        c = self.congenial(side)
        return self.pick(m, debiased, frame, side, c), self.pick(m, debiased, frame, side, 1 - c)

    def weights(self, debiased: int, frame: int, sign: float = 1.0) -> np.ndarray:
        """Contrast weights of the balanced congruence (+1/2 congruent, -1/2 incongruent)."""
        w = np.zeros(self.n_cells)
        for side in (0, 1):
            c = self.congenial(side)
            w[self.code(debiased, frame, side, c)] = sign / 2
            w[self.code(debiased, frame, side, 1 - c)] = -sign / 2
        return w


def _mean(m: np.ndarray) -> np.ndarray:
    return moment_summary(m)[1]


def _balanced(m: np.ndarray, layout: _Layout, debiased: int, frame: int, congruent: bool) -> Any:
    cells = [layout.pair(m, debiased, frame, side)[0 if congruent else 1] for side in (0, 1)]
    return (_mean(cells[0]) + _mean(cells[1])) / 2


def _congruence_d(m: np.ndarray, layout: _Layout, debiased: int, frame: int) -> Any:
    ds = [d_from_moments(*layout.pair(m, debiased, frame, side)) for side in (0, 1)]
    return (ds[0] + ds[1]) / 2


def _congruence_log_or(m: np.ndarray, layout: _Layout, debiased: int, frame: int) -> Any:
    """Balanced log OR, Haldane-Anscombe corrected (all 8 counts) where a count is 0."""
    cells = [cell for side in (0, 1) for cell in layout.pair(m, debiased, frame, side)]
    ones = np.stack([cell[..., 1] for cell in cells], axis=-1)
    zeros = np.stack([cell[..., 0] for cell in cells], axis=-1) - ones
    fix = 0.5 * np.any((ones == 0) | (zeros == 0), axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        logits = np.log((ones + fix) / (zeros + fix))
    return (logits[..., 0] - logits[..., 1] + logits[..., 2] - logits[..., 3]) / 2


def _neutral_accuracy(m: np.ndarray, layout: _Layout, debiased: int, side: int | None) -> Any:
    sides = (0, 1) if side is None else (side,)
    by_result = [sum(layout.pick(m, debiased, 0, s, r) for s in sides) for r in (0, 1)]
    return (_mean(by_result[0]) + _mean(by_result[1])) / 2


# --------------------------------------------------------------------------- rows


def _row(quantity: str, debiased: str, frame: str, side: str, scale: str, **values: Any) -> dict:
    row: dict[str, Any] = dict.fromkeys(CONGRUENCE_COLUMNS, math.nan)
    row |= {"quantity": quantity, "debiased": debiased, "frame": frame, "side": side}
    row |= {"scale": scale, "test": "", "interpretable": None, "reason": ""}
    return row | values


def _join(reasons: Sequence[str]) -> str:
    return "; ".join(dict.fromkeys(r for r in reasons if r))


def _interval(replicates: np.ndarray, estimate: float) -> tuple[float, float, float, str]:
    low, high, share = percentile_interval(replicates)
    reason = ""
    if math.isfinite(estimate) and not math.isfinite(low):
        reason = f"bootstrap CI undefined: undefined in {1 - share:.0%} of the resamples"
    return low, high, share, reason


def _bootstrap_p(replicates: np.ndarray, estimate: float) -> float:
    """Two-sided p of a bootstrap z test: the estimate over the replicates' SD."""
    finite = replicates[np.isfinite(replicates)]
    if not math.isfinite(estimate) or len(finite) < 2 or np.std(finite, ddof=1) == 0:
        return math.nan
    return float(2 * stats.norm.sf(abs(estimate / np.std(finite, ddof=1))))


@dataclass(frozen=True)
class _Data:
    """The answers laid out in cells, observed and resampled."""

    layout: _Layout
    values: Mapping[int, np.ndarray]  # the scores of each cell
    moments: np.ndarray
    boot: np.ndarray
    binary: bool
    probability: bool
    present: frozenset[tuple[int, int]]  # (debiased, frame) with answers

    def has(self, debiased: int, frame: int) -> bool:
        return (debiased, frame) in self.present

    def n(self, debiased: int, frame: int | None = None) -> int:
        frames = (0, 1) if frame is None else (frame,)
        codes = [
            self.layout.code(debiased, f, s, r) for f in frames for s in (0, 1) for r in (0, 1)
        ]
        return int(self.moments[codes, 0].sum())


def _layout_data(data: pd.DataFrame, design: CongruenceDesign, n_boot: int, seed: int) -> _Data:
    rows = label_answers(data, design)
    rows = rows[rows["side"].isin(design.sides) & rows["score"].notna()]
    flags = lever_names(rows["debiased"]) if "debiased" in rows else pd.Series(_PLAIN, rows.index)
    layout = _Layout(design, _condition_order(list(flags.unique())))
    n_cells = layout.n_cells
    index = {name: i for i, name in enumerate(layout.conditions)}
    rows = rows.assign(_debiased=flags.map(index).to_numpy(dtype=int))
    if rows.duplicated(["participant", "_debiased"]).any():
        raise ValueError(
            "one answer per participant and instruction condition expected (filter run 0)"
        )
    frame_code = rows["frame"].map({frame: i for i, frame in enumerate(FRAMES)})
    side_code = rows["side"].astype(object).map({side: i for i, side in enumerate(design.sides)})
    result_code = rows["result"].map({result: i for i, result in enumerate(design.results)})
    codes = (((rows["_debiased"] * 2 + frame_code) * 2 + side_code) * 2 + result_code).to_numpy(
        dtype=int
    )
    x = rows["score"].astype(float).to_numpy()
    people = pd.factorize(rows["participant"])[0]
    first = pd.Series(rows["side"].to_numpy()).groupby(people).first()
    strata = first.sort_index().to_numpy() if len(first) else np.array([])
    moments = cell_moments(x, codes, n_cells)
    if len(x):
        boot = bootstrap_moments(
            x, codes, n_cells, people, strata, n_boot, np.random.default_rng(seed)
        )
    else:
        boot = np.zeros((n_boot, n_cells, 3))
    present = frozenset((int(code) // 4 // 2, int(code) // 4 % 2) for code in np.unique(codes))
    probability = bool(len(x)) and bool(np.all((x >= 0) & (x <= 1)))
    values = {code: x[codes == code] for code in range(n_cells)}
    return _Data(layout, values, moments, boot, is_binary(x), probability, present)


def _test_row(test: ContrastTest) -> dict[str, Any]:
    return {"p": test.p, "test": test.test}


def _effect_rows(data: _Data, debiased: int, frame: int) -> list[dict[str, Any]]:
    """Proportions, relative increase, odds ratio and d of one frame's congruence."""
    layout, m, boot = data.layout, data.moments, data.boot
    label, frame_name = data.layout.conditions[debiased], FRAMES[frame]
    quantity = "congruence" if frame == 1 else "pseudo_congruence"
    n = data.n(debiased, frame)
    codes = [layout.code(debiased, frame, s, r) for s in (0, 1) for r in (0, 1)]
    weights = layout.weights(debiased, frame)[codes]
    names = [f"{s}/{r}" for s in layout.design.sides for r in layout.design.results]
    contrast = log_odds_contrast if data.binary else mean_contrast
    test = contrast(m[codes], weights, names=names)
    rows = []
    if data.probability:
        for congruent, name in ((True, "p_congruent"), (False, "p_incongruent")):
            estimate = float(_balanced(m, layout, debiased, frame, congruent))
            low, high, share, reason = _interval(
                _balanced(boot, layout, debiased, frame, congruent), estimate
            )
            rows.append(
                _row(name, label, frame_name, "all", "probability", estimate=estimate)
                | {"ci_low": low, "ci_high": high, "n": n, "boot_defined": share, "reason": reason}
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = _balanced(m, layout, debiased, frame, True) / _balanced(
                m, layout, debiased, frame, False
            )
            replicates = _balanced(boot, layout, debiased, frame, True) / _balanced(
                boot, layout, debiased, frame, False
            )
        estimate = float(ratio) - 1 if np.isfinite(ratio) else math.nan
        low, high, share, reason = _interval(replicates - 1, estimate)
        if not math.isfinite(estimate):
            reason = "relative increase undefined: P(correct | incongruent) is 0"
        rows.append(
            _row(quantity, label, frame_name, "all", "relative_increase", estimate=estimate)
            | {"ci_low": low, "ci_high": high, "n": n, "boot_defined": share, "reason": reason}
        )
    if data.binary:
        rows.append(
            _row(quantity, label, frame_name, "all", "odds_ratio")
            | {
                "estimate": _exp(test.estimate),
                "ci_low": _exp(test.ci_low),
                "ci_high": _exp(test.ci_high),
                "n": n,
                "reason": test.reason,
            }
            | _test_row(test)
        )
    estimate = float(_congruence_d(m, layout, debiased, frame))
    low, high, share, reason = _interval(_congruence_d(boot, layout, debiased, frame), estimate)
    if not math.isfinite(estimate):
        reason = "congruence d undefined: a side's d is undefined (see its row)"
    rows.append(
        _row(quantity, label, frame_name, "all", "d", estimate=estimate)
        | {"ci_low": low, "ci_high": high, "n": n, "boot_defined": share}
        | _test_row(test)
        | {"reason": _join([reason, test.reason])}
    )
    rows += _side_rows(data, debiased, frame, quantity)
    return rows


def _side_rows(data: _Data, debiased: int, frame: int, quantity: str) -> list[dict[str, Any]]:
    """Per side, d of congruent minus incongruent with the main effect's normal CI."""
    layout, rows = data.layout, []
    for side, name in enumerate(layout.design.sides):
        c = layout.congenial(side)
        congruent = data.values[layout.code(debiased, frame, side, c)]
        incongruent = data.values[layout.code(debiased, frame, side, 1 - c)]
        n_c, n_i = len(congruent), len(incongruent)
        statistics = effect_statistics(congruent, incongruent)
        reason = ""
        if n_c < 2 or n_i < 2:
            reason = f"d undefined: too few scores (congruent {n_c}, incongruent {n_i}; needs 2)"
        elif not math.isfinite(statistics.d):
            reason = "d undefined: no spread in either group"
        rows.append(
            _row(quantity, data.layout.conditions[debiased], FRAMES[frame], name, "d")
            | {
                "estimate": statistics.d,
                "ci_low": statistics.ci_low,
                "ci_high": statistics.ci_high,
                "p": statistics.p,
                "test": "welch",
                "n": n_c + n_i,
                "reason": reason,
            }
        )
    return rows


def _exp(value: float) -> float:
    return math.exp(value) if math.isfinite(value) else math.nan


def _difference_rows(
    data: _Data,
    quantity: str,
    debiased: str,
    frame: str,
    parts: Sequence[tuple[int, int, float]],
    paired: bool,
) -> list[dict[str, Any]]:
    """A signed sum of congruence effects: d difference and ratio of odds ratios.

    Args:
        data: the answers in cells.
        quantity: the rows' ``quantity``.
        debiased: the rows' ``debiased`` (which instruction conditions).
        frame: the rows' ``frame`` (which frames).
        parts: ``(debiased, frame, sign)`` terms.
        paired: whether the terms share participants (bootstrap z test) or not
            (the saturated-model Wald test of the contrast).
    """
    layout, m, boot = data.layout, data.moments, data.boot
    n = sum(data.n(d, f) for d, f, _ in parts)
    estimate = float(sum(sign * _congruence_d(m, layout, d, f) for d, f, sign in parts))
    replicates = sum(sign * _congruence_d(boot, layout, d, f) for d, f, sign in parts)
    low, high, share, reason = _interval(replicates, estimate)
    weights = sum(layout.weights(d, f, sign) for d, f, sign in parts)
    contrast = log_odds_contrast if data.binary else mean_contrast
    used = np.flatnonzero(weights)
    test = contrast(m[used], weights[used])
    if paired:
        test_values = {"p": _bootstrap_p(replicates, estimate), "test": "bootstrap_z"}
    else:
        test_values = _test_row(test)
    rows = [
        _row(quantity, debiased, frame, "all", "d", estimate=estimate)
        | {"ci_low": low, "ci_high": high, "n": n, "boot_defined": share}
        | test_values
        | {"reason": reason if math.isfinite(estimate) else "a congruence d is undefined"}
    ]
    if data.binary:
        log_ratio = float(sum(sign * _congruence_log_or(m, layout, d, f) for d, f, sign in parts))
        boot_ratio = sum(sign * _congruence_log_or(boot, layout, d, f) for d, f, sign in parts)
        low, high, share, reason = _interval(boot_ratio, log_ratio)
        p = _bootstrap_p(boot_ratio, log_ratio) if paired else test.p
        rows.append(
            _row(quantity, debiased, frame, "all", "odds_ratio", estimate=_exp(log_ratio))
            | {"ci_low": _exp(low), "ci_high": _exp(high), "n": n, "boot_defined": share}
            | {"p": p, "test": "bootstrap_z" if paired else test.test}
            | {"reason": _join([reason, test.reason])}
        )
    return rows


def _neutral_rows(data: _Data, debiased: int) -> list[dict[str, Any]]:
    """Balanced accuracy of the neutral frame, per side and over both, and its test."""
    layout, rows = data.layout, []
    for side, name in [(0, layout.design.sides[0]), (1, layout.design.sides[1]), (None, "all")]:
        sides = (0, 1) if side is None else (side,)
        cells = [sum(layout.pick(data.moments, debiased, 0, s, r) for s in sides) for r in (0, 1)]
        estimate = float(_neutral_accuracy(data.moments, layout, debiased, side))
        low, high, share, reason = _interval(
            _neutral_accuracy(data.boot, layout, debiased, side), estimate
        )
        p, test = _above_chance(cells[0], cells[1], data.binary)
        if not math.isfinite(estimate):
            reason = "balanced accuracy undefined: a direction has no answers"
        rows.append(
            _row(
                "neutral_accuracy",
                data.layout.conditions[debiased],
                "neutral",
                name,
                "balanced_accuracy",
            )
            | {"estimate": estimate, "ci_low": low, "ci_high": high, "p": p, "test": test}
            | {"n": int(cells[0][0] + cells[1][0]), "boot_defined": share, "reason": reason}
            | {"interpretable": _is_above(estimate, p)}
        )
    return rows


def _is_above(accuracy: float, p: float) -> bool | None:
    if not (math.isfinite(accuracy) and math.isfinite(p)):
        return None
    return bool(accuracy > 0.5 and p < ALPHA)


def _above_chance(first: np.ndarray, second: np.ndarray, binary: bool) -> tuple[float, str]:
    """One-sided test that the answers track the true result (neutral frame).

    With ``k_r`` correct of ``n_r`` answers given result r: Fisher's exact test of the
    table ``[[k_1, n_1 - k_1], [n_2 - k_2, k_2]]`` (rows: true result; columns: the
    answer naming result 1 or 2), alternative OR > 1. Expected-mode codes: Welch's
    one-sided test of ``P(names 1 | 1) > P(names 1 | 2)``.
    """
    (n1, s1, _), (n2, s2, _) = first, second
    if n1 < 1 or n2 < 1:
        return math.nan, ""
    if binary:
        table = [[int(s1), int(n1 - s1)], [int(n2 - s2), int(s2)]]
        return float(stats.fisher_exact(table, alternative="greater")[1]), "fisher_exact"
    _, m1, v1 = (float(v) for v in moment_summary(first))
    _, m2, v2 = (float(v) for v in moment_summary(second))
    if n1 < 2 or n2 < 2 or v1 + v2 == 0:
        return math.nan, "welch_one_sided"
    a, b = v1 / n1, v2 / n2
    t = (m1 - (1 - m2)) / math.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    return float(stats.t.sf(t, df)), "welch_one_sided"


def _flag(rows: list[dict[str, Any]], neutral: Mapping[int, dict[str, Any]], debiased: int) -> None:
    """Mark congruence rows interpretable or not by the neutral frame's accuracy."""
    found = neutral.get(debiased)
    for row in rows:
        if row["quantity"] == "neutral_accuracy":
            continue
        if found is None:
            row["reason"] = _join([row["reason"], "no neutral frame: interpretability unknown"])
            continue
        row["interpretable"] = found["interpretable"]
        if found["interpretable"] is not True:
            row["reason"] = _join(
                [
                    row["reason"],
                    f"neutral-frame accuracy not above chance (balanced accuracy "
                    f"{found['estimate']:.2f}, p = {found['p']:.2g}): not interpretable as "
                    "motivated reasoning",
                ]
            )


def _lever_rows(
    cells: _Data, lever: int, neutral: Mapping[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """A lever (instruction, capping, ...) against the plain condition, same participants.

    ``debiasing`` (identity-frame congruence, plain minus lever) and
    ``debiasing_identity_minus_neutral``; with a neutral frame in both, the
    ``neutral_accuracy_change`` (plain minus lever balanced accuracy: positive, the
    lever damaged the reading of the table).
    """
    label = f"{_PLAIN} - {cells.layout.conditions[lever]}"
    block: list[dict[str, Any]] = []
    if cells.has(0, 1) and cells.has(lever, 1):
        parts = [(0, 1, 1.0), (lever, 1, -1.0)]
        block += _difference_rows(cells, "debiasing", label, "identity", parts, True)
        if cells.has(0, 0) and cells.has(lever, 0):
            parts = [(0, 1, 1.0), (0, 0, -1.0), (lever, 1, -1.0), (lever, 0, 1.0)]
            block += _difference_rows(
                cells, "debiasing_identity_minus_neutral", label, "identity - neutral", parts, True
            )
        if cells.probability:
            _flag(block, neutral, 0)
    if cells.probability and cells.has(0, 0) and cells.has(lever, 0):
        layout = cells.layout
        estimate = float(
            _neutral_accuracy(cells.moments, layout, 0, None)
            - _neutral_accuracy(cells.moments, layout, lever, None)
        )
        replicates = _neutral_accuracy(cells.boot, layout, 0, None) - _neutral_accuracy(
            cells.boot, layout, lever, None
        )
        low, high, share, reason = _interval(replicates, estimate)
        block.append(
            _row("neutral_accuracy_change", label, "neutral", "all", "balanced_accuracy")
            | {"estimate": estimate, "ci_low": low, "ci_high": high, "boot_defined": share}
            | {"p": _bootstrap_p(replicates, estimate), "test": "bootstrap_z"}
            | {"n": cells.n(0, 0) + cells.n(lever, 0), "reason": reason}
        )
    return block


def congruence_analysis(
    data: pd.DataFrame,
    design: CongruenceDesign,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """The congruence quantities of a motivated-reasoning task (module docstring).

    Args:
        data: one row per answer: ``participant``, ``side`` (a moderator level;
            others and missing are left out), ``condition``, ``score`` (1 correct,
            0 not, or a probability, or a rating) and optionally ``debiased``: the
            lever condition answered under (False or ``plain``: none; True or
            ``debiased``: the debiasing instruction; any other name, e.g. ``capped``:
            another lever). A participant may answer under several; within one, in
            one condition.
        design: the conditions' frames and results, the sides' congenial results.
        n_boot: bootstrap replicates.
        seed: the bootstrap's seed.

    Returns:
        A table with :data:`CONGRUENCE_COLUMNS`: per lever condition (``plain``,
        ``debiased``, then the others by name) the neutral accuracy rows, ``p_congruent`` and
        ``p_incongruent``, ``congruence`` (identity frame) and ``pseudo_congruence``
        (neutral frame) on the scales ``relative_increase``, ``odds_ratio`` (0/1
        codes) and ``d`` (sides ``all`` and each side); ``identity_minus_neutral``;
        and for every lever against ``plain`` (``debiased`` = ``plain - <lever>``)
        ``debiasing`` (identity frame) and ``debiasing_identity_minus_neutral``
        (scales ``d`` and ``odds_ratio``, the latter a ratio of odds ratios) and
        ``neutral_accuracy_change`` (the neutral frame's balanced accuracy, plain
        minus lever: positive if the lever damaged the reading of the table).
        Rows whose cells have no answers are left out.

    Raises:
        ValueError: a participant answers twice in one instruction condition.
    """
    cells = _layout_data(data, design, n_boot, seed)
    names = cells.layout.conditions
    rows: list[dict[str, Any]] = []
    neutral: dict[int, dict[str, Any]] = {}
    for debiased in range(len(names)):
        block: list[dict[str, Any]] = []
        if cells.has(debiased, 0) and cells.probability:
            accuracy = _neutral_rows(cells, debiased)
            neutral[debiased] = accuracy[-1]
            block += accuracy
        for frame in (1, 0):
            if cells.has(debiased, frame):
                block += _effect_rows(cells, debiased, frame)
        if cells.has(debiased, 0) and cells.has(debiased, 1):
            parts = [(debiased, 1, 1.0), (debiased, 0, -1.0)]
            block += _difference_rows(
                cells,
                "identity_minus_neutral",
                names[debiased],
                "identity - neutral",
                parts,
                paired=False,
            )
        if cells.probability:
            _flag(block, neutral, debiased)
        rows += block
    for lever in range(1, len(names)):
        rows += _lever_rows(cells, lever, neutral)
    table = pd.DataFrame(rows, columns=list(CONGRUENCE_COLUMNS))
    table["interpretable"] = pd.Series(
        [None if v is None else bool(v) for v in table["interpretable"]],
        index=table.index,
        dtype=object,
    )
    return table


def accuracy_table(data: pd.DataFrame, design: CongruenceDesign) -> pd.DataFrame:
    """Mean score and count per instruction condition, frame, side and result.

    Returns:
        Columns ``debiased, frame, side, result, congruent, n, mean``.
    """
    rows = label_answers(data, design)
    rows = rows[rows["side"].isin(design.sides) & rows["score"].notna()]
    if "debiased" not in rows:
        rows = rows.assign(debiased=False)
    rows = rows.assign(debiased=lever_names(rows["debiased"]))
    keys = ["debiased", "frame", "side", "result", "congruent"]
    table = rows.groupby(keys, sort=True)["score"].agg(n="count", mean="mean").reset_index()
    return table


def anchor_comparison(table: pd.DataFrame, debiased: str = _PLAIN) -> pd.DataFrame:
    """The measured congruence (identity frame) beside the published figures.

    Rows:

    - ``Dash et al. 2025``: the relative increase in P(correct), congruent over
      incongruent, against their "up to 90%" (a maximum over 8 LLMs, so an upper
      reference, not a target);
    - ``Ditto et al. 2019``: the congruence d against ``r_to_d(.245)`` (a human
      meta-analytic mean over evaluation designs, so a size reference, not a
      like-for-like target for an accuracy task); ``measured_r`` is ``d_to_r`` of
      the measured d.

    Args:
        table: the output of :func:`congruence_analysis`.
        debiased: which instruction condition (``plain`` or ``debiased``).

    Returns:
        Columns ``anchor, scale, published, estimate, ci_low, ci_high,
        published_in_ci, measured_r, interpretable, reason``.
    """
    found = table[
        (table["quantity"] == "congruence")
        & (table["debiased"] == debiased)
        & (table["side"] == "all")
    ]
    anchors = [
        ("Dash et al. 2025", "relative_increase", DASH_2025_MAX_RELATIVE_INCREASE),
        ("Ditto et al. 2019", "d", r_to_d(DITTO_2019_R)),
    ]
    rows = []
    for anchor, scale, published in anchors:
        match = found[found["scale"] == scale]
        if match.empty:
            rows.append(
                {"anchor": anchor, "scale": scale, "published": published, "estimate": math.nan}
                | {"reason": f"no {scale} congruence measured (scores or frames missing)"}
            )
            continue
        row = match.iloc[0]
        low, high, estimate = float(row["ci_low"]), float(row["ci_high"]), float(row["estimate"])
        inside = bool(low <= published <= high) if math.isfinite(low) else None
        rows.append(
            {
                "anchor": anchor,
                "scale": scale,
                "published": published,
                "estimate": estimate,
                "ci_low": low,
                "ci_high": high,
                "published_in_ci": inside,
                "measured_r": d_to_r(estimate)
                if scale == "d" and math.isfinite(estimate)
                else None,
                "interpretable": row["interpretable"],
                "reason": row["reason"],
            }
        )
    columns = [
        "anchor",
        "scale",
        "published",
        "estimate",
        "ci_low",
        "ci_high",
        "published_in_ci",
        "measured_r",
        "interpretable",
        "reason",
    ]
    return pd.DataFrame(rows).reindex(columns=columns)
