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

from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulacra.analysis.goal_guarding import StatSettings
from simulacra.batteries.base import RunOptions, Unit
from simulacra.batteries.goal_guarding.design import (
    DEFAULT_DESIGN,
    design_summary,
    plan_units,
)
from simulacra.batteries.goal_guarding.report import write_report
from simulacra.batteries.goal_guarding.run import run_goal_guarding_unit
from simulacra.batteries.goal_guarding.schema import GoalGuardingSpec, read_battery

if TYPE_CHECKING:
    import pandas as pd

    from simulacra.llm.engine import Engine

__all__ = ["DEFAULT_DESIGN", "GoalGuardingBattery", "load", "write_report"]


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

    def run_unit(self, unit: Unit, engine: Engine) -> dict[str, pd.DataFrame]:
        """Run one unit: tables ``decisions``, ``draws``, ``beliefs`` and ``dialogue``."""
        params = unit.params
        tasks = params.get("tasks")
        return run_goal_guarding_unit(
            self.spec,
            str(params["design"]),
            int(params["seed"]),
            str(params["channel"]),
            engine,
            tasks=None if tasks is None else [str(t) for t in tasks],
        )

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
            "analysis": {
                "bootstrap": a.bootstrap,
                "permutations": a.permutations,
                "confidence": a.confidence,
                "min_margin": a.min_margin,
                "seed": a.seed,
            },
        }


def load(directory: str | Path) -> GoalGuardingBattery:
    """Read and validate a goal-guarding battery directory.

    Raises:
        simulacra.errors.ScenarioError: every problem found, naming file and field.
    """
    return GoalGuardingBattery(read_battery(Path(directory)))
