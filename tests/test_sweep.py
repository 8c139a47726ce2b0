"""Sweeps: grid expansion, ids and seeds, validation, resume, failures, executors, kill -9.

The model tests share one 2×2 grid × 2 replicates sweep of ``tests/scenarios/tiny.toml``
(one turn of 8 tokens, single-threaded), run once in this process; the others copy it
and check that resuming, redoing or running elsewhere gives the same tables.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simulacra
from simulacra import cli
from simulacra.errors import ScenarioError, SweepError
from simulacra.simulation import runner
from simulacra.sweep import (
    derive_seed,
    expand_grid,
    load_sweep,
    make_run_id,
    parse_grid,
    plan_runs,
    sweep,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "scenarios" / "tiny.toml"
GRID = {"belief.beta": [0.5, 1.0], "belief.observe": ["self", "all"]}
CLI_GRID = ["--grid", "belief.beta=0.5,1.0", "--grid", "belief.observe=self,all"]
SEED = 11
REPLICATES = 2
N_RUNS = 8
TABLE_ROWS = {  # per run: 2 agents, 3 simulacra, 1 turn, one 2-option probe after turn 1
    "transcript": 2,
    "beliefs": 2 * 3 * 2,
    "agents": 2,
    "probes": 2 * 2,
}
SAFE = re.compile(r"[A-Za-z0-9._+=-]+")


def assert_same_tables(left, right, *, replicates=None):
    """Every table equal, except the runs' wall times; ``right`` cut to ``replicates``."""
    for name, table in left.tables().items():
        other = right.tables()[name]
        if replicates is not None:
            other = other[other["replicate"] < replicates].reset_index(drop=True)
        if name == "runs":
            table, other = table.drop(columns="wall_s"), other.drop(columns="wall_s")
        pd.testing.assert_frame_equal(table, other, obj=name)


@pytest.fixture
def count_runs(monkeypatch):
    """Count the runs actually executed (in this process)."""
    calls: list[str] = []
    real = runner.run

    def counted(*args, **kwargs):
        calls.append(kwargs["run_id"])
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run", counted)
    return calls


# --------------------------------------------------------------------------- pure parts


def test_parse_grid_splits_values_outside_brackets():
    grid = parse_grid(
        ["belief.beta=0.5, 1,2.0", "belief.observe=self,all", "probes[0].turns=[0,1],[1]"]
    )
    assert grid == {
        "belief.beta": [0.5, 1, 2.0],
        "belief.observe": ["self", "all"],
        "probes[0].turns": [[0, 1], [1]],
    }
    assert isinstance(grid["belief.beta"][1], int)
    assert parse_grid(['dialogue.opening="a, b",c']) == {"dialogue.opening": ["a, b", "c"]}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["belief.beta"], "malformed grid"),
        (["=1,2"], "malformed grid"),
        (["belief.beta=1,,2"], "empty value"),
        (["belief.beta=1", "belief.beta=2"], "given twice"),
    ],
)
def test_parse_grid_errors(items, message):
    with pytest.raises(ScenarioError, match=message) as info:
        parse_grid(items)
    assert info.value.issues[0].source == "--grid"


def test_expand_grid_is_the_cartesian_product_in_order():
    points = expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(points) == 6
    assert points[0] == {"a": 1, "b": "x"} and points[1] == {"a": 1, "b": "y"}
    assert points[-1] == {"a": 2, "b": "z"}
    assert expand_grid({}) == [{}]


def test_run_ids_are_stable_readable_unique_and_safe():
    run_id = make_run_id({"belief.beta": 0.5}, 0)
    assert run_id.startswith("beta=0.5_rep0-") and len(run_id.split("-")[-1]) == 8
    assert run_id == make_run_id({"belief.beta": 0.5}, 0)
    params = {"belief.beta": 0.5, "dialogue.opening": "a/b c"}
    assert make_run_id(params, 0) == make_run_id(dict(reversed(params.items())), 0)
    weird = [
        {"dialogue.opening": "../../etc/passwd"},
        {"dialogue.opening": "x" * 500},
        {"dialogue.opening": ".hidden"},
        {"probes[0].turns": [0, 1]},
        {"dialogue.opening": "ünïcode ✓ \n tab\t"},
    ]
    ids = [make_run_id(p, r) for p in weird for r in range(3)]
    assert len(set(ids)) == len(ids)
    for run_id in ids:
        assert SAFE.fullmatch(run_id), run_id
        assert not run_id.startswith(".") and len(run_id) <= 100
    assert make_run_id({"belief.beta": 1}, 0) != make_run_id({"belief.beta": 1.0}, 0)


