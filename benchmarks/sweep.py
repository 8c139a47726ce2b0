"""Benchmark: the overhead of a sweep over running the same runs directly.

Runs a 20-run sweep (5 values of ``belief.beta`` × 2 of ``belief.observe`` × 2
replicates of ``tests/scenarios/tiny.toml``) with :func:`simulacra.sweep`, then the
same 20 runs (same scenarios, seeds and engine settings) in one plain loop of
:func:`simulacra.run`.  The overhead per run is the sweep's wall time not spent
inside the runs themselves (model load, validation, bookkeeping, writing the run
directories and the combined tables), averaged over the runs; with ``--workers``
above 1 it is counted in worker-seconds: ``(total_s * workers - sum_run_s) / runs``.

Prints one JSON object.  Run alone on an idle machine::

    python benchmarks/sweep.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import simulacra
from simulacra.llm.engine import default_threads
from simulacra.scenario import load_scenario
from simulacra.simulation.runner import clear_engines, get_engine
from simulacra.sweep import plan_runs

ROOT = Path(__file__).resolve().parents[1]
GRID = {"belief.beta": [0.0, 0.25, 0.5, 1.0, 2.0], "belief.observe": ["self", "all"]}


def baseline(scenario_path: Path, seed: int, replicates: int, n_threads: int) -> dict:
    """The same runs in one loop of ``simulacra.run``, with one engine, nothing written."""
    clear_engines()
    started = time.perf_counter()
    specs = plan_runs(GRID, replicates, seed)
    sum_run = 0.0
    for spec in specs:
        scenario = load_scenario(scenario_path, spec.params)
        engine = get_engine(scenario.model, n_threads=n_threads)
        result = simulacra.run(scenario, seed=spec.seed, engine=engine, run_id=spec.run_id)
        sum_run += result.manifest["timings"]["wall_s"]
    total = time.perf_counter() - started
    clear_engines()
    return {"total_s": total, "sum_run_s": sum_run, "runs": len(specs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "tests" / "scenarios" / "tiny.toml"))
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--executor", choices=("local", "dask"), default="local")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenario = Path(args.scenario)

    spec = load_scenario(scenario).model  # warm the page cache with one load
    get_engine(spec, n_threads=1)
    clear_engines()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        runs = simulacra.sweep(
            scenario,
            GRID,
            replicates=args.replicates,
            out=Path(tmp) / "sweep",
            seed=args.seed,
            workers=args.workers,
            executor=args.executor,
            progress=False,
        )
        total = time.perf_counter() - started
        clear_engines()
    assert (runs["status"] == "done").all(), runs["error"].tolist()
    n = len(runs)
    sum_run = float(runs["wall_s"].sum())
    threads = max(1, default_threads() // args.workers)  # the sweep's rule
    threads = min(threads, spec.n_threads or threads)
    base = baseline(scenario, args.seed, args.replicates, threads)
    report = {
        "runs": n,
        "workers": args.workers,
        "executor": args.executor,
        "threads_per_run": threads,
        "total_s": round(total, 3),
        "sum_run_s": round(sum_run, 3),
        "overhead_per_run_s": round((total * args.workers - sum_run) / n, 4),
        "baseline_total_s": round(base["total_s"], 3),
        "baseline_sum_run_s": round(base["sum_run_s"], 3),
        "baseline_overhead_per_run_s": round((base["total_s"] - base["sum_run_s"]) / n, 4),
        "ratio_total_vs_baseline": round(total / base["total_s"], 4),
        "extra_per_run_vs_baseline_s": round((total - base["total_s"]) / n, 4),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
