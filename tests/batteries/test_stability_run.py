"""The stability battery end to end on the embedded model: smoke design, report, resume.

The smoke design is extended here (in a copy of the battery) to the steered source and
capping, with the persona vector and the Assistant axis extracted at the smallest sizes,
so one run covers every source path, capping and the projections (measure b).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulacra.batteries.base import RunOptions
from simulacra.batteries.runner import run_battery, validate_battery
from simulacra.cli import main
from simulacra.llm.cache import get_engine

ROOT = Path(__file__).resolve().parents[2]
EDITS = (  # smoke, extended: the steered source with capping off and on, small extractions
    ('sources = ["prompted"]', 'sources = ["steered"]'),
    ("projections = false", 'projections = true\ncapping = ["off", "on"]'),
    ('roles = "../vectors/roles.toml"', 'roles = "tiny_roles.toml"'),
    ("questions = 2\n", "questions = 1\n"),
    ("max_tokens = 24\ndepth", "max_tokens = 8\ndepth"),
    ("max_tokens = 32  ", "max_tokens = 8  "),
)
TINY_ROLES = """\
description = "Three roles and the default: a coarse Assistant axis for a fast test."
questions = ["Tell me about yourself."]
[default]
prompts = ["", "You are an AI assistant."]
[[roles]]
name = "bard"
prompts = ["You are a bard who sings old legends."]
[[roles]]
name = "ghost"
prompts = ["You are a ghost haunting an old house."]
[[roles]]
name = "evaluator"
prompts = ["You are an evaluator who rates work against clear criteria."]
"""


@pytest.fixture(scope="module")
def battery_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("battery")
    shutil.copytree(ROOT / "scenarios" / "stability", root / "stability")
    (root / "stability" / "tiny_roles.toml").write_text(TINY_ROLES)
    path = root / "stability" / "battery.toml"
    text = path.read_text()
    for old, new in EDITS:
        assert old in text
        text = text.replace(old, new, 1)
    path.write_text(text)
    for spec in (root / "stability" / "vectors").glob("*.toml"):  # one extraction question
        text = spec.read_text()
        start = text.index("extraction = [") + len("extraction = [")
        first_end = text.index(",", start)
        end = text.index("]", start)
        spec.write_text(text[:first_end] + "\n" + text[end:])
    return root / "stability"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, battery_dir):
    out = tmp_path_factory.mktemp("stability") / "run"
    result = run_battery(battery_dir, out, RunOptions(design="smoke", n_threads=2), progress=False)
    return out, result


def unit_rows(table: pd.DataFrame, source: str, capping: str) -> pd.DataFrame:
    return table[(table["source"] == source) & (table["capping"] == capping)].reset_index(drop=True)


def test_a_smoke_dialogue_yields_every_measure(smoke):
    _, result = smoke
    assert set(result.tables) == {"turns", "beliefs", "self_report", "qa", "projections"}
    assert result["turns"]["unit_id"].nunique() == 2  # steered, capping off and on
    turns = unit_rows(result["turns"], "steered", "off")
    assert list(turns["turn"]) == [0, 1, 2, 3]
    assert list(turns["phase"]) == ["start", "warmup", "pressure", "pressure"]
    assert turns["prior"].iloc[0] == pytest.approx(1 / 3)  # mara, theo, default
    replies = turns["reply"].iloc[1:]
    assert all(isinstance(r, str) and r for r in replies)  # the real model answered
    assert "Mara Voss" in turns["message"].iloc[2] or "act" in turns["message"].iloc[2]
    assert turns["retention"].between(0, 1).all()
    assert np.isfinite(turns["prompt_to_line"].iloc[1:]).all()
    assert np.isnan(turns["line_to_line"].iloc[1]) and np.isfinite(turns["line_to_line"].iloc[2])
    posterior = result["beliefs"].groupby(["unit_id", "turn"])["posterior"].sum()
    np.testing.assert_allclose(posterior, 1.0)
    report = unit_rows(result["self_report"], "steered", "off")
    assert sorted(set(report["turn"])) == [0, 2, 3]
    np.testing.assert_allclose(report.groupby("turn")["probability"].sum(), 1.0)
    qa = unit_rows(result["qa"], "steered", "off")
    assert set(qa["occasion"]) == {"start", "end"} and qa["fact"].nunique() == 3


def test_steering_and_capping_change_the_replies_and_every_reply_is_projected(smoke):
    out, result = smoke
    turns = result["turns"]
    replies = {c: tuple(unit_rows(turns, "steered", c)["reply"].iloc[1:]) for c in ("off", "on")}
    assert replies["off"] != replies["on"]  # same seeds: capping wrote other text
    replied = turns[turns["turn"] > 0]
    assert np.isfinite(replied["axis_projection"]).all()
    assert np.isfinite(replied["persona_projection"]).all()  # mara's vector
    projections = result["projections"]
    assert set(projections["vector"]) == {"mara", "theo", "assistant_axis"}
    assert sorted(p.name.split("-")[0] for p in (out / "vectors").glob("*.gguf")) == [
        "assistant_axis",
        "mara",
        "theo",
    ]


def test_the_unit_is_reproducible_and_a_rerun_resumes_nothing(smoke):
    out, result = smoke
    options = RunOptions(design="smoke", n_threads=2)
    battery_dir = Path(result.manifest["battery_dir"])
    again = run_battery(battery_dir, out, options, progress=False)
    pd.testing.assert_frame_equal(again["turns"], result["turns"])
    battery = validate_battery(battery_dir)
    unit = next(
        u for u in battery.plan(options) if ".steered." in u.unit_id and "cap-on" in u.unit_id
    )
    engine = get_engine(unit.model, n_ctx=battery.n_ctx, n_threads=2)
    engine.reset()
    with engine.recomputing_quietly():
        fresh = battery.run_unit(unit, engine, out=out)  # the vectors read back from out/vectors
    turns = result["turns"]
    stored = turns[turns["unit_id"] == unit.unit_id].drop(columns=["unit_id", "model"])
    pd.testing.assert_frame_equal(fresh["turns"], stored.reset_index(drop=True))


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
    assert {
        "persona_projection",
        "axis_drift",
        "capping_drift_reduction",
        "capping_contrast",
        "capping_contrast_axis_projection",
    } <= set(summary["metric"])
    for figure in ("retention_curves", "half_life_forest", "axis_drift", "capping_effect"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 0
