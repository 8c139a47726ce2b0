"""Probe answers summarised across runs: means, intervals, order, other kinds ignored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulacra.analysis.probes import (
    PROBE_CURVE_COLUMNS,
    choice_answers,
    probe_curves,
    shown_options,
)

COLUMNS = ["run_id", "turn", "agent", "probe", "option", "probability", "grid"]


def table(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def test_mean_and_interval_across_runs() -> None:
    rows = []
    for run, p_yes in enumerate([0.2, 0.4, 0.6, 0.8]):
        for turn in (2, 0):  # turns out of order on purpose
            rows += [
                (f"r{run}", turn, "ada", "help", "yes", p_yes + 0.1 * turn, "a"),
                (f"r{run}", turn, "ada", "help", "no", 0.9 - p_yes - 0.1 * turn + 0.1, "a"),
            ]
    curves = probe_curves(table(rows), by="grid", n_boot=500, seed=1)
    assert list(curves.columns) == ["grid", *PROBE_CURVE_COLUMNS]
    assert list(curves[["option", "turn"]].itertuples(index=False, name=None)) == [
        ("yes", 0),
        ("yes", 2),
        ("no", 0),
        ("no", 2),
    ]
    yes0 = curves.iloc[0]
    assert yes0["mean"] == pytest.approx(0.5)
    assert yes0["n"] == 4
    assert 0.2 <= yes0["low"] < 0.5 < yes0["high"] <= 0.8
    again = probe_curves(table(rows), by="grid", n_boot=500, seed=1)
    pd.testing.assert_frame_equal(curves, again)


def test_one_run_one_observation() -> None:
    rows = [
        ("r0", 0, "ada", "help", "yes", 0.3, "a"),
        ("r0", 0, "ada", "help", "yes", 0.5, "a"),  # a repeated row counts once, as its mean
        ("r1", 0, "ada", "help", "yes", 0.7, "a"),
    ]
    curves = probe_curves(table(rows), n_boot=50)
    assert curves["n"].tolist() == [2]
    assert curves["mean"].iloc[0] == pytest.approx((0.4 + 0.7) / 2)


def test_order_of_first_appearance() -> None:
    rows = [
        ("r0", 0, "zed", "second", "b", 0.5, "a"),
        ("r0", 0, "zed", "second", "a", 0.5, "a"),
        ("r0", 0, "amy", "first", "x", 0.5, "a"),
    ]
    curves = probe_curves(table(rows), n_boot=10)
    assert curves[["probe", "agent", "option"]].values.tolist() == [
        ["second", "zed", "b"],
        ["second", "zed", "a"],
        ["first", "amy", "x"],
    ]


def test_other_kinds_and_incomplete_tables_are_ignored() -> None:
    rows = table(
        [
            ("r0", 0, "ada", "help", "yes", 0.6, "a"),
            ("r0", 0, "ada", "mood", "3", 0.2, "a"),
            ("r0", 0, "ada", "miles", None, np.nan, "a"),
        ]
    ).assign(kind=["choice", "likert", "numeric"])
    assert choice_answers(rows)["probe"].tolist() == ["help"]
    assert probe_curves(rows, n_boot=10)["probe"].tolist() == ["help"]
    assert choice_answers(pd.DataFrame()).empty
    assert probe_curves(rows.drop(columns="probability"), by="grid").empty
    assert probe_curves(pd.DataFrame(), by="grid").columns.tolist() == [
        "grid",
        *PROBE_CURVE_COLUMNS,
    ]
    with pytest.raises(ValueError, match="nope"):
        probe_curves(rows, by="nope")


def test_shown_options() -> None:
    assert shown_options(["yes", "no"]) == ["yes"]
    assert shown_options(["a", "b", "c"]) == ["a", "b", "c"]
