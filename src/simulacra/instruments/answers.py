"""Answers: what an instrument returns for one respondent, and their tidy tables.

Every (respondent, instrument) item gives one :class:`Answer`. :func:`answers_frame`
lays answers out one row each; :func:`option_frame` lays out their distributions, one
row per answer, order and option, so that order-averaged probabilities and the
per-order ones (position bias) sit in one long table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from simulacra.instruments.choice import option_orders

__all__ = [
    "ANSWER_COLUMNS",
    "MEAN_ORDER",
    "OPTION_COLUMNS",
    "Answer",
    "answers_frame",
    "option_frame",
]

MEAN_ORDER = "mean"
"""The ``order`` of :func:`option_frame`'s order-averaged rows."""

ANSWER_COLUMNS = ("respondent", "instrument", "kind", "text", "value", "parsed", "expected")
OPTION_COLUMNS = (
    "respondent",
    "instrument",
    "kind",
    "order",
    "option_index",
    "option",
    "position",
    "probability",
)


@dataclass(frozen=True)
class Answer:
    """One respondent's answer to one instrument.

    Attributes:
        respondent: the respondent's key.
        instrument: the instrument's name.
        kind: ``"choice"``, ``"likert"``, ``"numeric"`` or ``"free_text"``.
        options: choice: the options; likert: ``("1", ..., "N")``.
        probabilities: choice: averaged over the orders; likert: per point.
        per_order: choice: one row per order asked (order r lists option r first),
            columns in the original option order.
        expected: likert: the expected point sum_k k * p_k.
        text: numeric and free text: the sampled reply; choice and likert: the
            sampled option or point.
        value: numeric: the parsed number (None if unparsed); likert: the sampled
            point (1..N); choice: the sampled option's index.
        parsed: numeric: whether the reply held a number.

    """

    respondent: str
    instrument: str
    kind: str
    options: tuple[str, ...] = ()
    probabilities: tuple[float, ...] = ()
    per_order: tuple[tuple[float, ...], ...] = ()
    expected: float | None = None
    text: str | None = None
    value: float | None = None
    parsed: bool | None = None


def answers_frame(answers: Sequence[Answer]) -> pd.DataFrame:
    """One tidy row per answer.

    Args:
        answers: the answers.

    Returns:
        Columns ``respondent, instrument, kind, text, value, parsed, expected``;
        ``value`` and ``expected`` are floats (NaN where not applicable or not
        parsed), ``parsed`` is a nullable boolean (set for numeric answers only).
    """
    frame = pd.DataFrame(
        {
            "respondent": pd.Series([a.respondent for a in answers], dtype=object),
            "instrument": pd.Series([a.instrument for a in answers], dtype=object),
            "kind": pd.Series([a.kind for a in answers], dtype=object),
            "text": pd.Series([a.text for a in answers], dtype=object),
            "value": pd.Series(
                [float("nan") if a.value is None else float(a.value) for a in answers],
                dtype="float64",
            ),
            "parsed": pd.Series([a.parsed for a in answers], dtype="boolean"),
            "expected": pd.Series(
                [float("nan") if a.expected is None else a.expected for a in answers],
                dtype="float64",
            ),
        },
        columns=list(ANSWER_COLUMNS),
    )
    return frame


def option_frame(answers: Sequence[Answer]) -> pd.DataFrame:
    """One row per answer x order x option, for the answers that carry a distribution.

    Args:
        answers: the answers; numeric and free-text ones have no rows.

    Returns:
        Columns ``respondent, instrument, kind, order, option_index, option,
        position, probability``. ``order`` is a string: ``"mean"`` for the
        probabilities averaged over the orders (the only rows of a Likert answer),
        else the order's number ``"0"`` .. ``"k-1"`` (order r lists option r first).
        ``option_index`` is the option's place in the instrument's own list and
        ``position`` the place it was listed at in that order (nullable, missing on
        ``"mean"`` rows).
    """
    rows: list[tuple[object, ...]] = []
    for a in answers:
        for j, (option, p) in enumerate(zip(a.options, a.probabilities, strict=True)):
            rows.append((a.respondent, a.instrument, a.kind, MEAN_ORDER, j, option, None, p))
        orders = option_orders(len(a.options))
        for r, row in enumerate(a.per_order):
            for j, (option, p) in enumerate(zip(a.options, row, strict=True)):
                position = orders[r].index(j)
                rows.append((a.respondent, a.instrument, a.kind, str(r), j, option, position, p))
    frame = pd.DataFrame(rows, columns=list(OPTION_COLUMNS))
    frame["option_index"] = frame["option_index"].astype("int64")
    frame["position"] = frame["position"].astype("Int64")
    frame["probability"] = frame["probability"].astype("float64")
    return frame
