"""analysis/collapse.ipynb executes headless on reduced settings and writes its figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

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
def test_collapse_notebook_executes_and_writes_its_figures(tmp_path, execute_notebook):
    figures = tmp_path / "figures"
    env = {"SIMULACRA_NB_OUT": str(tmp_path / "sweep"), "SIMULACRA_NB_FIGURES": str(figures)}
    execute_notebook(NOTEBOOK, {**REDUCED, **env})
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