def test_seeds_depend_only_on_the_sweep_seed_params_and_replicate():
    small = {spec.run_id: spec.seed for spec in plan_runs({"belief.beta": [0.5, 1]}, 2, seed=3)}
    large = {spec.run_id: spec.seed for spec in plan_runs({"belief.beta": [0.25, 0.5, 1, 2]}, 5, 3)}
    assert all(large[run_id] == seed for run_id, seed in small.items())
    assert len(set(large.values())) == len(large)
    assert derive_seed(3, {"belief.beta": 0.5}, 0) != derive_seed(4, {"belief.beta": 0.5}, 0)
    assert all(0 <= seed < 2**32 for seed in large.values())


def test_plan_is_grid_times_replicates():
    specs = plan_runs(GRID, 3, seed=0)
    assert len(specs) == 12
    assert [s.replicate for s in specs[:3]] == [0, 1, 2]
    assert specs[0].params == {"belief.beta": 0.5, "belief.observe": "self"}


# --------------------------------------------------------------------------- validation


def test_invalid_grid_values_are_reported_before_anything_starts(tmp_path, capsys):
    out = tmp_path / "sweep"
    status = cli.main(
        [
            "sweep",
            str(TINY),
            "--grid",
            "belief.beta=-1,1",
            "--grid",
            "dialogue.turns=1,3",
            "--set",
            "probes[0].turns=[1,2]",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "belief.beta: must be >= 0, got -1 (with --grid belief.beta=-1)" in err
    assert "turn 2 is outside [0, 1]" in err and "--grid dialogue.turns=1" in err
    assert err.count("belief.beta: must be") == 1  # once, not once per grid point
    assert all(line.startswith(("error: ", "found ")) for line in err.splitlines())
    assert not out.exists()


@pytest.mark.parametrize(
    ("grid", "overrides", "message"),
    [
        ({"nope.x": [1]}, None, "unknown key 'nope'"),
        ({"belief.beta": [1, 1]}, None, "repeated value"),
        ({"seed": [1, 2]}, None, "cannot be swept"),
        ({"belief.beta": [1, 2]}, ["belief.beta=3"], "also given with --set"),
        ({"belief.beta": []}, None, "at least one value"),
        ({"belief.beta": 0.5}, None, "expected a list"),
    ],
)
def test_bad_grids_are_refused(tmp_path, grid, overrides, message):
    with pytest.raises(ScenarioError, match=message):
        sweep(TINY, grid, out=tmp_path / "s", overrides=overrides, progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicates": 0}, "replicates"),
        ({"workers": 0}, "workers"),
        ({"executor": "mpi"}, "unknown executor"),
        ({"address": "tcp://x:1"}, "--address needs --executor dask"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_are_refused(tmp_path, kwargs, message):
    with pytest.raises(SweepError, match=message):
        sweep(TINY, GRID, out=tmp_path / "s", progress=False, **kwargs)


def test_missing_dask_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(SweepError, match=r"simulacra\[dask\]"):
        sweep(TINY, GRID, out=tmp_path / "s", executor="dask", progress=False)


def test_a_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="not a sweep directory"):
        sweep(TINY, GRID, out=tmp_path, progress=False)


# --------------------------------------------------------------------------- on the model


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The reference sweep: 2×2 grid × 2 replicates, in this process."""
    out = tmp_path_factory.mktemp("base") / "sweep"
    runs = sweep(TINY, GRID, replicates=REPLICATES, out=out, seed=SEED, progress=False)
    assert (runs["status"] == "done").all(), runs["error"].tolist()
    return out


def copy_of(base: Path, tmp_path: Path) -> Path:
    target = tmp_path / "sweep"
    shutil.copytree(base, target)
    return target


def test_tables_have_the_expected_rows_and_columns(base):
    result = load_sweep(base)
    keys = ["belief.beta", "belief.observe"]
    runs = result.runs
    assert list(runs.columns) == [
        "run_id",
        *keys,
        "replicate",
        "seed",
        "status",
        "error",
        "wall_s",
        "tokens",
        "n_threads",
        "n_ctx",
        "n_gpu_layers",
        "model_sha256",
    ]
    assert len(runs) == N_RUNS and runs["run_id"].is_unique
    assert (runs["status"] == "done").all() and runs["error"].isna().all()
    assert (runs["wall_s"] > 0).all() and (runs["tokens"] > 0).all()
    assert runs.groupby(keys).size().eq(REPLICATES).all()
    assert runs["belief.beta"].dtype == np.float64 and runs["replicate"].dtype == np.int64
    # deterministic order: by grid values (numbers numerically, then text), replicate
    order = runs.sort_values([*keys, "replicate"], kind="stable")
    pd.testing.assert_frame_equal(runs, order.reset_index(drop=True))
    for name, per_run in TABLE_ROWS.items():
        table = result.tables()[name]
        assert list(table.columns[:4]) == ["run_id", *keys, "replicate"], name
        assert len(table) == N_RUNS * per_run, name
        assert table.groupby("run_id").size().eq(per_run).all(), name
        merged = table.merge(runs[["run_id", *keys, "replicate"]], on="run_id")
        for key in [*keys, "replicate"]:
            assert (merged[f"{key}_x"] == merged[f"{key}_y"]).all()
    assert sorted(p.name for p in (base / "runs").iterdir()) == sorted(runs["run_id"])
    for run_id, seed in zip(runs["run_id"], runs["seed"], strict=True):
        assert simulacra.load_run(base / "runs" / run_id).seed == seed
    definition = json.loads((base / "sweep.json").read_text())
    assert definition["grid"] == GRID and definition["replicates"] == REPLICATES
    assert definition["seed"] == SEED and "pandas" in definition["versions"]
    assert definition["scenario"]["dialogue"]["max_tokens"] == 8


def test_rerun_does_nothing(base, tmp_path, count_runs):
    out = copy_of(base, tmp_path)
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    runs = sweep(TINY, GRID, replicates=REPLICATES, out=out, seed=SEED, progress=False)
    assert count_runs == []
    assert (runs["status"] == "done").all()
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == stamps
    assert_same_tables(load_sweep(out), load_sweep(base))


def test_missing_and_partial_runs_are_redone_identically(base, tmp_path, count_runs):
    out = copy_of(base, tmp_path)
    runs = load_sweep(base).runs
    deleted, partial = runs["run_id"].iloc[2], runs["run_id"].iloc[5]
    shutil.rmtree(out / "runs" / deleted)
    (out / "runs" / partial / "manifest.json").unlink()  # as if killed mid-write
    (out / "runs" / f".{deleted}.tmp123").mkdir()  # a temporary directory left by kill -9
    (out / "runs.parquet").unlink()
    runs_again = sweep(TINY, GRID, replicates=REPLICATES, out=out, seed=SEED, progress=False)
    assert sorted(count_runs) == sorted([deleted, partial])
    assert (runs_again["status"] == "done").all()
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(runs["run_id"])
    assert_same_tables(load_sweep(out), load_sweep(base))


def test_a_failing_run_is_recorded_and_retried(base, tmp_path, monkeypatch, capsys):
    out = copy_of(base, tmp_path)
    runs = load_sweep(base).runs
    broken, other = runs["run_id"].iloc[1], runs["run_id"].iloc[6]
    for run_id in (broken, other):
        shutil.rmtree(out / "runs" / run_id)
    real = runner.run

    def flaky(*args, **kwargs):
        if kwargs["run_id"] == broken:
            raise RuntimeError("the engine caught fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run", flaky)
    argv = ["sweep", str(TINY), *CLI_GRID, "--replicates", "2", "--seed", str(SEED)]
    status = cli.main([*argv, "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    assert "8 runs, 7 done, 1 failed" in captured.out
    assert "done 7  failed 1  remaining 0" in captured.err
    assert f"{broken}: RuntimeError: the engine caught fire" in captured.err
    result = load_sweep(out)
    row = result.runs.set_index("run_id").loc[broken]
    assert row["status"] == "failed" and "RuntimeError: the engine caught fire" in row["error"]
    assert pd.isna(row["tokens"])
    assert (result.runs.set_index("run_id").drop(index=broken)["status"] == "done").all()
    assert broken not in set(result.transcript["run_id"])
    assert len(result.transcript) == 7 * TABLE_ROWS["transcript"]
    assert not (out / "runs" / broken).exists()

    monkeypatch.setattr(runner, "run", real)
    assert cli.main([*argv, "--out", str(out), "--quiet"]) == 0
    assert_same_tables(load_sweep(out), load_sweep(base))


def test_a_changed_definition_is_refused_unless_it_only_adds(base, tmp_path, count_runs):
    out = copy_of(base, tmp_path)
    kwargs = {"out": out, "seed": SEED, "progress": False}
    edited = tmp_path / "tiny.toml"
    edited.write_text(TINY.read_text().replace("max_tokens = 8", "max_tokens = 9"))
    with pytest.raises(SweepError, match=r"scenario differs .*\(changed: dialogue\)"):
        sweep(edited, GRID, replicates=2, **kwargs)
    with pytest.raises(SweepError, match="--set overrides differ"):
        sweep(TINY, GRID, replicates=2, overrides=["dialogue.max_tokens=8"], **kwargs)
    with pytest.raises(SweepError, match="seed differs"):
        sweep(TINY, GRID, replicates=2, out=out, seed=SEED + 1, progress=False)
    with pytest.raises(SweepError, match="grid keys differ"):
        sweep(TINY, {**GRID, "dialogue.temperature": [0.8]}, replicates=2, **kwargs)
    with pytest.raises(SweepError, match=r"grid values of belief.beta were removed \(0.5\)"):
        sweep(TINY, {**GRID, "belief.beta": [1.0]}, replicates=2, **kwargs)
    with pytest.raises(SweepError, match="fewer replicates"):
        sweep(TINY, GRID, replicates=1, **kwargs)
    assert count_runs == []
    # adding a grid value (listed in another order) runs only the new runs
    bigger = {"belief.observe": ["all", "self"], "belief.beta": [1.0, 0.0, 0.5]}
    runs = sweep(TINY, bigger, replicates=2, **kwargs)
    assert len(count_runs) == 4 and len(runs) == 12
    assert runs["belief.beta"].tolist() == [0.0] * 4 + [0.5] * 4 + [1.0] * 4
    old = load_sweep(base).runs
    kept = runs.merge(old, on="run_id", suffixes=("", "_old"))
    assert len(kept) == N_RUNS and (kept["seed"] == kept["seed_old"]).all()
    definition = json.loads((out / "sweep.json").read_text())
    assert definition["grid"]["belief.beta"] == [0.5, 1.0, 0.0]


def test_local_processes_give_the_same_tables(base, tmp_path):
    out = copy_of(base, tmp_path)
    for run_id in load_sweep(base).runs["run_id"].iloc[[0, 3, 7]]:
        shutil.rmtree(out / "runs" / run_id)
    sweep(TINY, GRID, replicates=2, out=out, seed=SEED, workers=2, progress=False)
    assert_same_tables(load_sweep(out), load_sweep(base))


def test_dask_local_cluster_gives_the_same_tables(base, tmp_path):
    """One replicate on Dask: the same tables as the first replicate of the local sweep."""
    pytest.importorskip("dask.distributed")
    out = tmp_path / "dask"
    runs = sweep(
        TINY, GRID, replicates=1, out=out, seed=SEED, workers=2, executor="dask", progress=False
    )
    assert (runs["status"] == "done").all(), runs["error"].tolist()
    assert_same_tables(load_sweep(out), load_sweep(base), replicates=1)


@pytest.mark.slow
def test_kill_9_mid_sweep_then_resume(base, tmp_path):
    """SIGKILL ``python -m simulacra sweep`` mid-way, run it again: nothing lost or redone.

    The sweep has one replicate, so its uninterrupted tables are those of the first
    replicate of ``base`` (seeds do not depend on the number of replicates).
    """
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "simulacra",
        "sweep",
        str(TINY),
        *CLI_GRID,
        "--replicates",
        "1",
        "--seed",
        str(SEED),
        "--out",
        str(out),
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    runs_dir = out / "runs"
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and process.poll() is None:
            done = [p for p in runs_dir.glob("*") if not p.name.startswith(".")]
            if len(done) >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.7)  # somewhere inside the next run, or while saving it
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    survivors = {p.name for p in runs_dir.iterdir() if not p.name.startswith(".")}
    assert 2 <= len(survivors) < N_RUNS // 2
    assert not (out / "runs.parquet").exists()
    stamps = {name: (runs_dir / name).stat().st_mtime_ns for name in survivors}

    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert {n: (runs_dir / n).stat().st_mtime_ns for n in survivors} == stamps  # not redone
    assert len(list(runs_dir.iterdir())) == N_RUNS // 2  # no leftovers, no duplicates
    result = load_sweep(out)
    assert result.runs["run_id"].is_unique and (result.runs["status"] == "done").all()
    assert_same_tables(result, load_sweep(base), replicates=1)
