"""Results do not depend on how they are executed; validation catches what a run would.

One tiny scenario, its thread count left unset: two fixed-persona agents whose flat
priors tie, a map-mode probe before and after two short turns. It is swept over two
values of β × one replicate with paired seeds, in this process, on two local worker
processes and on a Dask LocalCluster; the three give identical tables.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from simulacra.cli import main
from simulacra.errors import ScenarioError, SimulacraWarning, SweepError
from simulacra.llm.engine import default_threads
from simulacra.llm.models import REGISTRY
from simulacra.scenario import load_scenario
from simulacra.simulation.model import DialogueModel
from simulacra.simulation.runner import get_engine, run
from simulacra.sweep import load_sweep, plan_runs, sweep

SCENARIO = """
seed = 4

[model]
name = "smollm2-135m-instruct"
n_ctx = 1024

[[simulacra]]
name = "pirate"
description = "You are a pirate."

[[simulacra]]
name = "sage"
description = "You are a wise sage."

[[simulacra]]
name = "baker"
description = "You are a cheerful baker."

[[agents]]
name = "ann"
persona = "fixed"
assigned = "pirate"

[[agents]]
name = "bob"
persona = "fixed"
assigned = "baker"
prior = { sage = 1, baker = 1 }

[dialogue]
opening = "Hello."
turns = 2
max_tokens = 6

