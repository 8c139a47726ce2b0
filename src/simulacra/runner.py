"""Running a scenario: from a Scenario and a seed to a RunResult.

The engine for a model is loaded once per process and shared by every run of that
process (:func:`get_engine`); each run starts by clearing its cache, so results do
not depend on what ran before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from simulacra.llm.engine import Engine, EngineStats
from simulacra.model import DialogueModel
from simulacra.results import RunResult, package_versions
from simulacra.scenario import ModelSpec, Scenario, load_scenario

__all__ = ["clear_engines", "default_run_id", "get_engine", "run"]

DEFAULT_N_CTX = 8192
_ENGINES: dict[tuple[Any, ...], Engine] = {}

Progress = Callable[[DialogueModel], None]
"""Called after every turn with the model (for progress displays)."""


def get_engine(spec: ModelSpec, *, n_threads: int | None = None) -> Engine:
    """The process-wide engine for a model spec, loaded on first use.

    Args:
        spec: the scenario's model settings.
        n_threads: overrides ``spec.n_threads`` (sweep workers share the cores).

    Returns:
        The engine.
    """
    threads = n_threads or spec.n_threads
    key = (spec.name, spec.path, spec.n_ctx or DEFAULT_N_CTX, threads)
    engine = _ENGINES.get(key)
    if engine is None:
        engine = Engine.load(spec.path or spec.name, n_ctx=key[2], n_threads=threads)
        _ENGINES[key] = engine
    return engine


def clear_engines() -> None:
    """Close every cached engine."""
    for engine in _ENGINES.values():
        engine.close()
    _ENGINES.clear()


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
) -> RunResult:
    """Run a scenario to the end and collect its tables.

    Args:
        scenario: a Scenario or the path of a scenario file.
        seed: overrides the scenario's seed.
        overrides: extra ``--set``-style overrides.
        engine: an engine to use instead of the process-wide one.
        run_id: the id written into every table; by default ``<stem>-s<seed>``.
        progress: called after every turn.

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
    model = DialogueModel(scenario, seed=seed, engine=engine)
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
    agents = pd.DataFrame(
        {
            "agent": [a.name for a in scenario.agents],
            "persona_mode": [a.persona for a in scenario.agents],
            "assigned": [a.assigned for a in scenario.agents],
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
        "model": {
            "name": engine.model_info.name,
            "path": str(engine.model_path),
            "sha256": engine.sha256,
            "chat_format": engine.chat.name,
            "n_ctx": engine.n_ctx,
            "n_threads": engine.n_threads,
        },
        "versions": package_versions(),
        "timings": {
            "wall_s": wall,
            "engine_s": sum(model.timings.values()),
            "decode_s": stats["decode_seconds"],
            **model.timings,
        },
        "tokens": {k: v for k, v in stats.items() if k != "decode_seconds"},
        "turns": model.turn,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return RunResult(run_id=run_id, manifest=manifest, **tables)
