"""The replication battery on the real embedded model: end to end, resume, a new study."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulacra.batteries import RunOptions, run_battery
from simulacra.batteries.replication import write_report
from simulacra.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ML1 = ROOT / "scenarios" / "replication" / "many_labs_1"
PNG = b"\x89PNG\r\n\x1a\n"
REQUIRED = (
    "effect",
    "d",
    "ci_low",
    "ci_high",
    "target_d",
    "target_ci_low",
    "target_ci_high",
    "same_sign_sig",
    "within_target_ci",
    "small_telescopes_pass",
    "original_in_ci",
    "n",
    "unparsed",
)
# M = 11 in units of 5, 5 and 1 participants; the first two are re-asked once more.
M = 11
OPTIONS = RunOptions(participants=M, n_threads=2, extra={"reask": 2, "chunk": 5, "reask_runs": 2})


@pytest.fixture(scope="module")
def ml1_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ml1") / "run"
    result = run_battery(ML1, out, OPTIONS, progress=False)
    return out, result


def test_ml1_battery_at_m11_writes_a_complete_report(ml1_run, tmp_path, capsys):
    out, result = ml1_run
    effects = {p.stem for p in (ML1 / "effects").glob("*.toml")}
    answers = result["answers"]
    main_run = answers[(answers["run"] == 0) & (answers["role"] == "measure")]
    assert main_run["participant"].nunique() == M
    per_person = main_run.groupby("participant")["effect"].nunique()
    assert (per_person == len(effects)).all()  # everyone did every study
    assert set(answers.loc[answers["run"] == 1, "participant"]) == {"p0000", "p0001"}
    assert len(result["participants"]) == M
    assert result.manifest["battery"]["kind"] == "replication"

    figdir = tmp_path / "report"
    assert main(["report", str(out), "--out", str(figdir)]) == 0
    printed = capsys.readouterr().out
    assert "summary.csv" in printed and "effects_vs_ml1.png" in printed
    summary = pd.read_csv(figdir / "summary.csv")
    assert set(summary["effect"]) == effects and len(summary) == len(effects)
    assert all(column in summary for column in REQUIRED)
    for _, row in summary.iterrows():
        assert np.isfinite(row[["target_d", "target_ci_low", "target_ci_high"]].astype(float)).all()
        assert row["n"] <= M and row["unparsed"] >= 0
        defined = (
            row["n_treatment"] >= 2
            and row["n_control"] >= 2
            and (row["sd_treatment"] > 0 or row["sd_control"] > 0)
        )
        if defined:
            assert np.isfinite([row["d"], row["ci_low"], row["ci_high"], row["p"]]).all()
            assert row["ci_low"] <= row["d"] <= row["ci_high"]
            assert row["same_sign_sig"] in (True, False)
            assert row["within_target_ci"] in (True, False)
        else:
            assert math.isnan(row["d"])
    numeric = summary[summary["numeric_answers"] > 0]
    assert set(numeric["effect"]) >= {"gamblers_fallacy", "anchoring_distance"}
    assert (numeric["numeric_answers"] == M).all()
    overall = pd.read_csv(figdir / "overall.csv")
    assert len(overall) == 1
    assert overall["n_effects"].item() == len(effects)
    for column in ("r_ml1", "r_original", "sign_agreement", "specificity"):
        assert column in overall
    composition = pd.read_csv(figdir / "composition.csv")
    assert (composition.groupby("attribute")["count"].sum() == M).all()
    for name in ("effects_vs_ml1.png", "variance_ratio.png"):
        assert (figdir / name).read_bytes()[:8] == PNG


def test_killed_run_resumes_to_the_same_tables(ml1_run, tmp_path):
    out, full = ml1_run
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    # A kill after two of the three units: the last unit (one participant) and the final
    # files are missing.
    units = sorted((resumed / "units").iterdir())
    assert len(units) == 3
    shutil.rmtree(units[-1])
    for path in resumed.glob("*.parquet"):
        path.unlink()
    (resumed / "manifest.json").unlink()
    again = run_battery(ML1, resumed, OPTIONS, progress=False)
    for name in ("answers", "participants"):
        pd.testing.assert_frame_equal(again[name], full[name])
    first = write_report(full, tmp_path / "first")
    second = write_report(again, tmp_path / "second")
    for a, b in zip(first, second, strict=True):
        if a.suffix == ".csv":
            pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b))


NEW_STUDY = """
# A study that is not in Many Labs 1, written in the same format: attribute framing
# (after Levin & Gaeth, 1988). The target is illustrative only.
title = "Attribute framing of ground beef"
source = "after Levin & Gaeth (1988)"
tags = ["illustrative"]

[[conditions]]
name = "lean"
stimulus = "At the supermarket you see a pack of ground beef labelled: 75% lean."

[[conditions]]
name = "fat"
stimulus = "At the supermarket you see a pack of ground beef labelled: 25% fat."

[[items]]
name = "quality"
kind = "likert"
question = "How good do you think this beef is?"
points = 7
low = "very poor"
high = "excellent"

[[items]]
name = "buy"
kind = "choice"
question = "Would you buy it?"
options = ["Yes", "No"]

[[scoring]]
step = "code"
item = "buy"
one = ["Yes"]

[[scoring]]
step = "composite"
name = "appeal"
items = ["quality", "buy"]

[contrast]
score = "appeal"
treatment = "lean"
control = "fat"

[target]
d = 0.5
ci = [0.1, 0.9]
"""


def test_a_new_study_runs_without_code_changes(tmp_path):
    battery = tmp_path / "battery"
    shutil.copytree(ML1, battery)
    for path in (battery / "effects").glob("*.toml"):
        if path.stem != "sunk_costs":
            path.unlink()
    (battery / "effects" / "attribute_framing.toml").write_text(NEW_STUDY)
    options = RunOptions(participants=4, mode="expected", n_threads=2, extra={"reask_runs": 1})
    result = run_battery(battery, tmp_path / "out", options, progress=False)
    paths = write_report(result, tmp_path / "report")
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert set(summary["effect"]) == {"attribute_framing", "sunk_costs"}
    assert (summary["mode"] == "expected").all()
    row = summary.set_index("effect").loc["attribute_framing"]
    assert row["n"] == 4 and row["target_d"] == 0.5
    assert any(p.name == "effects_vs_ml1.png" for p in paths)
    answers = result["answers"]
    framing = answers[answers["effect"] == "attribute_framing"]
    assert set(framing["item"]) == {"quality", "buy"}
    assert framing["probabilities"].map(len).isin([2, 7]).all()
