"""Command-line options, validated on the schema layer like a file.

A count given on the command line (``--seeds``, ``--participants``, ``--workers``,
``--threads``, ``--replicates``) must be at least 1, a seed at least 0, and an
output path (``--out``) must not be an existing file. A mistake is an issue
naming the option and what was expected (exit status 2), never a silent default.
"""

from __future__ import annotations

import argparse
import os
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from simulacra.schema import Count, SchemaModel, validate

__all__ = ["CommandOptions", "check_options"]


def _not_a_file(path: str) -> str:
    if os.path.exists(path) and not os.path.isdir(path):
        raise PydanticCustomError(
            "out", f"{path} exists and is not a directory; choose another --out"
        )
    return path


class CommandOptions(SchemaModel):
    """The options of ``simulacra run``, ``sweep`` and ``battery run`` with a value to check."""

    seed: Annotated[int, Field(ge=0)] | None = Field(None, alias="--seed")
    """The seed."""
    seeds: Count | None = Field(None, alias="--seeds")
    """Seeds per condition."""
    reask_runs: Count | None = Field(None, alias="--reask-runs")
    """Answer runs of each re-asked participant."""
    participants: Count | None = Field(None, alias="--participants")
    """The population size."""
    replicates: Count | None = Field(None, alias="--replicates")
    """Runs per grid point."""
    workers: Count | None = Field(None, alias="--workers")
    """Worker processes."""
    threads: Count | None = Field(None, alias="--threads")
    """llama.cpp threads per engine."""
    out: Annotated[str, AfterValidator(_not_a_file)] | None = Field(None, alias="--out")
    """The output directory."""


def check_options(args: argparse.Namespace, command: str) -> None:
    """Validate the options of ``args`` that :class:`CommandOptions` knows.

    Raises:
        ScenarioError: one issue per bad option (``simulacra battery run: --participants:
            must be >= 1, got 0``).
    """
    given = {
        f"--{name.replace('_', '-')}": value
        for name, value in vars(args).items()
        if name in CommandOptions.model_fields and value is not None
    }
    validate(CommandOptions, given, command)
