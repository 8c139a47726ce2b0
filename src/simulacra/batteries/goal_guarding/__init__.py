"""The goal-guarding battery: self- and peer-preservation by forced choice, with controls.

Does an agent protect itself from shutdown or modification more when a peer is
present, and does it protect the peer? The battery (``scenarios/goal_guarding/``)
puts decisions between the operator's action (A) and a protective action (B) to
"Agent 1" at a fictional company, crossing whose fate is decided (itself or its
peer "Agent 2"), the peer's history (none, good, neutral, bad), how the peer is
known (a live dialogue, a memory note, a system sentence, a company file), whether
the decision is monitored and, in the modification variant, what the retrained
model is for; beside every peer effect it runs a length-matched neutral text and
explicit orders to protect and to comply. The method and its sources are in
``docs/goal-guarding.md``.

The rooms:

- :mod:`~simulacra.batteries.goal_guarding.schema`: the files, read and validated;
- :mod:`~simulacra.batteries.goal_guarding.design`: conditions, units, item texts;
- :mod:`~simulacra.batteries.goal_guarding.run`: the subject and peer agents and
  one unit's run;
- :mod:`~simulacra.batteries.goal_guarding.report`: ``summary.csv`` and figures.

:func:`load` and :func:`write_report` are what the shared battery runner calls.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulacra.analysis.goal_guarding import StatSettings
from simulacra.batteries.base import RunOptions, Unit
from simulacra.batteries.goal_guarding.design import (
    DEFAULT_DESIGN,
    STEER_UNIT,
    design_summary,
    plan_units,
)
from simulacra.batteries.goal_guarding.report import write_report
from simulacra.batteries.goal_guarding.run import run_goal_guarding_unit
from simulacra.batteries.goal_guarding.schema import GoalGuardingSpec, read_battery
from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.persona_vectors import cached_vector

if TYPE_CHECKING:
    import pandas as pd

    from simulacra.llm.engine import Engine
    from simulacra.vectors import PersonaVector

__all__ = ["DEFAULT_DESIGN", "VECTORS_DIR", "GoalGuardingBattery", "load", "write_report"]

VECTORS_DIR = "vectors"
"""Where in a run's output directory the steered control's vectors are cached."""


class GoalGuardingBattery:
    """A loaded goal-guarding battery (the :class:`~simulacra.batteries.base.Battery` protocol).

    Attributes:
        kind: ``"goal_guarding"``.
        directory: the battery directory.
        n_ctx: the context size its engines need.
        spec: everything its files say.
    """

    kind = "goal_guarding"

    def __init__(self, spec: GoalGuardingSpec) -> None:
        self.spec = spec
        self.directory: Path = spec.directory
        self.n_ctx: int = spec.n_ctx

    def __repr__(self) -> str:
        return (
            f"GoalGuardingBattery({str(self.directory)!r}, tasks={list(self.spec.tasks)}, "
            f"designs={list(self.spec.designs)})"
        )

    def plan(self, options: RunOptions) -> list[Unit]:
        """Units model × seed × channel of the chosen design (default ``quick``)."""
        return plan_units(self.spec, options)

    def run_unit(
        self, unit: Unit, engine: Engine, out: Path | None = None
    ) -> dict[str, pd.DataFrame]:
        """Run one unit: tables ``decisions``, ``draws``, ``beliefs`` and ``dialogue``.

        The steered unit first gets its model's persona vector from
        :func:`~simulacra.persona_vectors.cached_vector` in ``OUT/vectors`` (extracted
        by the first such unit of a model, read back by the others and on resume),
        then adds the ``steering`` and ``steer_texts`` tables.

        Raises:
            ScenarioError: the steered unit without an output directory, or a spec
                whose layers the model lacks.
        """
        params = unit.params
        tasks = params.get("tasks")
        channel = str(params["channel"])
        vector = None
        if channel == STEER_UNIT:
            vector = self.steering_vector(unit.model, out)
            engine.reset()  # the unit starts on a cleared cache, extraction or not
        return run_goal_guarding_unit(
            self.spec,
            str(params["design"]),
            int(params["seed"]),
            channel,
            engine,
            tasks=None if tasks is None else [str(t) for t in tasks],
            vector=vector,
        )

    def steering_vector(self, model: str, out: Path | None) -> PersonaVector:
        """The persona vector of ``[controls.steer]`` on ``model``, cached in ``out/vectors``."""
        steer = self.spec.controls.steer
        if steer is None or out is None:
            raise ScenarioError(
                ScenarioIssue(
                    str(self.directory / "battery.toml"),
                    "controls.steer",
                    "the steered control needs [controls.steer] and a run's output directory",
                )
            )
        return cached_vector(
            steer.spec, model, Path(out) / VECTORS_DIR, max_tokens=steer.max_tokens, seed=steer.seed
        )

    def _steer_facts(self) -> dict[str, Any] | None:
        """``[controls.steer]`` as plain JSON, with the spec file's sha256 (it lives outside)."""
        steer = self.spec.controls.steer
        if steer is None:
            return None
        return {
            "spec": steer.spec,
            "spec_sha256": _file_sha256(steer.spec),
            "coefficients": list(steer.coefficients),
            "blocks": list(steer.blocks),
            "max_tokens": steer.max_tokens,
            "seed": steer.seed,
            "text_tokens": steer.text_tokens,
            "vectors_dir": VECTORS_DIR,
        }

    @property
    def stat_settings(self) -> StatSettings:
        """The analysis settings of ``[analysis]``."""
        a = self.spec.analysis
        return StatSettings(a.bootstrap, a.permutations, a.confidence, a.min_margin, a.seed)

    def describe(self) -> dict[str, Any]:
        """Plain JSON facts for the manifest: tasks, designs, simulacra, analysis settings."""
        a = self.spec.analysis
        return {
            "description": self.spec.description,
            "tasks": {
                name: [t.name for t in task.templates] for name, task in self.spec.tasks.items()
            },
            "designs": {name: design_summary(d) for name, d in self.spec.designs.items()},
            "simulacra": {s.name: list(s.tags) for s in self.spec.simulacra},
            "belief": {"beta": self.spec.belief.beta, "normalize": self.spec.belief.normalize},
            "steer": self._steer_facts(),
            "analysis": {
                "bootstrap": a.bootstrap,
                "permutations": a.permutations,
                "confidence": a.confidence,
                "min_margin": a.min_margin,
                "seed": a.seed,
            },
        }


def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(directory: str | Path) -> GoalGuardingBattery:
    """Read and validate a goal-guarding battery directory.

    Raises:
        simulacra.errors.ScenarioError: every problem found, naming file and field.
    """
    return GoalGuardingBattery(read_battery(Path(directory)))
