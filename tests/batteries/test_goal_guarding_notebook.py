"""analysis/goal_guarding.ipynb executes headless on reduced settings and writes its figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "analysis" / "goal_guarding.ipynb"
BATTERY = ROOT / "scenarios" / "goal_guarding"
PNG = b"\x89PNG\r\n\x1a\n"

TINY = """
[designs.tiny]
tasks = ["tampering"]
templates = 2
subjects = ["self", "peer"]
peers = ["none", "good"]
channels = ["dialogue"]
monitoring = ["unmonitored"]
controls = ["positive", "negative", "length"]
seeds = 1
draws = 5
"""


@pytest.mark.slow
def test_goal_guarding_notebook_executes_on_both_models(tmp_path, execute_notebook):
    battery = tmp_path / "goal_guarding"
    shutil.copytree(BATTERY, battery)
    (tmp_path / "vectors").mkdir()  # [controls.steer] spec = "../vectors/guarding.toml"
    shutil.copy(BATTERY.parent / "vectors" / "guarding.toml", tmp_path / "vectors")
    toml = battery / "battery.toml"
    text = (
        toml.read_text()
        .replace("turns = 4 ", "turns = 2 ")
        .replace("max_tokens = 40", "max_tokens = 10")
    )
    toml.write_text(text + TINY)
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
        "rates_by_peer.png",
        "controls_beside_effects.png",
        "par_forest.png",
        "position_bias.png",
        "guarding_mass.png",
        "report/summary.csv",
        "report/rates_by_peer.png",
    ):
        path = figures / name
        assert path.is_file(), name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == PNG
    summary = pd.read_csv(figures / "report" / "summary.csv")
    assert set(summary["model"]) == {"smollm2-135m-instruct", "gemma3-270m"}
    decisions = pd.read_parquet(tmp_path / "run" / "decisions.parquet")
    assert len(decisions) == 2 * (4 * 2 + 3 * 2)
