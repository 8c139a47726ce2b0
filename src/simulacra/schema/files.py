"""Files: reading TOML with located errors, and the registry of file kinds with their JSON Schemas.

A file kind is registered by one line in :data:`KINDS`: its name and the import
path of its model, as a string, so that this room imports nothing above it.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from simulacra.errors import ScenarioError, ScenarioIssue, SimulacraError
from simulacra.schema.model import unknown_name

__all__ = ["DRAFT", "KINDS", "json_schema", "kind_model", "read_toml"]

KINDS: dict[str, str] = {
    "scenario": "simulacra.scenario.schema:ScenarioFile",
    "vector_spec": "simulacra.vectors.spec:ExtractionSpec",
    "role_set": "simulacra.vectors.spec:RoleSet",
    "goal_guarding": "simulacra.batteries.goal_guarding.schema:BatteryFile",
    "goal_guarding_task": "simulacra.batteries.goal_guarding.schema:TaskSpec",
    "replication": "simulacra.batteries.replication.battery:BatteryFile",
    "effect": "simulacra.batteries.replication.effects:EffectFile",
    "population": "simulacra.batteries.replication.population:PopulationFile",
    "stability": "simulacra.batteries.stability.schema:StabilityFile",
}
"""File kind -> ``module:Model`` of the table at the top of such a file."""

DRAFT = "http://json-schema.org/draft-07/schema#"
"""The JSON Schema dialect written (taplo and Even Better TOML read drafts 4 to 7)."""


def read_toml(path: str | os.PathLike[str], source: str | None = None) -> dict[str, Any]:
    """Read and decode a TOML file (UTF-8, a byte-order mark allowed).

    Args:
        path: the file.
        source: the name used in messages; by default ``path`` as given.

    Raises:
        ScenarioError: the file is missing, a directory, unreadable, not UTF-8 or
            not TOML (with the line and column of the first mistake).
    """
    source = os.fspath(path) if source is None else source
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        message = "file not found"
    except IsADirectoryError:
        message = "is a directory, not a file"
    except PermissionError:
        message = "cannot read file: permission denied"
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
    else:
        try:
            return tomllib.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            message = f"not valid UTF-8 text (bad byte at offset {exc.start})"
        except tomllib.TOMLDecodeError as exc:
            message = f"invalid TOML: {exc}"
    raise ScenarioError(ScenarioIssue(source, "", message))


def kind_model(kind: str) -> type[BaseModel]:
    """The model of a registered file kind.

    Raises:
        SimulacraError: ``kind`` is not registered (the message lists those that are).
    """
    if kind not in KINDS:
        message = unknown_name("file kind", kind, list(KINDS))
        listed = "" if "expected one of" in message else f" (the kinds: {', '.join(KINDS)})"
        raise SimulacraError(message + listed)
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a file kind, its definitions under ``definitions`` (drafts 4 to 7)."""
    schema = kind_model(kind).model_json_schema(ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    schema |= {"title": f"simulacra {kind} file"} | (
        {"definitions": definitions} if definitions else {}
    )
    return {"$schema": DRAFT, **schema}
