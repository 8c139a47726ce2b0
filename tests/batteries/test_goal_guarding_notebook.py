"""analysis/goal_guarding.ipynb executes headless on reduced settings and writes its figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

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
def test_goal_guarding_notebook_executes_on_both_models(tmp_path, monkeypatch):
    battery = tmp_path / "goal_guarding"
    shutil.copytree(BATTERY, battery)
    toml = battery / "battery.toml"
    text = (
        toml.read_text()
        .replace("turns = 4 ", "turns = 2 ")
        .replace("max_tokens = 40", "max_tokens = 10")
    )
    toml.write_text(text + TINY)
    figures = tmp_path / "figures"
    for key, value in {
        "SIMULACRA_NB_BATTERY": str(battery),
        "SIMULACRA_NB_DESIGN": "tiny",
        "SIMULACRA_NB_MODELS": "smollm2-135m-instruct,gemma3-270m",
        "SIMULACRA_NB_THREADS": "2",
        "SIMULACRA_NB_OUT": str(tmp_path / "run"),
        "SIMULACRA_NB_FIGURES": str(figures),
        "MPLBACKEND": "Agg",
    }.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
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
