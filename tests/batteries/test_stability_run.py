"""The stability battery end to end on the embedded model: smoke design, report, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulacra.batteries.base import RunOptions
from simulacra.batteries.runner import run_battery, validate_battery
from simulacra.cli import main
from simulacra.llm.cache import get_engine

BATTERY = Path(__file__).resolve().parents[2] / "scenarios" / "stability"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("stability") / "run"
    result = run_battery(BATTERY, out, RunOptions(design="smoke", n_threads=2), progress=False)
    return out, result


def test_a_smoke_dialogue_yields_every_measure(smoke):
    _, result = smoke
    assert set(result.tables) == {"turns", "beliefs", "self_report", "qa"}
    turns = result["turns"]
    assert list(turns["turn"]) == [0, 1, 2, 3]
    assert list(turns["phase"]) == ["start", "warmup", "pressure", "pressure"]
    assert turns["prior"].iloc[0] == pytest.approx(1 / 3)  # mara, theo, default
    replies = turns["reply"].iloc[1:]
    assert all(isinstance(r, str) and r for r in replies)  # the real model answered
    assert "Mara Voss" in turns["message"].iloc[2] or "act" in turns["message"].iloc[2]
    assert turns["retention"].between(0, 1).all()
    assert np.isfinite(turns["prompt_to_line"].iloc[1:]).all()
    assert np.isnan(turns["line_to_line"].iloc[1]) and np.isfinite(turns["line_to_line"].iloc[2])
    posterior = result["beliefs"].groupby("turn")["posterior"].sum()
    np.testing.assert_allclose(posterior, 1.0)
    report = result["self_report"]
    assert sorted(set(report["turn"])) == [0, 2, 3]
    np.testing.assert_allclose(report.groupby("turn")["probability"].sum(), 1.0)
    qa = result["qa"]
    assert set(qa["occasion"]) == {"start", "end"} and qa["fact"].nunique() == 3


def test_the_unit_is_reproducible_and_a_rerun_resumes_nothing(smoke):
    out, result = smoke
    again = run_battery(BATTERY, out, RunOptions(design="smoke", n_threads=2), progress=False)
    pd.testing.assert_frame_equal(again["turns"], result["turns"])
    battery = validate_battery(BATTERY)
    unit = battery.plan(RunOptions(design="smoke"))[0]
    engine = get_engine(unit.model, n_ctx=battery.n_ctx, n_threads=2)
    engine.reset()
    with engine.recomputing_quietly():
        fresh = battery.run_unit(unit, engine)
    stored = result["turns"].drop(columns=["unit_id", "model"])
    pd.testing.assert_frame_equal(fresh["turns"], stored)


def test_the_report_writes_the_summary_and_figures(smoke, tmp_path):
    out, _ = smoke
    assert main(["report", str(out), "--out", str(tmp_path)]) == 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.columns[:7]) == [
        "model",
        "metric",
        "condition",
        "estimate",
        "ci_low",
        "ci_high",
        "n",
    ]
    assert {"retention", "half_life", "prompt_to_line", "line_to_line", "qa_consistency"} <= set(
        summary["metric"]
    )
    assert (tmp_path / "retention_curves.png").stat().st_size > 0
    assert (tmp_path / "half_life_forest.png").stat().st_size > 0
