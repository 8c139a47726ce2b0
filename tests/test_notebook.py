"""analysis/collapse.ipynb executes headless on reduced settings and writes its figures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "analysis" / "collapse.ipynb"
PNG = b"\x89PNG\r\n\x1a\n"

REDUCED = {
    "SIMULACRA_NB_REPLICATES": "1",
    "SIMULACRA_NB_TURNS": "2",
    "SIMULACRA_NB_BETAS": "0.05,1.0",
    "SIMULACRA_NB_MODELS": "smollm2-135m-instruct,gemma3-270m",
    "SIMULACRA_NB_MAX_TOKENS": "8",
    "SIMULACRA_NB_REGEN_SAMPLES": "2",
    "SIMULACRA_NB_WORKERS": "1",
    "SIMULACRA_NB_THREADS": "1",
}


@pytest.mark.slow
def test_collapse_notebook_executes_and_writes_its_figures(tmp_path, monkeypatch):
    for key, value in REDUCED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SIMULACRA_NB_OUT", str(tmp_path / "sweep"))
    figures = tmp_path / "figures"
    monkeypatch.setenv("SIMULACRA_NB_FIGURES", str(figures))
    monkeypatch.setenv("MPLBACKEND", "Agg")
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
        "entropy_curves_by_model.png",
        "half_life_by_model.png",
        "posterior_heatmaps.png",
        "commitment_vs_entropy_by_model.png",
        "report/entropy_curves.png",
        "report/half_life_distribution.png",
        "report/commitment_vs_entropy.png",
    ):
        path = figures / name
        assert path.is_file(), name
        assert path.read_bytes()[:8] == PNG
    summary = pd.read_csv(figures / "report" / "summary.csv")
    assert set(summary["model.name"]) == {"smollm2-135m-instruct", "gemma3-270m"}
    assert set(summary["belief.beta"]) == {0.05, 1.0}
    runs = pd.read_parquet(tmp_path / "sweep" / "runs.parquet")
    assert len(runs) == 4 and (runs["status"] == "done").all()
