"""Interventions: an effect's respondents answer with the residual stream capped or steered.

An effect file may hold an ``[intervention]`` table: while its respondents answer
(lead-ins and items, every token decoded), the engine caps the projection of chosen
blocks' outputs on a persona vector into a band (:meth:`Engine.capping`, Lu et al.
2026), and/or adds the vector times a coefficient (:meth:`Engine.steering`, Chen et
al. 2025). Any effect may use it; the motivated-reasoning battery caps a partisan
identity direction as a debiasing lever (``covariance_capped.toml``)::

    [intervention.cap]
    vector = "../../vectors/partisan.toml"   # an extraction spec, relative to this file
    blocks = [8, 10, 12]                     # capped blocks (among the spec's layers)
    band = "neutral"                         # or [low, high], one band for every block
    [intervention.steer]
    vector = "../../vectors/partisan.toml"
    coefficient = -1.0                       # times the unnormalised mean difference
    blocks = [10, 10]                        # inclusive block range, start >= 1

The vector is extracted per model from the spec once (:func:`simulacra.persona_vectors.
cached_vector`) into the run's ``vectors/`` folder. ``band = "neutral"`` is the band of
a neutral reference, per block: the bare model (no system prompt) answers the spec's
held-out ``evaluation`` questions, each answer's residual stream is averaged over its
tokens (as in extraction), and the band runs from the lowest to the highest projection
of those means on the block's unit direction. A persona whose identity pushes the
projection beyond what an identity-free answer shows is pulled back to its edge; one
inside is untouched. The band is cached beside the vector (its recipe: the vector's
sha256, blocks, answer length, seed).

:class:`InterventionEntry` is the table's schema; :func:`spec_issues` checks the specs
when a battery directory is loaded; :func:`prepare` resolves an intervention on a model
(vector, band) and :func:`applied` puts it in force on an engine; :func:`describe_rows`
gives the rows of a run's ``interventions`` table (recorded in its manifest).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.schema import Array, SchemaModel, Text, Unique, fail, ordered_pair

if TYPE_CHECKING:
    from simulacra.llm.engine import Engine
    from simulacra.vectors import PersonaVector

__all__ = [
    "BAND_MAX_TOKENS",
    "Cap",
    "CapEntry",
    "Intervention",
    "InterventionEntry",
    "Prepared",
    "Steer",
    "SteerEntry",
    "applied",
    "describe_rows",
    "intervention_of",
    "neutral_band",
    "prepare",
    "spec_issues",
]

BAND_MAX_TOKENS = 40
"""The longest answer of the neutral reference (and of the vector's extraction)."""
SEED = 0
"""The sampling seed of the extraction and of the neutral reference's answers."""

Block = Annotated[int, Field(ge=1)]
NEUTRAL = "neutral"
"""The band of the neutral reference (module docstring)."""
_BAND_SCHEMA = [
    {"const": NEUTRAL},
    {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
]


class CapEntry(SchemaModel):
    """Capping (``[intervention.cap]``): the projection on a vector clamped into a band."""

    vector: Text
    """An extraction spec (TOML), relative to the effect file."""
    blocks: Annotated[Array[Block], Field(min_length=1), Unique("block")]
    """The capped 0-based blocks (>= 1; each among the spec's layers)."""
    band: Annotated[Any, Field(json_schema_extra={"anyOf": _BAND_SCHEMA})] = NEUTRAL
    """"neutral" (the bare model's answers' range, per block) or [low, high] for every block."""

    @field_validator("band", mode="before")
    @classmethod
    def _band(cls, band: Any) -> Any:
        if band == NEUTRAL:
            return band
        expected = f'expected "{NEUTRAL}" or [low, high] (two finite numbers, low <= high)'
        numbers = isinstance(band, list) and len(band) == 2
        numbers = numbers and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in band
        )
        if not numbers or not all(math.isfinite(b) for b in band):
            fail([((), f"{expected}, got {band!r}")])
        if band[0] > band[1]:
            fail([((), f"expected low <= high, got [{band[0]:g}, {band[1]:g}]")])
        return (float(band[0]), float(band[1]))


class SteerEntry(SchemaModel):
    """Steering (``[intervention.steer]``): the vector times a coefficient added."""

    vector: Text
    """An extraction spec (TOML), relative to the effect file."""
    coefficient: float
    """Multiplies the vector (unnormalised mean difference); negative: toward the negative pole."""
    blocks: ordered_pair(int, "two block numbers")
    """The inclusive block range [start, end]: the spec's layers inside it are steered (>= 1)."""

    @field_validator("blocks")
    @classmethod
    def _start(cls, blocks: Any) -> Any:
        if blocks[0] < 1:
            fail([((0,), f"block 0 cannot be steered; expected >= 1, got {blocks[0]}")])
        return blocks


class InterventionEntry(SchemaModel):
    """An effect's ``[intervention]``: capping and/or steering while its respondents answer."""

    cap: CapEntry | None = None
    """Cap the projection on a vector into a band."""
    steer: SteerEntry | None = None
    """Add a vector times a coefficient."""

    @model_validator(mode="after")
    def _some(self) -> InterventionEntry:
        if self.cap is None and self.steer is None:
            fail([((), "expected [intervention.cap], [intervention.steer] or both")])
        return self


# --------------------------------------------------------------------------- runtime


@dataclass(frozen=True)
class Cap:
    """A capping: the spec (absolute path), the blocks, the band ("neutral" or (low, high))."""

    spec: Path
    blocks: tuple[int, ...]
    band: str | tuple[float, float]


@dataclass(frozen=True)
class Steer:
    """A steering: the spec (absolute path), the coefficient, the block range."""

    spec: Path
    coefficient: float
    blocks: tuple[int, int]


@dataclass(frozen=True)
class Intervention:
    """An effect's intervention: a capping, a steering, or both."""

    cap: Cap | None = None
    steer: Steer | None = None

    @property
    def label(self) -> str:
        """``capped``, ``steered`` or ``capped_steered``: the lever's name in reports."""
        parts = [name for name, on in (("capped", self.cap), ("steered", self.steer)) if on]
        return "_".join(parts)

    def text(self) -> str:
        """One line for a report cell, e.g. ``cap partisan@8,10,12 band neutral``."""
        parts = []
        if self.cap is not None:
            band = self.cap.band if isinstance(self.cap.band, str) else list(self.cap.band)
            blocks = ",".join(str(b) for b in self.cap.blocks)
            parts.append(f"cap {self.cap.spec.stem}@{blocks} band {band}")
        if self.steer is not None:
            start, end = self.steer.blocks
            parts.append(f"steer {self.steer.spec.stem}@{start}-{end} x {self.steer.coefficient:g}")
        return "; ".join(parts)


def intervention_of(entry: InterventionEntry | None, path: Path) -> Intervention | None:
    """The runtime intervention of a checked table, its spec paths made absolute.

    Args:
        entry: the effect file's ``[intervention]`` (None: none).
        path: the effect file (spec paths are relative to its directory).
    """
    if entry is None:
        return None

    def spec(vector: str) -> Path:
        return (path.parent / os.path.expanduser(vector)).resolve()

    cap = steer = None
    if entry.cap is not None:
        band = entry.cap.band if isinstance(entry.cap.band, str) else tuple(entry.cap.band)
        cap = Cap(spec(entry.cap.vector), tuple(entry.cap.blocks), band)
    if entry.steer is not None:
        start, end = entry.steer.blocks
        steer = Steer(spec(entry.steer.vector), float(entry.steer.coefficient), (start, end))
    return Intervention(cap, steer)


def spec_issues(intervention: Intervention, source: str) -> list[ScenarioIssue]:
    """Problems of an intervention's specs: missing, invalid, or lacking a block.

    Args:
        intervention: the effect's intervention.
        source: the effect file, for the messages.
    """
    from simulacra.vectors import load_spec

    issues = []
    for key, part in (("cap", intervention.cap), ("steer", intervention.steer)):
        if part is None:
            continue
        where = f"intervention.{key}"
        if not part.spec.is_file():
            message = f"file not found: {part.spec} (a relative path is read from the file's "
            issues.append(ScenarioIssue(source, f"{where}.vector", message + "directory)"))
            continue
        try:
            layers = load_spec(part.spec).layers
        except ScenarioError as error:
            first = error.issues[0]
            message = f"not a valid extraction spec: {first.path}: {first.message}"
            issues.append(ScenarioIssue(source, f"{where}.vector", message))
            continue
        if key == "steer":  # steered where the vector has a direction inside the range
            start, end = part.blocks
            if not any(start <= b <= end for b in layers):
                message = (
                    f"the range [{start}, {end}] holds none of the vector's layers "
                    f"{list(layers)} ({part.spec.name}): nothing would be steered"
                )
                issues.append(ScenarioIssue(source, f"{where}.blocks", message))
            continue
        missing = [b for b in part.blocks if b not in layers]
        if missing:
            message = (
                f"blocks {missing} are not among the vector's layers {list(layers)} "
                f"({part.spec.name})"
            )
            issues.append(ScenarioIssue(source, f"{where}.blocks", message))
    return issues


# --------------------------------------------------------------------------- on a model


@dataclass(frozen=True, eq=False)
class Prepared:
    """An intervention resolved on one model: its vectors and per-block bands.

    Attributes:
        intervention: what the effect file asked for.
        cap_vector, steer_vector: the vectors (None where not used).
        bands: capped block -> (low, high).
        files: ``cap`` / ``steer`` -> the cached vector file.
    """

    intervention: Intervention
    cap_vector: PersonaVector | None
    steer_vector: PersonaVector | None
    bands: Mapping[int, tuple[float, float]]
    files: Mapping[str, str]


def _band_file(vector: PersonaVector, blocks: Sequence[int], cache_dir: Path) -> Path:
    recipe = {"vector": vector.sha256, "blocks": list(blocks), "max_tokens": BAND_MAX_TOKENS}
    recipe |= {"seed": SEED, "reference": "bare model, evaluation questions"}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"{vector.name}-band-{key}.json"


def neutral_band(
    engine: Engine, vector: PersonaVector, blocks: Sequence[int], questions: Sequence[str]
) -> dict[int, tuple[float, float]]:
    """The neutral reference's band per block (module docstring).

    The bare model (no system prompt) answers ``questions`` (sampled from
    :data:`SEED`, at most :data:`BAND_MAX_TOKENS` tokens); each answer's residual
    stream is averaged over its tokens; the band is the lowest to the highest
    projection of those means on the block's unit direction.
    """
    from simulacra.persona_vectors import Sample, answer_all, response_means

    answers = answer_all(
        engine, [("", q) for q in questions], max_tokens=BAND_MAX_TOKENS, seed=SEED
    )
    samples = [Sample("", q, a) for q, a in zip(questions, answers, strict=True)]
    means = response_means(engine, samples, blocks)  # (n, blocks, n_embd)
    engine.reset()
    band = {}
    for i, block in enumerate(blocks):
        direction = np.asarray(vector.directions[list(vector.layers).index(block)], np.float64)
        projections = means[:, i].astype(np.float64) @ (direction / np.linalg.norm(direction))
        band[int(block)] = (float(projections.min()), float(projections.max()))
    return band


def prepare(
    intervention: Intervention, engine: Engine, model: str | None, cache_dir: str | os.PathLike
) -> Prepared:
    """Resolve an intervention on a model: extract (or read) its vectors and bands.

    Args:
        intervention: the effect's intervention.
        engine: the engine that will answer (the neutral band is measured on it).
        model: the model's registry name or path (for :func:`cached_vector`).
        cache_dir: the folder of cached vectors and bands (a run's ``vectors/``).
    """
    from simulacra.persona_vectors import cached_vector
    from simulacra.vectors import load_spec

    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    vectors: dict[str, PersonaVector] = {}
    files: dict[str, str] = {}
    for key, part in (("cap", intervention.cap), ("steer", intervention.steer)):
        if part is not None:
            vectors[key] = cached_vector(
                part.spec, model, cache, max_tokens=BAND_MAX_TOKENS, seed=SEED
            )
            files[key] = _vector_file(cache, vectors[key])
    bands: dict[int, tuple[float, float]] = {}
    cap = intervention.cap
    if cap is not None:
        if isinstance(cap.band, tuple):
            bands = dict.fromkeys(cap.blocks, cap.band)
        else:
            path = _band_file(vectors["cap"], cap.blocks, cache)
            if path.is_file():
                bands = {int(b): (lo, hi) for b, (lo, hi) in json.loads(path.read_text()).items()}
            else:
                questions = load_spec(cap.spec).questions.evaluation
                bands = neutral_band(engine, vectors["cap"], cap.blocks, questions)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps({str(b): list(v) for b, v in bands.items()}))
                os.replace(tmp, path)
    return Prepared(intervention, vectors.get("cap"), vectors.get("steer"), bands, files)