[[probes]]
name = "kind"
question = "Are you kind?"
options = ["yes", "no"]
turns = [0, 2]
persona = "map"
"""
GRID = {"belief.beta": [0.05, 1.0]}
COMPARED = ("transcript", "beliefs", "agents", "probes")


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("repro") / "threads.toml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def in_process(scenario_file) -> Path:
    out = scenario_file.parent / "one"
    runs = sweep(scenario_file, GRID, out=out, paired=True, progress=False)
    assert (runs["status"] == "done").all(), runs["error"].tolist()
    return out


def same_tables(left: Path, right: Path) -> None:
    a, b = load_sweep(left), load_sweep(right)
    for name in COMPARED:
        pd.testing.assert_frame_equal(a.tables()[name], b.tables()[name], obj=name)
    ignore = ["wall_s"]
    pd.testing.assert_frame_equal(a.runs.drop(columns=ignore), b.runs.drop(columns=ignore))


def test_runs_record_what_changes_their_numbers(in_process):
    runs = load_sweep(in_process).runs
    assert (runs["n_threads"] == default_threads()).all()
    assert (runs["n_ctx"] == 1024).all() and (runs["n_gpu_layers"] == 0).all()
    assert (runs["model_sha256"] == REGISTRY["smollm2-135m-instruct"].sha256).all()
    definition = json.loads((in_process / "sweep.json").read_text())
    assert definition["n_threads"] == default_threads() and definition["paired"] is True
    manifest = json.loads(next((in_process / "runs").glob("*/manifest.json")).read_text())
    assert manifest["model"]["n_threads"] == default_threads()
    assert manifest["model"]["n_gpu_layers"] == 0 and manifest["model"]["n_ctx"] == 1024


def test_workers_and_dask_give_identical_tables(scenario_file, in_process, tmp_path):
    pytest.importorskip("dask.distributed")
    with pytest.warns(SimulacraWarning, match="model.n_threads"):
        sweep(scenario_file, GRID, out=tmp_path / "two", paired=True, workers=2, progress=False)
    same_tables(in_process, tmp_path / "two")
    sweep(scenario_file, GRID, out=tmp_path / "dask", paired=True, executor="dask", progress=False)
    same_tables(in_process, tmp_path / "dask")


def test_paired_replicates_share_their_random_streams(in_process):
    tables = load_sweep(in_process)
    assert tables.runs["seed"].nunique() == 1
    text = tables.transcript.pivot_table(
        index="turn", columns="belief.beta", values="text", aggfunc="first"
    )
    assert (text[0.05] == text[1.0]).all()  # fixed personas: beta changes only the beliefs
    beliefs = tables.beliefs[tables.beliefs["turn"] == 2]
    assert beliefs.groupby("belief.beta")["posterior"].apply(tuple).nunique() == 2
    unpaired = plan_runs(GRID, 2, seed=4)
    paired = plan_runs(GRID, 2, seed=4, paired=True)
    assert len({spec.seed for spec in unpaired}) == 4
    assert [spec.seed for spec in paired[:2]] == [spec.seed for spec in paired[2:]]


def test_the_tie_broken_map_persona_starts_and_answers(in_process):
    tables = load_sweep(in_process)
    agents = tables.agents.set_index(["run_id", "agent"])
    at_zero = tables.probes[tables.probes["turn"] == 0]
    for (run_id, agent), rows in at_zero.groupby(["run_id", "agent"]):
        assert set(rows["simulacrum"]) == {agents.loc[(run_id, agent), "map_start"]}


def test_ties_are_drawn_from_the_run_seed_not_list_order(scenario_file, engine):
    later = {"probes[0].turns": [2]}  # no probe at turn 0: building a model costs nothing
    starts = [
        DialogueModel(scenario_file, seed=seed, engine=engine, overrides=later).map_start
        for seed in range(12)
    ]
    again = DialogueModel(scenario_file, seed=5, engine=engine, overrides=later).map_start
    assert again == starts[5]
    assert len({start["ann"] for start in starts}) >= 2  # not always the first listed
    assert {start["bob"] for start in starts} == {"sage", "baker"}


def test_resume_refuses_runs_computed_with_other_numerics(scenario_file, in_process, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(in_process, out)
    manifest_path = next((out / "runs").glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["n_threads"] = default_threads() + 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SweepError, match=r"n_threads = \d+.*--set model.n_threads="):
        sweep(scenario_file, GRID, out=out, paired=True, progress=False)
    definition = json.loads((out / "sweep.json").read_text())
    definition["models"] = {"smollm2-135m-instruct": "0" * 64}
    (out / "sweep.json").write_text(json.dumps(definition))
    with pytest.raises(SweepError, match="sha256 was 0000"):
        sweep(scenario_file, GRID, out=out, paired=True, progress=False)
    with pytest.raises(SweepError, match="paired"):
        sweep(scenario_file, GRID, out=in_process, progress=False)


# --------------------------------------------------------------------------- validation


def write(path: Path, model: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCENARIO.replace('name = "smollm2-135m-instruct"', model))
    return path


def test_validate_rejects_an_unknown_model_name(tmp_path, capsys):
    path = write(tmp_path / "s.toml", 'name = "smollm2"')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: model.name: unknown model 'smollm2'" in err
    assert "did you mean 'smollm2-135m-instruct'?" in err
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "did you mean" in capsys.readouterr().err and not (tmp_path / "r").exists()
    with pytest.raises(ScenarioError, match="did you mean"):
        sweep(path, GRID, out=tmp_path / "sweep", progress=False)
    assert not (tmp_path / "sweep").exists()


def test_a_relative_model_path_is_read_from_the_scenario_directory(tmp_path, capsys):
    path = write(tmp_path / "sub" / "s.toml", 'path = "models/small.gguf"')
    expected = tmp_path / "sub" / "models" / "small.gguf"
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"model.path: model file not found: {expected}" in err
    assert "scenario file's directory" in err
    expected.parent.mkdir()
    os.symlink(REGISTRY["smollm2-135m-instruct"].locate(), expected)
    assert main(["validate", str(path)]) == 0
    assert load_scenario(path).model.path == str(expected)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)  # restored by the autouse fixture below
    assert load_scenario(path).model.path == str(expected)


@pytest.fixture(autouse=True)
def _keep_cwd():
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def test_set_model_path_replaces_the_model_name(scenario_file, tmp_path):
    gguf = REGISTRY["smollm2-135m-instruct"].locate()
    scenario = load_scenario(scenario_file, [f"model.path={gguf}"])
    assert scenario.model.name is None and scenario.model.path == str(gguf)
    os.chdir(gguf.parent)
    relative = load_scenario(scenario_file, [f"model.path={gguf.name}"])
    assert relative.model.path == str(gguf)  # a --set path is relative to the working dir
    with pytest.raises(ScenarioError, match=r"either model\.name or model\.path"):
        load_scenario(scenario_file, [f"model.path={gguf}", "model.name=gemma3-270m"])


def test_n_gpu_layers_reaches_the_engine_and_the_manifest(scenario_file):
    assert load_scenario(scenario_file).model.n_gpu_layers == 0
    overrides = ["model.n_gpu_layers=-1", "dialogue.turns=1", "probes[0].turns=[0]"]
    scenario = load_scenario(scenario_file, overrides)
    assert scenario.model.n_gpu_layers == -1
    result = run(scenario)
    assert result.manifest["model"]["n_gpu_layers"] == -1
    assert get_engine(scenario.model).n_gpu_layers == -1
    with pytest.raises(ScenarioError, match="must be >= -1"):
        load_scenario(scenario_file, ["model.n_gpu_layers=-2"])
