"""Running a scenario: from a Scenario and a seed to a RunResult.

The engine for a model is loaded once per process and shared by every run of that
process (:mod:`simulacra.llm.cache`); each run starts by clearing its cache, so
results do not depend on what ran before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from simulacra.llm import cache
from simulacra.llm.cache import DEFAULT_N_CTX, clear_engines
from simulacra.llm.engine import Engine, EngineStats
from simulacra.scenario import ModelSpec, Scenario, load_scenario
from simulacra.simulation.model import DialogueModel
from simulacra.simulation.results import RunResult, package_versions

__all__ = ["clear_engines", "default_run_id", "get_engine", "run"]

Progress = Callable[[DialogueModel], None]
"""Called after every turn with the model (for progress displays)."""


def get_engine(
    model: ModelSpec | str | os.PathLike[str] | None = None,
    *,
    n_ctx: int | None = None,
    n_threads: int | None = None,
) -> Engine:
    """The process-wide engine for a scenario's model spec, or a model name or path.

    A thin layer over :func:`simulacra.llm.cache.get_engine` that reads a
    :class:`~simulacra.scenario.ModelSpec`; explicit arguments win over the spec.

    Args:
        model: the scenario's model settings, a registry name, a GGUF path, or None
            for the embedded default model.
        n_ctx: the context size; default the spec's, else ``DEFAULT_N_CTX``.
        n_threads: CPU threads; default the spec's, else every core (sweep workers
            pass their share).

    Returns:
        The engine.
    """
    n_gpu_layers = 0
    if isinstance(model, ModelSpec):
        n_ctx = n_ctx or model.n_ctx
        n_threads = n_threads or model.n_threads
        n_gpu_layers = model.n_gpu_layers
        model = model.path or model.name
    return cache.get_engine(
        model, n_ctx=n_ctx or DEFAULT_N_CTX, n_threads=n_threads, n_gpu_layers=n_gpu_layers
    )


def default_run_id(scenario: Scenario, seed: int) -> str:
    """A readable, deterministic run id: the scenario file's stem and the seed."""
    stem = os.path.splitext(os.path.basename(scenario.source or "run"))[0] or "run"
    return f"{stem}-s{seed}"


def run(
    scenario: Scenario | str | os.PathLike[str],
    seed: int | None = None,
    *,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    engine: Engine | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    status: Callable[[str, bool], None] | None = None,
) -> RunResult:
    """Run a scenario to the end and collect its tables.

    Args:
        scenario: a Scenario or the path of a scenario file.
        seed: overrides the scenario's seed.
        overrides: extra ``--set``-style overrides.
        engine: an engine to use instead of the process-wide one.
        run_id: the id written into every table; by default ``<stem>-s<seed>``.
        progress: called after every turn.
        status: ``status(line, announce)`` before each step (see
            :class:`~simulacra.simulation.model.DialogueModel`): announced for the
            probes of a turn (turn 0 included) and the regeneration test.

    Returns:
        The run's result, with a manifest recording the seed, the model's sha256,
        package versions, timings and token counts.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, overrides)
    elif overrides:
        scenario = scenario.with_overrides(overrides)
    seed = scenario.seed if seed is None else int(seed)
    started = time.perf_counter()
    engine = engine or get_engine(scenario.model)
    stats_before = EngineStats(**engine.stats.as_dict())
    model = DialogueModel(scenario, seed=seed, engine=engine, status=status)
    while model.running:
        model.step()
        if progress is not None:
            progress(model)
    wall = time.perf_counter() - started
    run_id = run_id or default_run_id(scenario, seed)
    tables = {
        name: model.datacollector.get_table_dataframe(name)
        for name in ("transcript", "beliefs", "probes", "regeneration")
    }
    if scenario.projections is not None:
        tables["projections"] = model.datacollector.get_table_dataframe("projections")
    agents = pd.DataFrame(
        {
            "agent": [a.name for a in scenario.agents],
            "persona_mode": [a.persona for a in scenario.agents],
            "assigned": [a.assigned for a in scenario.agents],
            "map_start": [model.map_start[a.name] for a in scenario.agents],
            "map_end": [a.map_simulacrum() for a in model.persona_agents],
        }
    )
    tables["agents"] = agents
    for table in tables.values():
        table.insert(0, "run_id", run_id)
    stats = {
        key: value - getattr(stats_before, key) for key, value in engine.stats.as_dict().items()
    }
    manifest = {
        "run_id": run_id,
        "seed": seed,
        "scenario": scenario.to_dict(),
        "scenario_source": scenario.source,
        # every engine setting that changes the numbers (see Engine.config)
        "model": {**engine.config, "chat_format": engine.chat.name},
        "versions": package_versions(),
        "timings": {
            "wall_s": wall,
            "engine_s": sum(model.timings.values()),
            "decode_s": stats["decode_seconds"],
            **model.timings,
        },
        "tokens": {k: v for k, v in stats.items() if k != "decode_seconds"},
        "turns": model.turn,
        **({"steering": [s.to_dict() for s in model.steering.values()]} if model.steering else {}),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return RunResult(run_id=run_id, manifest=manifest, **tables)
