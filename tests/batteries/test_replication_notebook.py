"""analysis/replication.ipynb executes headless on reduced settings and writes its report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "analysis" / "replication.ipynb"
PNG = b"\x89PNG\r\n\x1a\n"

REDUCED = {
    "SIMULACRA_NB_MODELS": "smollm2-135m-instruct,gemma3-270m",
    "SIMULACRA_NB_PARTICIPANTS": "4",
    "SIMULACRA_NB_PARTICIPANTS_GEMMA": "4",
    "SIMULACRA_NB_PARTICIPANTS_EXPECTED": "4",
    "SIMULACRA_NB_EFFECTS": "allowed_forbidden,anchoring_everest",
    "SIMULACRA_NB_RUNS": "2",
    "SIMULACRA_NB_REASK": "2",
    "SIMULACRA_NB_EXPECTED": "1",
    "SIMULACRA_NB_THREADS": "2",
}


@pytest.mark.slow
def test_replication_notebook_executes_on_both_models(tmp_path, execute_notebook):
    figures = tmp_path / "figures"
    env = {"SIMULACRA_NB_OUT": str(tmp_path / "runs"), "SIMULACRA_NB_FIGURES": str(figures)}
    execute_notebook(NOTEBOOK, {**REDUCED, **env})
    overall = pd.read_csv(figures / "overall_all.csv")
    assert len(overall) == 5  # 2 models x {personas, bare} + expected mode
    for name in (
        "effects_vs_ml1_sampled.png",
        "effects_vs_ml1_expected.png",
        "personas_vs_bare.png",
    ):
        assert (figures / name).read_bytes()[:8] == PNG, name
    # the variance figure is drawn when some effect has a ratio, and only then (no empty figure)
    ratios = pd.concat(pd.read_csv(p) for p in figures.glob("*-sampled/summary.csv"))
    drawn = (figures / "variance_ratio_all.png").exists()
    assert drawn == bool(ratios["run_persona_ratio"].notna().any())
    summary = pd.read_csv(figures / "gemma3-270m-bare-sampled" / "summary.csv")
    assert set(summary["effect"]) == {"allowed_forbidden", "anchoring_everest"}
