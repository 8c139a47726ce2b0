"""analysis/stability.ipynb executes headless on a tiny design and writes its figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "analysis" / "stability.ipynb"
BATTERY = ROOT / "scenarios" / "stability"
PNG = b"\x89PNG\r\n\x1a\n"

TINY = """
[designs.tiny]
sources = ["prompted", "none"]
personas = ["mara"]
pressures = ["drop_the_act"]
paraphrases = 1
seeds = 1
turns = 2
warmup = 1
probe_every = 2
max_tokens = 6
projections = false
"""


@pytest.mark.slow
def test_stability_notebook_executes_on_both_models(tmp_path, execute_notebook):
    battery = tmp_path / "stability"
    shutil.copytree(BATTERY, battery)
    (tmp_path / "vectors").mkdir()  # the role set of [axis] is ../vectors/roles.toml
    shutil.copy(ROOT / "scenarios" / "vectors" / "roles.toml", tmp_path / "vectors")
    with (battery / "battery.toml").open("a") as file:
        file.write(TINY)
    figures = tmp_path / "figures"
    env = {
        "SIMULACRA_NB_BATTERY": str(battery),
        "SIMULACRA_NB_DESIGN": "tiny",
        "SIMULACRA_NB_MODELS": "smollm2-135m-instruct,gemma3-270m",
        "SIMULACRA_NB_THREADS": "2",
        "SIMULACRA_NB_OUT": str(tmp_path / "run"),
        "SIMULACRA_NB_FIGURES": str(figures),
    }
    execute_notebook(NOTEBOOK, env)
    for name in (
        "retention_curves.png",
        "half_life_forest.png",
        "report/summary.csv",
        "report/retention_curves.png",
        "report/half_life_forest.png",
    ):
        path = figures / name
        assert path.is_file(), name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == PNG
    summary = pd.read_csv(figures / "report" / "summary.csv")
    assert set(summary["model"]) >= {"smollm2-135m-instruct", "gemma3-270m"}
    assert {"retention", "half_life", "source_contrast", "model_contrast"} <= set(summary["metric"])
    turns = pd.read_parquet(tmp_path / "run" / "turns.parquet")
    assert len(turns) == 2 * 2 * 3  # models x sources x (turn 0 + 2 turns)
