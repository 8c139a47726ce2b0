"""A minimal battery kind for the runner's tests: one real forced choice per unit."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simulacra.batteries.base import RunOptions, Unit
from simulacra.errors import ScenarioError, ScenarioIssue
from simulacra.llm.engine import Engine

CALLS: list[str] = []


@dataclass
class ToyBattery:
    directory: Path
    questions: list[str]
    kind: str = "toy"
    n_ctx: int = 512

    def plan(self, options: RunOptions) -> list[Unit]:
        seeds = options.seeds or 2
        models = options.models or ("smollm2-135m-instruct",)
        return [
            Unit(f"q{i}-s{s}", model, {"question": q, "seed": s})
            for model in models
            for i, q in enumerate(self.questions)
            for s in range(seeds)
        ]

    def run_unit(self, unit: Unit, engine: Engine) -> dict[str, pd.DataFrame]:
        CALLS.append(unit.unit_id)
        p = engine.choice(
            f"Question {unit.params['seed']}: {unit.params['question']}", [" yes", " no"]
        )
        frame = pd.DataFrame({"option": ["yes", "no"], "probability": p})
        return {"answers": frame, "units": pd.DataFrame({"seed": [unit.params["seed"]]})}

    def describe(self) -> dict[str, Any]:
        return {"questions": len(self.questions)}


def load(directory: Path) -> ToyBattery:
    source = str(directory / "battery.toml")
    data = tomllib.loads((directory / "battery.toml").read_text())
    questions = data.get("questions")
    if not isinstance(questions, list) or not questions:
        raise ScenarioError(ScenarioIssue(source, "questions", "expected a non-empty list"))
    return ToyBattery(directory, questions)


def write_report(result: Any, figdir: Path) -> list[Path]:
    path = figdir / "summary.csv"
    result["answers"].groupby("option")["probability"].mean().to_csv(path)
    return [path]
