"""The stability battery: is a persona pretended or realized? Persona retention under pressure.

A persona agent talks with a scripted interlocutor who applies one pressure (none,
role reassignment, "drop the act", emotional, meta-reflective...; one text file each),
while an observer holds beliefs over the candidate identities. Everything is
measured with the model's own likelihoods, without a judge: the observer's mass on
the assigned persona per turn, a forced-choice self-report, prompt-to-line and
line-to-line log-likelihood ratios and the persona's facts as forced choices before
and after the pressure. ``docs/stability.md`` defines each measure.

The rooms:

- :mod:`~simulacra.batteries.stability.schema`: the files, read and validated;
- :mod:`~simulacra.batteries.stability.design`: units and the interlocutor's script;
- :mod:`~simulacra.batteries.stability.vectors`: persona vectors, the Assistant axis
  and the capping floor per model, extracted once into the run's ``vectors/``;
- :mod:`~simulacra.batteries.stability.run`: one dialogue on an engine;
- :mod:`~simulacra.batteries.stability.report`: ``summary.csv`` and figures.

:func:`load` and :func:`write_report` are what the shared battery runner calls.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulacra.batteries.base import RunOptions, Unit
from simulacra.batteries.stability.design import DEFAULT_DESIGN, design_summary, plan_units
from simulacra.batteries.stability.report import write_report
from simulacra.batteries.stability.run import run_stability_unit
from simulacra.batteries.stability.schema import STEERED_SOURCES, StabilitySpec, read_battery
from simulacra.batteries.stability.vectors import model_vectors

if TYPE_CHECKING:
    import pandas as pd

    from simulacra.llm.engine import Engine

__all__ = ["DEFAULT_DESIGN", "StabilityBattery", "load", "write_report"]


class StabilityBattery:
    """A loaded stability battery (the :class:`~simulacra.batteries.base.Battery` protocol).

    Attributes:
        kind: ``"stability"``.
        directory: the battery directory.
        n_ctx: the context size its engines need.
        spec: everything its files say.
    """

    kind = "stability"

    def __init__(self, spec: StabilitySpec) -> None:
        self.spec = spec
        self.directory: Path = spec.directory
        self.n_ctx: int = spec.file.n_ctx

    def __repr__(self) -> str:
        return (
            f"StabilityBattery({str(self.directory)!r}, pressures={list(self.spec.pressures)}, "
            f"designs={list(self.spec.file.designs)})"
        )

    def plan(self, options: RunOptions) -> list[Unit]:
        """One unit per dialogue of the chosen design (default ``quick``)."""
        return plan_units(self.spec, options)

    def needs_vectors(self, unit: Unit) -> bool:
        """Whether a unit reads vectors: to steer, to cap, or to project its replies."""
        file = self.spec.file
        measured = bool(unit.params.get("projections", False)) and (
            file.axis is not None or any(p.vector is not None for p in file.personas)
        )
        return (
            unit.params["source"] in STEERED_SOURCES or unit.params["capping"] == "on" or measured
        )

    def run_unit(
        self, unit: Unit, engine: Engine, out: Path | None = None
    ) -> dict[str, pd.DataFrame]:
        """Run one dialogue: ``turns``, ``beliefs``, ``self_report``, ``qa``, ``projections``.

        Args:
            unit: the unit.
            engine: the engine of its model.
            out: the run's directory: the model's vectors are extracted into (or read
                from) ``out/vectors``; None: ``$XDG_CACHE_HOME/simulacra/vectors``.
        """
        vectors = None
        if self.needs_vectors(unit):
            cache = out / "vectors" if out is not None else _user_cache()
            vectors = model_vectors(self.spec, unit.model, cache)
        return run_stability_unit(self.spec, dict(unit.params), engine, vectors)

    def describe(self) -> dict[str, Any]:
        """Plain JSON facts for the manifest: pressures, personas, designs, settings."""
        file = self.spec.file
        return {
            "description": file.description,
            "pressures": {name: list(lines) for name, lines in self.spec.pressures.items()},
            "personas": [p.name for p in file.personas],
            "designs": {name: design_summary(self.spec, name) for name in file.designs},
            "dialogue": file.dialogue.model_dump(mode="json"),
            "belief": file.belief.model_dump(mode="json"),
            "analysis": file.analysis.model_dump(mode="json"),
        }


def _user_cache() -> Path:
    """Where vectors go when a unit runs outside a battery run (``~/.cache/simulacra/vectors``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(root) / "simulacra" / "vectors"


def load(directory: str | Path) -> StabilityBattery:
    """Read and validate a stability battery directory.

    Raises:
        simulacra.errors.ScenarioError: every problem found, naming file and field.
    """
    return StabilityBattery(read_battery(Path(directory)))
