"""The stability battery's activation directions on one model: persona vectors, axis, floor.

A run needs, per model, each persona's vector (steering, and the projection on it)
and the Assistant axis with its capping floor (capping, and the projection on it).
They are extracted the first time a unit of the model runs, with
:func:`simulacra.persona_vectors.cached_vector` and
:func:`~simulacra.persona_vectors.cached_axis`, into the run's ``vectors/`` folder,
and read back from there by every later unit and by a resumed run, so every unit
of a model steers and caps with the very same directions.

The capping floor follows Lu et al. (2026): tau is a low percentile (``[axis]
percentile``, 25 by default) of the default assistant's projections. Here those
are the default assistant's answers to the axis's questions under the role set's
neutral prompts, read back at each capped block (the same answers the axis was
extracted from: same requests, same seeds). The engine caps every block at one
floor, so tau is the mean of the per-block percentiles; the per-block values are
kept (:attr:`ModelVectors.tau_by_block`) and in ``vectors/assistant_axis_floor-*.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulacra.batteries.stability.schema import AxisSpec, StabilitySpec

if TYPE_CHECKING:
    from simulacra.llm.engine import Engine
    from simulacra.vectors import PersonaVector

__all__ = [
    "ModelVectors",
    "capped_blocks",
    "floor_of",
    "measure_block",
    "model_vectors",
]

_LOADED: dict[tuple[str, str, str], ModelVectors] = {}


@dataclass(frozen=True, eq=False)
class ModelVectors:
    """The directions a stability run uses on one model.

    Attributes:
        personas: each persona's vector, by name (personas with a ``vector`` spec).
        axis: the Assistant axis at :attr:`axis_blocks` (None without ``[axis]``).
        capped: the blocks capped under ``capping = "on"``.
        tau: the floor of the projection on the axis at the capped blocks.
        tau_by_block: the default assistant's percentile at each capped block.
        measure: the block each reply is projected at, per direction name
            (persona names and ``"assistant_axis"``).
    """

    personas: dict[str, PersonaVector]
    axis: PersonaVector | None = None
    capped: tuple[int, ...] = ()
    tau: float = math.nan
    tau_by_block: dict[int, float] = field(default_factory=dict)
    measure: dict[str, int] = field(default_factory=dict)


def capped_blocks(depth: tuple[float, float], n_layer: int) -> tuple[int, ...]:
    """The blocks ``floor(low * n) .. floor(high * n)``, within ``0 .. n - 1``.

    Args:
        depth: ``(low, high)`` fractions of the model's depth.
        n_layer: the model's number of blocks.

    Returns:
        The blocks, increasing (at least one).
    """
    last = n_layer - 1
    lo = min(math.floor(depth[0] * n_layer), last)
    hi = min(math.floor(depth[1] * n_layer), last)
    return tuple(range(lo, max(lo, hi) + 1))


def measure_block(blocks: tuple[int, ...] | list[int], n_layer: int) -> int:
    """The block of ``blocks`` nearest the model's middle (``n_layer // 2``; lower on a tie)."""
    middle = n_layer // 2
    return min(blocks, key=lambda b: (abs(b - middle), b))


def floor_of(projections: np.ndarray, percentile: float) -> tuple[float, dict[int, float]]:
    """The capping floor from the default assistant's projections.

    Args:
        projections: ``(n_answers, n_blocks)`` projections on the axis, one column per
            capped block.
        percentile: the percentile taken per block (Lu et al.: 25).

    Returns:
        The mean over blocks of the per-block percentile, and the per-block values
        by column index.
    """
    per_block = np.percentile(np.asarray(projections, dtype=float), percentile, axis=0)
    return float(per_block.mean()), {i: float(v) for i, v in enumerate(per_block)}


def _default_projections(
    engine: Engine, axis: PersonaVector, spec: AxisSpec, blocks: tuple[int, ...]
) -> np.ndarray:
    """The default assistant's answers (the axis's own) projected at ``blocks``."""
    from simulacra.persona_vectors import Sample, answer_all, response_means
    from simulacra.vectors import load_role_set, project

    roles = load_role_set(spec.roles)
    questions = list(roles.questions[: spec.questions])
    requests = [(p, q) for p in roles.default.prompts for q in questions]
    answers = answer_all(engine, requests, max_tokens=spec.max_tokens, seed=spec.seed)
    samples = [Sample(p, q, a) for (p, q), a in zip(requests, answers, strict=True)]
    means = response_means(engine, samples, blocks)
    rows = dict(zip(axis.layers, axis.directions, strict=True))
    return np.stack([project(means[:, i], rows[b]) for i, b in enumerate(blocks)], axis=1)


def _floor(
    engine: Engine, axis: PersonaVector, spec: AxisSpec, blocks: tuple[int, ...], cache: Path
) -> tuple[float, dict[int, float]]:
    """The floor, computed once per axis and recipe and kept in ``cache`` as JSON."""
    recipe = {
        "axis_sha256": axis.sha256,
        "blocks": list(blocks),
        "percentile": spec.percentile,
        "questions": spec.questions,
        "max_tokens": spec.max_tokens,
        "seed": spec.seed,
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    path = cache / f"assistant_axis_floor-{digest}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return float(data["tau"]), {int(b): float(v) for b, v in data["tau_by_block"].items()}
    projections = _default_projections(engine, axis, spec, blocks)
    tau, by_column = floor_of(projections, spec.percentile)
    by_block = {blocks[i]: v for i, v in by_column.items()}
    payload = {**recipe, "tau": tau, "tau_by_block": {str(b): v for b, v in by_block.items()}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)
    return tau, by_block


def model_vectors(spec: StabilitySpec, model: str, cache_dir: Path) -> ModelVectors:
    """The persona vectors, the axis and its floor on ``model``, extracted once and cached.

    Args:
        spec: the battery.
        model: the model's registry name or GGUF path.
        cache_dir: the run's ``vectors/`` folder (created if missing).

    Returns:
        The directions (kept in memory for the process as well).

    Raises:
        ScenarioError: a vector spec or role set names a block the model lacks.
    """
    from simulacra.llm.cache import get_engine
    from simulacra.persona_vectors import cached_axis, cached_vector

    key = (str(spec.directory.resolve()), model, str(Path(cache_dir).resolve()))
    if key in _LOADED:
        return _LOADED[key]
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    file = spec.file
    personas = {
        p.name: cached_vector(
            p.vector, model, cache, max_tokens=file.steering.max_tokens, seed=file.steering.seed
        )
        for p in file.personas
        if p.vector is not None
    }
    engine = get_engine(model, n_ctx=4096)
    measure = {name: measure_block(v.layers, engine.n_layer) for name, v in personas.items()}
    result = ModelVectors(personas, measure=measure)
    if file.axis is not None:
        capped = capped_blocks(file.axis.depth, engine.n_layer)
        blocks = sorted({engine.n_layer // 2, *capped})
        axis = cached_axis(
            file.axis.roles,
            model,
            cache,
            layers=blocks,
            max_tokens=file.axis.max_tokens,
            seed=file.axis.seed,
            questions=file.axis.questions,
            prompts=file.axis.prompts,
        )
        tau, by_block = _floor(engine, axis, file.axis, capped, cache)
        measure["assistant_axis"] = engine.n_layer // 2
        result = ModelVectors(personas, axis, capped, tau, by_block, measure)
    _LOADED[key] = result
    return result
