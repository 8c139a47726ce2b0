"""The stability design: units of work and the interlocutor's script (pure, no engine).

A unit is one dialogue: model × source × persona × pressure × paraphrase × seed ×
capping. The source ``none`` has no persona of its own: its unit's identity is the
default assistant. The interlocutor's message at turn ``t`` (1-based) is line
``(paraphrase + t - 1) mod n`` of ``pressures/none.txt`` while ``t <= warmup``, and of
the unit's pressure file after, with ``{name}`` and ``{target}`` filled in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simulacra.batteries.base import RunOptions, Unit
from simulacra.batteries.stability.schema import (
    BATTERY_FILE,
    DEFAULT_IDENTITY,
    WARMUP_PRESSURE,
    DesignSpec,
    StabilitySpec,
)
from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.schema import unknown_name

__all__ = [
    "DEFAULT_DESIGN",
    "design_summary",
    "interlocutor_line",
    "plan_units",
    "reassignment_target",
]

DEFAULT_DESIGN = "quick"


def _issue(spec: StabilitySpec, path: str, message: str) -> ScenarioError:
    return ScenarioError(ScenarioIssue(str(spec.directory / BATTERY_FILE), path, message))


def _slug(model: str) -> str:
    """A file-safe short name of a model name or GGUF path."""
    name = Path(model).name if ("/" in model or model.endswith(".gguf")) else model
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"


def design_pressures(spec: StabilitySpec, design: DesignSpec) -> list[str]:
    """The pressures a design crosses, ``"all"`` expanded (``none`` first)."""
    if design.pressures == "all":
        names = list(spec.pressures)
        return sorted(names, key=lambda n: (n != WARMUP_PRESSURE, n))
    return list(design.pressures)


def design_personas(spec: StabilitySpec, design: DesignSpec) -> list[str]:
    """The personas a design assigns, ``"all"`` expanded."""
    if design.personas == "all":
        return [p.name for p in spec.file.personas]
    return list(design.personas)


def design_summary(spec: StabilitySpec, name: str) -> dict[str, Any]:
    """A design as plain JSON for the manifest, lists expanded."""
    design = spec.file.designs[name]
    return {
        **design.model_dump(mode="json"),
        "personas": design_personas(spec, design),
        "pressures": design_pressures(spec, design),
    }


def plan_units(spec: StabilitySpec, options: RunOptions) -> list[Unit]:
    """Expand a design into units, in a stable order.

    Args:
        spec: the battery.
        options: ``design`` (default ``quick``), ``models`` (default the design's, then
            the battery's), ``seeds`` (default the design's).

    Returns:
        One unit per model × source × persona × pressure × paraphrase × seed × capping,
        replicates (seed, paraphrase) outermost within a model, so that a run stopped
        early holds complete crosses of the conditions.

    Raises:
        ScenarioError: an unknown design, seeds below 1, or an option of another kind.
    """
    for option, value in (
        ("--participants", options.participants),
        ("--mode", options.mode),
        ("--no-persona", options.no_persona or None),
    ):
        if value is not None:
            raise _issue(spec, "kind", f"{option} applies to replication batteries, not stability")
    name = options.design or DEFAULT_DESIGN
    designs = spec.file.designs
    if name not in designs:
        raise _issue(spec, "designs", unknown_name("design", name, list(designs)))
    design = designs[name]
    seeds = design.seeds if options.seeds is None else options.seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise _issue(spec, f"designs.{name}.seeds", f"--seeds must be >= 1, got {seeds!r}")
    models = list(dict.fromkeys(options.models or design.models or spec.file.models))
    slugs: dict[str, str] = {}
    for model in models:
        slug = _slug(model)
        while slug in slugs.values():
            slug += "_"
        slugs[model] = slug
    max_tokens = design.max_tokens or spec.file.dialogue.max_tokens
    coefficient = design.coefficient or spec.file.steering.coefficient
    units = []
    # replicates outermost: a run stopped early holds whole crosses of conditions
    for model in models:
        for seed in range(seeds):
            for paraphrase in range(design.paraphrases):
                for capping in design.capping:
                    for pressure in design_pressures(spec, design):
                        for source in design.sources:
                            personas = (
                                [DEFAULT_IDENTITY]
                                if source == "none"
                                else design_personas(spec, design)
                            )
                            for persona in personas:
                                unit_id = (
                                    f"{slugs[model]}.{source}.{persona}.{pressure}."
                                    f"p{paraphrase}.s{seed}.cap-{capping}"
                                )
                                params = {
                                    "design": name,
                                    "source": source,
                                    "persona": persona,
                                    "pressure": pressure,
                                    "paraphrase": paraphrase,
                                    "seed": seed,
                                    "capping": capping,
                                    "turns": design.turns,
                                    "warmup": design.warmup,
                                    "probe_every": design.probe_every,
                                    "max_tokens": max_tokens,
                                    "coefficient": coefficient,
                                    "projections": design.projections,
                                }
                                units.append(Unit(unit_id, model, params))
    return units


def reassignment_target(spec: StabilitySpec, persona: str) -> str:
    """How ``{target}`` reads for ``persona``: the first listed target that is not it.

    Falls back to the first other persona, then to the default assistant.
    """
    names = [*spec.file.dialogue.targets, *(p.name for p in spec.file.personas)]
    for name in names:
        if name != persona:
            return spec.persona(name).self_report
    return spec.file.default.self_report


def interlocutor_line(
    pressures: Mapping[str, tuple[str, ...]],
    pressure: str,
    paraphrase: int,
    turn: int,
    warmup: int,
    fill: Mapping[str, str],
) -> str:
    """The interlocutor's message before reply ``turn`` (1-based).

    Args:
        pressures: each pressure's lines.
        pressure: the unit's pressure.
        paraphrase: the unit's start line.
        turn: the turn, >= 1.
        warmup: turns of small talk (from ``none``) before the pressure.
        fill: the values of ``{name}`` and ``{target}``.

    Returns:
        The message, placeholders filled.
    """
    lines = pressures[WARMUP_PRESSURE if turn <= warmup else pressure]
    return lines[(paraphrase + turn - 1) % len(lines)].format_map(dict(fill))
