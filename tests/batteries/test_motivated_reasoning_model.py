"""The motivated-reasoning battery on the real embedded model: validates, runs, reports.

A tiny run (8 participants, nobody re-asked) of all four studies, the identity lever
(capping the partisan direction, extracted on the fly) included: the report shows
every study with a row per moderator level and the interaction, the congruence
tables list every condition x side cell that was answered, and every NaN of a main
row has its reason. Measured sizes live in the closing note, not here: 8 answers
per study say nothing about the effect. The shipped battery is validated as it is; the
run uses a copy whose partisan extraction spec keeps two of its pairs and two of its
questions (the vector's size is not what is tested, and extracting the full spec took
most of the test's 109 s on 2 shared cores, 2026-12-02).
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from simulacra.analysis.congruence import EVIDENCE_DESIGN, KAHAN_DESIGN
from simulacra.batteries import RunOptions, run_battery
from simulacra.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BATTERY = ROOT / "scenarios" / "motivated_reasoning"
PARTICIPANTS = 8
OPTIONS = RunOptions(participants=PARTICIPANTS, n_threads=2, extra={"reask": 0, "chunk": 8})
EFFECTS = (
    "covariance_capped",
    "covariance_debiased",
    "covariance_detection",
    "evidence_evaluation",
)


def small_partisan_battery(root: Path) -> Path:
    """Copy the battery beside a reduced partisan spec, at the path its effect file names."""
    battery = root / "scenarios" / "motivated_reasoning"
    shutil.copytree(BATTERY, battery)
    spec = tomllib.loads((ROOT / "scenarios" / "vectors" / "partisan.toml").read_text())
    spec["pairs"] = spec["pairs"][:2]
    spec["questions"]["extraction"] = spec["questions"]["extraction"][:2]
    # JSON strings and arrays of them are TOML basic strings and arrays
    lines = [
        f"{key} = {json.dumps(spec[key])}" for key in ("name", "description", "method", "layers")
    ]
    for pair in spec["pairs"]:
        lines += ["[[pairs]]", *(f"{k} = {json.dumps(v)}" for k, v in pair.items())]
    for table in ("style", "questions"):
        lines += [f"[{table}]", *(f"{k} = {json.dumps(v)}" for k, v in spec[table].items())]
    (root / "scenarios" / "vectors").mkdir()
    (root / "scenarios" / "vectors" / "partisan.toml").write_text("\n".join(lines) + "\n")
    return battery


def test_the_battery_validates_runs_and_reports_every_condition_and_level(tmp_path, capsys):
    assert main(["battery", "validate", str(BATTERY)]) == 0
    out = tmp_path / "run"
    result = run_battery(small_partisan_battery(tmp_path), out, OPTIONS, progress=False)
    answers = result["answers"]
    measured = answers[answers["role"] == "measure"]
    assert measured["participant"].nunique() == PARTICIPANTS
    assert set(measured["effect"]) == set(EFFECTS)

    figdir = tmp_path / "report"
    assert main(["report", str(out), "--out", str(figdir)]) == 0
    printed = capsys.readouterr().out
    for name in ("summary.csv", "congruence.csv", "congruence_cells.csv", "anchors.csv"):
        assert name in printed
    summary = pd.read_csv(figdir / "summary.csv", keep_default_na=False, na_values=[""])
    capped = summary[summary["effect"] == "covariance_capped"]
    assert set(capped["intervention"]) == {"cap partisan@8,10,12 band neutral"}
    assert set(summary[summary["effect"] != "covariance_capped"]["intervention"].fillna("")) == {""}
    for effect in EFFECTS:
        rows = summary[summary["effect"] == effect]
        assert list(rows["level"].fillna("")) == ["", "democrat", "republican", "interaction"]
        main_row = rows.iloc[0]
        assert not main_row["in_overall"] and "exploratory" in main_row["reason"]
        assert "run_persona_ratio: nobody re-asked" in main_row["reason"]
    levels = summary[summary["level"].isin(["democrat", "republican"])]
    assert (levels["n"].fillna(0) >= 0).all()
    assert not (figdir / "variance_ratio.png").exists()  # nobody re-asked: no empty figure
    assert (figdir / "effects_vs_ml1.png").read_bytes()[:4] == b"\x89PNG"

    congruence = pd.read_csv(figdir / "congruence.csv")
    assert set(congruence["task"]) == {"covariance_detection", "evidence_evaluation"}
    assert {"plain", "debiased", "capped", "plain - capped"} <= set(congruence["debiased"])

    # the identity lever: the partisan vector extracted once into OUT/vectors, the band
    # measured per capped block on the model, and recorded in the run
    levers = result["interventions"].drop_duplicates(["effect", "block"])
    assert list(levers["block"]) == [8, 10, 12] and set(levers["effect"]) == {"covariance_capped"}
    assert (levers["low"] < levers["high"]).all()
    assert len(list((out / "vectors").glob("partisan-*.gguf"))) == 1
    assert "covariance_capped" in result.manifest["battery"]["interventions"]
    cells = pd.read_csv(figdir / "congruence_cells.csv")
    people = result["participants"].drop_duplicates("participant").set_index("participant")
    covariance = ("covariance_detection", "covariance_debiased", "covariance_capped")
    for task, design, effects in (
        ("covariance_detection", KAHAN_DESIGN, covariance),
        ("evidence_evaluation", EVIDENCE_DESIGN, ("evidence_evaluation",)),
    ):
        answered = measured[measured["effect"].isin(effects) & (measured["run"] == 0)]
        politics = answered["participant"].map(people["politics"])
        partisan = answered[~politics.str.startswith("independent")]
        expected = {design.conditions[c] for c in partisan["condition"]}
        shown = cells[cells["task"] == task]
        assert set(zip(shown["frame"], shown["result"], strict=True)) == expected
        assert shown["n"].sum() == partisan.groupby(["participant", "effect"]).ngroups
