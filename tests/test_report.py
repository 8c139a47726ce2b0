"""``simulacra report``: figures and summary.csv for run and sweep directories."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulacra.cli import main
from simulacra.errors import SimulacraError
from simulacra.report import ReportData, heatmap_run, load_report_data, write_report
from simulacra.simulation.results import RunResult
from simulacra.sweep import load_sweep, sweep

PNG = b"\x89PNG\r\n\x1a\n"

SCENARIO = (
    (Path(__file__).parent / "scenarios" / "regen.toml").read_text()
    + """
[regeneration]
turns = [2]
samples = 2

[[probes]]
name = "share"
question = "Would you share your lunch with a stranger?"
options = ["yes", "no"]
turns = [0, 2]
persona = "map"
"""
)


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    scenario = root / "tiny.toml"
    scenario.write_text(SCENARIO)
    out = root / "sweep"
    runs = sweep(scenario, grid={"belief.beta": [0.05, 1.0]}, replicates=1, out=out, progress=False)
    assert (runs["status"] == "done").all()
    return out


def test_report_of_a_sweep_from_the_command_line(sweep_dir, tmp_path, capsys):
    figs = tmp_path / "figs"
    assert main(["report", str(sweep_dir), "--out", str(figs)]) == 0
    captured = capsys.readouterr()
    printed = [Path(line) for line in captured.out.split()]
    first_run = load_sweep(sweep_dir).runs["run_id"].iloc[0]
    assert f"posterior_heatmap.png shows run {first_run}" in captured.err
    assert "--run RUN_ID" in captured.err
    expected = {
        "entropy_curves_guest.png",
        "entropy_curves_host.png",
        "posterior_heatmap.png",
        "half_life_distribution.png",
        "probe_share.png",
        "commitment_vs_entropy.png",
        "probes.csv",
        "regeneration.csv",
        "summary.csv",
    }
    assert {p.name for p in printed} == expected
    assert all(p.parent == figs and p.is_file() for p in printed)
    assert all(is_png(p) for p in printed if p.suffix == ".png")

    summary = pd.read_csv(figs / "summary.csv")
    assert list(summary[["belief.beta", "agent"]].itertuples(index=False, name=None)) == [
        (0.05, "guest"),
        (0.05, "host"),
        (1.0, "guest"),
        (1.0, "host"),
    ]
    for column in ("half_life_median", "half_life_low", "half_life_high", "share_censored"):
        assert column in summary.columns
    assert summary["n"].eq(1).all()
    assert summary["n_runs"].eq(1).all() and summary["few_runs"].all()
    for turn in (0, 2):
        for stat in ("mean", "low", "high"):
            assert summary[f"probe.share.yes.turn{turn}.{stat}"].between(0, 1).all()
    assert not any(".no." in column for column in summary.columns)  # the complement
    probes = pd.read_csv(figs / "probes.csv")
    assert set(probes["option"]) == {"yes", "no"} and set(probes["turn"]) == {0, 2}
    assert probes["n"].eq(1).all()
    assert summary["final_entropy_mean"].between(0, 1).all()
    assert summary["commitment_mean"].between(0, 1).all()
    regen = pd.read_csv(figs / "regeneration.csv")
    assert len(regen) == 4  # 2 runs x 2 agents at turn 2
    assert set(regen.columns) >= {"belief.beta", "replicate", "commitment", "belief_entropy"}


def test_report_heatmap_of_a_chosen_run(sweep_dir, tmp_path, capsys):
    data = load_report_data(sweep_dir)
    last = data.run_ids[-1]
    assert heatmap_run(data) == data.run_ids[0]
    assert heatmap_run(data, last) == last
    figs = tmp_path / "figs"
    assert main(["report", str(sweep_dir), "--out", str(figs), "--run", last]) == 0
    err = capsys.readouterr().err
    assert f"shows run {last}" in err and "--run RUN_ID" not in err
    assert is_png(figs / "posterior_heatmap.png")
    assert main(["report", str(sweep_dir), "--out", str(figs), "--run", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--run nope: no completed run with that id" in err and data.run_ids[0] in err


def test_sweep_regeneration_table_carries_the_grid(sweep_dir):
    data = load_report_data(sweep_dir)
    assert data.kind == "sweep" and data.grid_keys == ["belief.beta"]
    table = data.regeneration
    assert len(table) == 2 * 2 * 2  # runs x agents x samples
    runs = load_sweep(sweep_dir).runs
    beta_of = dict(zip(runs["run_id"], runs["belief.beta"], strict=True))
    assert (table["run_id"].map(beta_of) == table["belief.beta"]).all()


def test_report_of_a_run_directory(sweep_dir, tmp_path):
    run_dir = next((sweep_dir / "runs").iterdir())
    written = write_report(run_dir, tmp_path / "figs")
    names = [p.name for p in written]
    assert names == [
        "entropy_curves.png",
        "posterior_heatmap.png",
        "half_life_distribution.png",
        "probe_share.png",
        "commitment_vs_entropy.png",
        "probes.csv",
        "regeneration.csv",
        "summary.csv",
    ]
    summary = pd.read_csv(tmp_path / "figs" / "summary.csv")
    assert list(summary["agent"]) == ["guest", "host"]


def synthetic_run(run_id: str, decay: float) -> RunResult:
    rows = []
    for turn in range(5):
        peaked = np.array([1.0, decay**turn, decay**turn])
        for name, p in zip(("a", "b", "c"), peaked / peaked.sum(), strict=True):
            rows.append((run_id, turn, "solo", name, math.nan if turn == 0 else -1.0, p))
    beliefs = pd.DataFrame(
        rows, columns=["run_id", "turn", "agent", "simulacrum", "loglik", "posterior"]
    )
    agents = pd.DataFrame(
        {"run_id": [run_id], "agent": ["solo"], "persona_mode": ["sample"], "assigned": [None]}
    )
    transcript = pd.DataFrame(
        {
            "run_id": [run_id],
            "turn": [0],
            "speaker": ["Narrator"],
            "simulacrum": [None],
            "text": ["hi"],
            "n_tokens": [1],
        }
    )
    manifest = {"run_id": run_id, "seed": 0}
    return RunResult(run_id, manifest, transcript, beliefs, agents)


def test_report_without_regeneration_and_single_agent(tmp_path):
    run_dir = synthetic_run("slow", 0.5).save(tmp_path / "run")
    written = write_report(run_dir, tmp_path / "figs")
    assert [p.name for p in written] == [
        "entropy_curves.png",
        "posterior_heatmap.png",
        "half_life_distribution.png",
        "summary.csv",
    ]
    summary = pd.read_csv(tmp_path / "figs" / "summary.csv")
    assert summary.loc[0, "half_life_median"] == 4.0  # H_4 = 0.43 <= log(3) / 2 < H_3 = 0.64
    assert "commitment_mean" not in summary.columns


def test_report_rejects_other_directories(tmp_path, capsys):
    with pytest.raises(SimulacraError, match="neither a run directory"):
        write_report(tmp_path, tmp_path / "figs")
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "figs")]) != 0
    assert "neither a run directory" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "x"}))
    with pytest.raises(SimulacraError):
        write_report(tmp_path, tmp_path / "figs")


def test_report_skips_probes_of_other_kinds(tmp_path):
    run = synthetic_run("slow", 0.5)
    run.probes = pd.DataFrame(
        {
            "run_id": ["slow"] * 3,
            "turn": [0, 0, 4],
            "agent": ["solo"] * 3,
            "probe": ["mood", "mood", "distance"],
            "kind": ["likert", "likert", "numeric"],
            "option": ["1", "2", None],
            "probability": [0.4, 0.6, np.nan],
            "expected": [1.6, 1.6, np.nan],
            "value": [2.0, 2.0, 2700.0],
        }
    )
    written = write_report(run.save(tmp_path / "run"), tmp_path / "figs")
    assert not any(p.name.startswith("probe") for p in written)
    summary = pd.read_csv(tmp_path / "figs" / "summary.csv")
    assert not any(column.startswith("probe.") for column in summary.columns)


def test_report_of_a_paired_sweep_writes_paired_differences(tmp_path):
    parts, agents = [], []
    for beta, decay in ((1.0, 0.3), (0.2, 0.6)):
        for replicate in range(3):
            run = synthetic_run(f"b{beta}-r{replicate}", decay + 0.05 * replicate)
            parts.append(run.beliefs.assign(**{"belief.beta": beta, "replicate": replicate}))
            agents.append(run.agents)
    beliefs = pd.concat(parts, ignore_index=True)
    data = ReportData(
        "sweep", beliefs, pd.concat(agents), pd.DataFrame(), ["belief.beta"], paired=True
    )
    written = write_report(data, tmp_path / "figs")
    assert "paired_differences.csv" in [p.name for p in written]
    table = pd.read_csv(tmp_path / "figs" / "paired_differences.csv")
    assert table[["key", "belief.beta", "agent", "baseline", "n_pairs"]].values.tolist() == [
        ["belief.beta", 0.2, "solo", 1.0, 3]
    ]
    assert table.loc[0, "difference"] > 0  # slower decay: more entropy left at the end
    unpaired = ReportData("sweep", beliefs, pd.concat(agents), pd.DataFrame(), ["belief.beta"])
    written = write_report(unpaired, tmp_path / "unpaired")
    assert "paired_differences.csv" not in [p.name for p in written]
