"""Running a sweep: validate every grid point, store the definition, run what is missing.

:func:`sweep` checks the scenario at every grid point before anything runs,
records the definition in ``sweep.json`` (or checks it against the stored one
when resuming), runs the runs whose directory is not complete with
:func:`~simulacra.sweep.executors.execute`, saves each run as it completes and
writes the combined tables at the end. Each worker loads a model once
(:mod:`simulacra.llm.cache`) and reuses it for all its runs.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from simulacra.errors import ScenarioError, ScenarioIssue, SweepError, warn
from simulacra.llm.engine import default_threads
from simulacra.scenario import Scenario, apply_overrides
from simulacra.scenario.model_check import check_model
from simulacra.schema import read_toml
from simulacra.simulation import runner
from simulacra.simulation.results import RunResult, package_versions, write_json_atomic
from simulacra.sweep.definition import (
    jsonable,
    merge_definitions,
    normalize_grid,
    set_overrides,
    validate_points,
)
from simulacra.sweep.executors import Executor, error_text, execute, import_dask
from simulacra.sweep.grid import Grid, RunSpec, canonical, expand_grid
from simulacra.sweep.progress import Progress
from simulacra.sweep.store import (
    COMBINED_TABLES,
    FORMAT,
    LOCK_FILE,
    RUNS_DIR,
    RUNS_TABLE,
    SWEEP_FILE,
    RunFailure,
    clean_leftovers,
    combined_tables,
    complete_manifest,
    locked,
    read_definition,
    runs_table,
    specs_of,
    write_parquet_atomic,
)

__all__ = ["RunOutcome", "RunTask", "run_task", "sweep"]


@dataclass(frozen=True)
class RunTask:
    """What a worker needs for one run.

    Attributes:
        spec: The run (id, parameters, replicate, seed).
        scenario: The validated scenario of its grid point.
        n_threads: Threads for the engine; None for the scenario's setting.

    """

    spec: RunSpec
    scenario: Scenario
    n_threads: int | None


@dataclass
class RunOutcome:
    """What a worker sends back for one run: the result, or the error.

    Attributes:
        wall_s: Seconds the run took (until it failed).
        result: The run's result, or None.
        error: ``Type: message (at file:line)`` for a failed run, else None.

    """

    wall_s: float
    result: RunResult | None = None
    error: str | None = None


def run_task(task: RunTask) -> RunOutcome:
    """Run one run with this process's cached engine; never raises for a failed run.

    Args:
        task: The run.

    Returns:
        Its outcome, with the wall time also for a failure.
    """
    started = time.perf_counter()
    try:
        engine = runner.get_engine(task.scenario.model, n_threads=task.n_threads)
        result = runner.run(
            task.scenario, seed=task.spec.seed, engine=engine, run_id=task.spec.run_id
        )
    except Exception as exc:
        return RunOutcome(time.perf_counter() - started, error=error_text(exc))
    return RunOutcome(time.perf_counter() - started, result=result)


def _threads(scenario: Scenario, default: int) -> int:
    """Threads for a run: ``model.n_threads``, else the sweep's recorded default.

    Never the workers' share of the cores: llama.cpp's numbers depend on the
    thread count, so every run of a sweep uses the same count, whatever
    ``--workers`` or the executor.
    """
    return scenario.model.n_threads or default


def _model_sha256(scenarios: Mapping[str, Scenario]) -> dict[str, str]:
    """The sha256 of every model the grid points use, by name or path (checked on disk).

    Raises:
        ScenarioError: A model name does not resolve, or its file is missing or
            corrupt (every grid point's problem at once).
    """
    found: dict[str, str] = {}
    issues: dict[ScenarioIssue, None] = {}
    for scenario in scenarios.values():
        key = scenario.model.path or scenario.model.name or ""
        if key in found:
            continue
        try:
            found[key] = check_model(scenario).sha256
        except ScenarioError as err:
            issues.update(dict.fromkeys(err.issues))
    if issues:
        raise ScenarioError(list(issues))
    return found


def _check_numerics(definition: Mapping[str, Any], models: Mapping[str, str], where: Path) -> None:
    """Refuse to resume when a model file changed since the sweep started."""
    for key, sha in definition.get("models", {}).items():
        if key in models and models[key] != sha:
            raise SweepError(
                f"the model {key} is not the file the sweep in {where} started with "
                f"(sha256 was {sha}, now {models[key]}); its runs would mix numbers from "
                "two models. Restore that file, or use another --out"
            )


def _check_run(
    manifest: Mapping[str, Any], expected: Mapping[str, Any], run_id: str, where: Path
) -> None:
    """Refuse a stored run whose numerics-relevant settings differ from this sweep's."""
    model = manifest.get("model", {})
    for setting, value in expected.items():
        stored = model.get(setting)
        if stored is not None and stored != value:
            raise SweepError(
                f"run {run_id} in {where} was computed with model {setting} = {stored}, but "
                f"this sweep computes its runs with {setting} = {value}; results would mix "
                f"two settings. Resume with --set model.{setting}={stored}, or use another --out"
            )


def _warn_oversubscription(
    tasks: Sequence[RunTask], workers: int, executor: Executor, address: str | None
) -> None:
    """Warn when local workers together run more llama.cpp threads than there are cores."""
    if not tasks or (executor == "dask" and address):
        return
    running = min(workers, len(tasks))
    threads = max(task.n_threads or 1 for task in tasks)
    cores = default_threads()
    if running > 1 and running * threads > cores:
        warn(
            f"{running} workers each run the model with {threads} threads on {cores} cores, "
            "so they slow each other down. Every run of a sweep uses the same thread count "
            "(model.n_threads, by default the cores of this machine), so that --workers does "
            "not change the results; to run several workers at full speed, start the sweep "
            f"with --set model.n_threads={max(1, cores // running)} (other numbers than runs "
            "with another thread count)."
        )


def sweep(
    scenario: str | os.PathLike[str] | Scenario,
    grid: Grid | None = None,
    *,
    replicates: int = 1,
    out: str | os.PathLike[str],
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    seed: int | None = None,
    workers: int = 1,
    executor: Executor = "local",
    address: str | None = None,
    progress: bool = True,
    paired: bool = False,
) -> pd.DataFrame:
    """Run a scenario over a grid × replicates into ``out``, resuming what is there.

    Args:
        scenario: A scenario file, or a Scenario (then keys address its resolved
            form, as for :meth:`Scenario.with_overrides`).
        grid: Dotted key -> values; the sweep is their cartesian product.
        replicates: Runs per grid point (>= 1).
        out: The sweep directory; created, or resumed when it holds this sweep.
        overrides: ``--set`` overrides applied to every run.
        seed: The sweep seed (>= 0); None for the scenario's seed.
        workers: Worker processes (or LocalCluster workers); 1 runs in this
            process. Every run uses ``model.n_threads`` threads or, when it is
            unset, the number of cores of this machine when the sweep started
            (recorded in ``sweep.json``), whatever ``workers`` and the executor:
            llama.cpp's numbers depend on the thread count.
        executor: ``"local"`` (processes on this machine) or ``"dask"``.
        address: A Dask scheduler address; None starts a LocalCluster.
        progress: Show a progress bar on stderr.
        paired: Give replicate ``r`` the same seed at every grid point
            (``--paired``), for paired comparisons between grid points.

    Returns:
        The runs table (also written to ``out/runs.parquet``); failed runs have
        status ``"failed"`` and their error, and are retried by the next call.

    Raises:
        ScenarioError: The scenario, an override or a grid value is invalid
            (checked for every grid point before anything runs).
        SweepError: Bad sweep settings, or ``out`` holds a different sweep.

    """
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise SweepError(f"replicates must be an integer >= 1, got {replicates!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"workers must be an integer >= 1, got {workers!r}")
    if executor not in ("local", "dask"):
        raise SweepError(f"unknown executor {executor!r}: expected 'local' or 'dask'")
    if address and executor != "dask":
        raise SweepError("--address needs --executor dask")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SweepError(f"the sweep seed must be an integer >= 0, got {seed!r}")
    if executor == "dask":
        import_dask()

    if isinstance(scenario, Scenario):
        base, source = scenario.to_dict(), scenario.source
    else:
        source = os.fspath(scenario)
        base = read_toml(source)
    set_map = set_overrides(overrides)
    plain_grid = normalize_grid(grid, set_map)
    points = expand_grid(plain_grid)
    scenarios = {
        canonical(point): scenario
        for point, scenario in zip(
            points, validate_points(base, source, set_map, plain_grid), strict=True
        )
    }
    sweep_seed = next(iter(scenarios.values())).seed if seed is None else seed
    models = _model_sha256(scenarios)
    fresh = {
        "format": FORMAT,
        "scenario_source": source,
        "scenario": jsonable(apply_overrides(base, set_map)),
        "overrides": jsonable(set_map),
        "grid": plain_grid,
        "replicates": replicates,
        "seed": sweep_seed,
        "paired": bool(paired),
        "n_threads": default_threads(),
        "models": models,
    }

    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise SweepError(f"{directory} exists and is not a directory")
    if directory.is_dir() and not (directory / SWEEP_FILE).exists():
        foreign = [entry.name for entry in directory.iterdir() if entry.name != LOCK_FILE]
        if foreign:
            raise SweepError(
                f"{directory} exists and is not a sweep directory (no {SWEEP_FILE}); "
                "choose another --out"
            )
    directory.mkdir(parents=True, exist_ok=True)
    with locked(directory):
        clean_leftovers(directory)
        definition = fresh
        if (directory / SWEEP_FILE).exists():
            stored = read_definition(directory)
            definition = {**merge_definitions(stored, fresh, directory / SWEEP_FILE)}
            _check_numerics(definition, models, directory / SWEEP_FILE)
            definition.setdefault("n_threads", fresh["n_threads"])
            definition["models"] = {**models, **definition.get("models", {})}
        definition.update(
            versions=package_versions(),
            updated=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        definition.setdefault("created", definition["updated"])
        write_json_atomic(directory / SWEEP_FILE, definition)
        return _run_sweep(directory, definition, scenarios, workers, executor, address, progress)


def _run_sweep(
    directory: Path,
    definition: Mapping[str, Any],
    scenarios: Mapping[str, Scenario],
    workers: int,
    executor: Executor,
    address: str | None,
    progress: bool,
) -> pd.DataFrame:
    """Run the missing runs of a stored definition and write the sweep's tables.

    ``scenarios`` holds the validated scenario of every grid point, by
    :func:`canonical` of the point.
    """
    specs, kinds = specs_of(definition)
    runs_dir = directory / RUNS_DIR
    runs_dir.mkdir(exist_ok=True)
    manifests: dict[str, dict[str, Any]] = {}
    pending: list[RunSpec] = []
    models = definition.get("models", {})
    for spec in specs:
        scenario = scenarios[canonical(spec.params)]
        manifest = complete_manifest(runs_dir / spec.run_id, spec)
        if manifest is None:
            pending.append(spec)
            continue
        expected = {
            "n_threads": _threads(scenario, definition["n_threads"]),
            "n_gpu_layers": scenario.model.n_gpu_layers,
            "sha256": models.get(scenario.model.path or scenario.model.name or ""),
        }
        _check_run(manifest, expected, spec.run_id, directory)
        manifests[spec.run_id] = manifest

    tasks = []
    for spec in pending:
        scenario = scenarios[canonical(spec.params)]
        tasks.append(RunTask(spec, scenario, _threads(scenario, definition["n_threads"])))
    _warn_oversubscription(tasks, workers, executor, address)

    failures: dict[str, RunFailure] = {}
    bar = Progress(len(specs), len(specs) - len(pending), enabled=progress)
    bar.draw()
    if pending:
        for name in (RUNS_TABLE, *COMBINED_TABLES):  # stale until rebuilt below
            (directory / f"{name}.parquet").unlink(missing_ok=True)
        outcomes = execute(
            run_task,
            tasks,
            workers=workers,
            executor=executor,
            address=address,
            preload=("simulacra.sweep",),
        )
        for index, outcome, crash in outcomes:
            spec = pending[index]
            if outcome is None:  # the worker died, or the task did not reach it
                outcome = RunOutcome(math.nan, error=crash)
            if outcome.result is not None:
                try:
                    outcome.result.save(runs_dir / spec.run_id, overwrite=True)
                    manifests[spec.run_id] = outcome.result.manifest
                except Exception as exc:
                    outcome.error = f"saving failed: {error_text(exc)}"
                outcome.result = None
            if outcome.error is not None:
                failures[spec.run_id] = RunFailure(outcome.error, outcome.wall_s)
            bar.update(failed=outcome.error is not None)
    bar.close()

    runs = runs_table(specs, kinds, manifests, failures)
    combined = combined_tables(specs, kinds, runs_dir, manifests)
    for name, frame in combined.items():
        write_parquet_atomic(frame, directory / f"{name}.parquet")
    write_parquet_atomic(runs, directory / f"{RUNS_TABLE}.parquet")
    if failures and progress:
        print(f"{len(failures)} run(s) failed (retried by the next call):", file=sys.stderr)
        for run_id, failure in list(failures.items())[:10]:
            print(f"  {run_id}: {failure.error}", file=sys.stderr)
        if len(failures) > 10:
            print(f"  ... and {len(failures) - 10} more (see runs.parquet)", file=sys.stderr)
    return runs
