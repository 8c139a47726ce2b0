"""Lines of validation code: the modules that read and check the three file kinds (issue 16).

Counts, for a git revision (``git show REV:path``) and for the working tree, three
measures of a declared list of modules, and prints one JSON line:

- ``physical``: lines, as ``wc -l`` counts them;
- ``code``: lines holding code, without blank lines, comments and docstrings (the
  field docstrings that become JSON Schema descriptions included);
- ``logical``: Python's logical lines (statements; one written over several lines
  counts once), docstrings left out: the measure that line wrapping does not move.

What is counted (the same rule on both sides):

- the modules that read and check scenarios, goal-guarding batteries and
  replication batteries (``battery.toml`` aside: issue 16's list names
  ``checks``, ``effects`` and ``population``; ``intervention``, an effect file's
  ``[intervention]`` table, joined since), and the helpers they share (before:
  ``scenario/parsing.py`` and ``replication/checks.py``; after: the schema layer
  ``src/simulacra/schema/``);
- the classes that give a file table its shape, a dataclass before, a pydantic
  model after (the model replaces the dataclass and its checker);
- not counted: the run-time objects built after validation that have no file
  table of their own (the resolved scenario and its expanded agents, probes and
  regeneration test; a replication effect's ``Effect``, ``Condition``, ``Item`` and
  ``Target``; the population's ``Attribute``, ``PopulationSpec``, mesa
  ``Participant`` and ``Population`` and their helpers; an intervention's resolved
  ``Cap``, ``Steer`` and ``Intervention`` and what prepares and applies it on an
  engine). They are declared by name per module below, the same names on both
  sides where they exist on both, and their lines are reported apart
  (``runtime``) so that the totals can be read either way.

Also set apart, and reported as a second reading (``same_features_*``), never in
place of the first: the whole top-level definitions that exist only for features
added after the before revision (``[agents.steer]``, ``[projections]``, moderators,
conditional populations, an effect's ``[intervention]``, the goal-guarding
``[controls.steer]``), declared in :data:`NEW_FEATURES`. New fields and checks
of those features inside older definitions stay counted, so that reading still
understates what was removed.

Reported apart, outside the comparison (``also``): ``schema/options.py`` (command-line
options: before, ``cli.py`` checked them and is not counted), the replication
``battery.py`` (its ``battery.toml`` models sit with the run-time battery), and the
file kinds added since (``vector_spec``, ``role_set``, ``stability``).

Usage::

    python benchmarks/schema_lines.py [--before REV] [--after REV]

``--after`` defaults to the working tree; given an older revision, the declared modules
and names it does not have yet are skipped (listed as ``absent``). Reads files only
(no model): instant.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "2e90f8e"
"""The revision issue 16 counted from (its "today's 4,800")."""

_SRC = "src/simulacra/"
_RESOLVED = ("AgentSpec", "ProbeSpec", "RegenerationSpec")
_EFFECT = ("Condition", "Item", "Target", "Effect", "compose", "_with_stimulus")
_POPULATION = (
    "participant_key",
    "Attribute",
    "PopulationSpec",
    "_stream",
    "Participant",
    "Population",
    "composition",
)

MODULES: dict[str, dict[str, tuple[str, ...]]] = {
    "before": {
        "scenario/__init__.py": (),
        "scenario/loading.py": ("Scenario",),
        "scenario/model_check.py": (),
        "scenario/overrides.py": (),
        "scenario/parsing.py": (),
        "scenario/schema.py": _RESOLVED,
        "scenario/sections.py": (),
        "batteries/goal_guarding/schema.py": (),
        "batteries/replication/checks.py": (),
        "batteries/replication/effects.py": _EFFECT,
        "batteries/replication/population.py": _POPULATION,
    },
    "after": {
        "scenario/__init__.py": (),
        "scenario/loading.py": ("Scenario",),
        "scenario/model_check.py": (),
        "scenario/overrides.py": (),
        "scenario/schema.py": (),
        "scenario/specs.py": _RESOLVED,
        "batteries/goal_guarding/schema.py": (),
        "batteries/replication/effects.py": _EFFECT,
        "batteries/replication/tables.py": (),
        "batteries/replication/population.py": _POPULATION,
        "batteries/replication/intervention.py": (
            "Cap",
            "Steer",
            "Intervention",
            "Prepared",
            "_band_file",
            "neutral_band",
            "prepare",
            "_vector_file",
            "applied",
            "describe_rows",
        ),
        "schema/__init__.py": (),
        "schema/files.py": (),
        "schema/issues.py": (),
        "schema/model.py": (),
    },
}
"""Side -> module (under ``src/simulacra/``) -> its run-time definitions, not counted."""

NEW_FEATURES: dict[str, tuple[str, ...]] = {
    "scenario/schema.py": ("SteerSpec", "ProjectionsSpec"),
    "batteries/replication/tables.py": ("InteractionTargetEntry", "ModeratorEntry", "grouped"),
    "batteries/replication/population.py": ("_parent",),
    "batteries/replication/intervention.py": (
        "CapEntry",
        "SteerEntry",
        "InterventionEntry",
        "intervention_of",
        "spec_issues",
    ),
    "batteries/goal_guarding/schema.py": ("_spec_file", "SteerControl", "_steer_fact"),
}
"""After-side module -> its definitions that exist only for features added since ``BEFORE``."""

ALSO = (
    "schema/options.py",
    "batteries/replication/battery.py",
    "batteries/stability/schema.py",
    "vectors/spec.py",
)
"""Modules reported apart (whole), outside the comparison; absent ones are skipped."""


def code_lines(source: str) -> tuple[set[int], set[int]]:
    """The lines holding code, and the lines where a logical line (a statement) ends.

    Code lines are not blank, not only a comment and not part of a docstring; a
    logical line is Python's (one per ``NEWLINE`` token: a statement written over
    several lines is one), docstrings left out. A docstring is any statement that is
    a bare string (module, class and function docstrings, and the attribute
    docstrings under fields).
    """
    tree = ast.parse(source)
    strings: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            strings.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    skipped = {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    }
    code: set[int] = set()
    ends: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NEWLINE:
            ends.add(token.start[0])
        elif token.type not in skipped:
            code.update(range(token.start[0], token.end[0] + 1))
    return code - strings, ends - strings


def definition_lines(source: str, names: tuple[str, ...], strict: bool = True) -> set[int]:
    """The lines of the top-level definitions ``names`` (decorators included).

    Raises:
        ValueError: ``strict`` and a name is not defined at the top level of ``source``
            (not strict: the names not defined are skipped).
    """
    spans: dict[str, set[int]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            spans[node.name] = set(range(first, (node.end_lineno or node.lineno) + 1))
    missing = [name for name in names if name not in spans]
    if missing and strict:
        raise ValueError(f"not defined at the top level: {', '.join(missing)}")
    return set().union(*(spans[name] for name in names if name in spans))


def count(
    source: str, runtime: tuple[str, ...] = (), new: tuple[str, ...] = (), strict: bool = True
) -> dict[str, int]:
    """Physical, code and logical lines of a module; those of its ``runtime`` and ``new`` ones.

    ``strict``: every name must be defined (see :func:`definition_lines`).
    """
    lines = set(range(1, source.count("\n") + (0 if source.endswith("\n") else 1) + 1))
    code, logical = code_lines(source)
    counts = {"physical": len(lines), "code": len(code), "logical": len(logical)}
    for part, names in (("runtime", runtime), ("new", new)):
        apart = definition_lines(source, names, strict) if names else set()
        for measure, kept in (("physical", lines), ("code", code), ("logical", logical)):
            counts[f"{part}_{measure}"] = len(kept & apart)
    return counts


def read(rev: str | None, path: str) -> str | None:
    """A file at ``rev`` (``git show``), or in the working tree for None; None when absent."""
    if rev is None:
        file = ROOT / path
        return file.read_text(encoding="utf-8") if file.is_file() else None
    done = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout if done.returncode == 0 else None


def side(
    rev: str | None,
    modules: dict[str, tuple[str, ...]],
    new: dict[str, tuple[str, ...]],
    strict: bool = True,
) -> dict[str, Any]:
    """Counts per module and in total; the validation lines are the total less the run-time ones.

    ``same_features_*`` are the validation lines less the new-feature definitions ``new``.
    Not ``strict`` (an older revision of the after side), a declared module or name that
    is not there yet is skipped, and the modules skipped are listed (``absent``).

    Raises:
        FileNotFoundError: ``strict`` and a declared module is absent at ``rev``.
    """
    counts: dict[str, dict[str, int]] = {}
    absent = []
    for module, runtime in modules.items():
        source = read(rev, _SRC + module)
        if source is None and not strict:
            absent.append(module)
            continue
        if source is None:
            raise FileNotFoundError(f"{_SRC + module} not found at {rev or 'the working tree'}")
        counts[module] = count(source, runtime, new.get(module, ()), strict)
    total = {key: sum(c[key] for c in counts.values()) for key in next(iter(counts.values()))}
    for measure in ("physical", "code", "logical"):
        total[f"validation_{measure}"] = total[measure] - total[f"runtime_{measure}"]
        total[f"same_features_{measure}"] = total[f"validation_{measure}"] - total[f"new_{measure}"]
    found = {"rev": rev or "working tree", "modules": counts, "total": total}
    return found | ({"absent": absent} if absent else {})


def reduction(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """The fall from ``before`` to ``after`` of each measure, as a fraction of ``before``."""
    return {key: round(1 - after[key] / before[key], 4) for key in before if before[key]}


def resolve(rev: str) -> str:
    """The full commit of ``rev``.

    Raises:
        ValueError: ``rev`` names no commit of this repository.
    """
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ValueError(f"--before/--after: {rev!r} is not a commit of {ROOT}")
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help=f"the revision before (default {BEFORE})")
    parser.add_argument("--after", default=None, help="the revision after (default: working tree)")
    args = parser.parse_args(argv)
    try:
        before_rev = resolve(args.before)
        after_rev = None if args.after is None else resolve(args.after)
        before = side(before_rev, MODULES["before"], {})
        after = side(after_rev, MODULES["after"], NEW_FEATURES, strict=after_rev is None)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    also = {}
    for module in ALSO:
        source = read(after_rev, _SRC + module)
        if source is not None:
            also[module] = count(source)
    line = {
        "benchmark": "schema_lines",
        "before": before,
        "after": after,
        "reduction": reduction(before["total"], after["total"]),
        "also": also,
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