def _vector_file(cache: Path, vector: PersonaVector) -> str:
    """The cached file holding ``vector`` (by its directions' sha256), or ""."""
    from simulacra.vectors import read_control_vector

    for path in sorted(cache.glob(f"{vector.name}-*.gguf")):
        if read_control_vector(path).sha256 == vector.sha256:
            return path.name
    return ""


@contextlib.contextmanager
def applied(engine: Engine, prepared: Prepared | None) -> Iterator[None]:
    """Within this block the engine decodes under the intervention (None: unchanged)."""
    if prepared is None:
        yield
        return
    with contextlib.ExitStack() as stack:
        steer = prepared.intervention.steer
        if steer is not None:
            stack.enter_context(
                engine.steering(prepared.steer_vector, steer.coefficient, layers=steer.blocks)
            )
        cap = prepared.intervention.cap
        if cap is not None:
            lows = {b: lo for b, (lo, _) in prepared.bands.items()}
            highs = {b: hi for b, (_, hi) in prepared.bands.items()}
            stack.enter_context(
                engine.capping(prepared.cap_vector, lows, highs, layers=list(cap.blocks))
            )
        yield


def describe_rows(effect: str, prepared: Prepared) -> list[dict[str, Any]]:
    """Rows of the ``interventions`` table: one per capped block and one per steering."""
    rows = []
    intervention = prepared.intervention
    if intervention.cap is not None and prepared.cap_vector is not None:
        vector = prepared.cap_vector
        for block in intervention.cap.blocks:
            low, high = prepared.bands[block]
            rows.append(
                {
                    "effect": effect,
                    "lever": intervention.label,
                    "action": "cap",
                    "spec": intervention.cap.spec.name,
                    "vector_file": prepared.files.get("cap", ""),
                    "vector_sha256": vector.sha256,
                    "band": str(intervention.cap.band)
                    if isinstance(intervention.cap.band, str)
                    else "fixed",
                    "block": int(block),
                    "block_end": int(block),
                    "low": low,
                    "high": high,
                    "coefficient": math.nan,
                }
            )
    if intervention.steer is not None and prepared.steer_vector is not None:
        start, end = intervention.steer.blocks
        rows.append(
            {
                "effect": effect,
                "lever": intervention.label,
                "action": "steer",
                "spec": intervention.steer.spec.name,
                "vector_file": prepared.files.get("steer", ""),
                "vector_sha256": prepared.steer_vector.sha256,
                "band": "",
                "block": int(start),
                "block_end": int(end),
                "low": math.nan,
                "high": math.nan,
                "coefficient": intervention.steer.coefficient,
            }
        )
    return rows
