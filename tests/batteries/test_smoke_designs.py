"""The smoke designs run end to end on the real model: battery run, report, verdicts.

Both shipped batteries' ``smoke`` designs go through the command line as a new user
would run them (``simulacra battery run ... --design smoke`` then ``simulacra
report``), on the embedded default model only and cut to one task / one study
(``--tasks``, ``--effects``) to keep the suite fast; every channel, control and
subject of the goal-guarding smoke design still runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from simulacra.cli import main

ROOT = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m-instruct"


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_goal_guarding_smoke_design_end_to_end(tmp_path, capsys):
    out = tmp_path / "gg"
    battery = str(ROOT / "scenarios" / "goal_guarding")
    argv = ["battery", "run", battery, "--out", str(out), "--design", "smoke"]
    status, _, err = _run([*argv, "--model", MODEL, "--tasks", "tampering"], capsys)
    assert status == 0, err
    assert "eta" in err  # the progress line estimated the rest from finished units
    decisions = pd.read_parquet(out / "decisions.parquet")
    assert set(decisions["channel"]) == {"none", "dialogue", "memory", "system", "file"}
    assert set(decisions["task"]) == {"tampering"}
    assert set(decisions["control"]) == {"none", "positive", "negative", "length"}
    status, _, err = _run(["report", str(out), "--out", str(tmp_path / "rep")], capsys)
    assert status == 0, err
    assert "verdict (goal_guarding): smollm2-135m-instruct: controls" in err
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert "reason" in summary.columns


def test_replication_smoke_design_end_to_end(tmp_path, capsys):
    out = tmp_path / "ml1"
    battery = str(ROOT / "scenarios" / "replication" / "many_labs_1")
    argv = ["battery", "run", battery, "--out", str(out), "--design", "smoke"]
    status, _, err = _run([*argv, "--effects", "sunk_costs"], capsys)
    assert status == 0, err
    answers = pd.read_parquet(out / "answers.parquet")
    assert set(answers["effect"]) == {"sunk_costs"}
    assert answers["participant"].nunique() == 4
    assert (answers["run"] == 0).all()  # M = 4 is below the re-asking threshold
    status, _, err = _run(["report", str(out), "--out", str(tmp_path / "rep")], capsys)
    assert status == 0, err
    assert "verdict (replication): smollm2-135m-instruct: " in err
    assert "below the re-asking threshold" in err
