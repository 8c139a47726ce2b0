"""Parameter sweeps: a scenario over a grid of overrides × replicates, resumable.

A sweep runs the full cartesian product of its grid (dotted scenario keys, each
with a list of values, as for ``--set``) times ``replicates`` runs per grid
point. Every run has a stable id and seed derived from its parameters and
replicate index only, so adding a grid value or a replicate leaves the ids and
seeds of existing runs unchanged. Running the same sweep again skips the runs
whose directory is complete and redoes the others (missing, interrupted or
failed), so a killed sweep loses at most the runs in flight. A different
definition in the same directory is refused unless it only adds grid values or
replicates. Runs execute in this process (one worker), in local worker
processes, or on a Dask cluster.

The rooms:

- :mod:`~simulacra.sweep.grid`: grids, run ids and seeds;
- :mod:`~simulacra.sweep.definition`: the definition in ``sweep.json``, validated
  at every grid point, and what a resumed sweep may change;
- :mod:`~simulacra.sweep.executors`: :func:`~simulacra.sweep.executors.execute`,
  one function over many tasks, here, on local processes or on Dask;
- :mod:`~simulacra.sweep.store`: the sweep directory on disk (layout, lock,
  atomic tables, resume, :func:`load_sweep`);
- :mod:`~simulacra.sweep.progress`: the progress line;
- :mod:`~simulacra.sweep.running`: :func:`sweep` itself.
"""

from simulacra.sweep.executors import Executor, execute
from simulacra.sweep.grid import (
    Grid,
    RunSpec,
    derive_seed,
    expand_grid,
    make_run_id,
    parse_grid,
    plan_runs,
)
from simulacra.sweep.running import sweep
from simulacra.sweep.store import (
    COMBINED_TABLES,
    RUNS_DIR,
    SWEEP_FILE,
    SweepResult,
    load_sweep,
    locked,
    write_parquet_atomic,
)

__all__ = [
    "COMBINED_TABLES",
    "RUNS_DIR",
    "SWEEP_FILE",
    "Executor",
    "Grid",
    "RunSpec",
    "SweepResult",
    "derive_seed",
    "execute",
    "expand_grid",
    "load_sweep",
    "locked",
    "make_run_id",
    "parse_grid",
    "plan_runs",
    "sweep",
    "write_parquet_atomic",
]
