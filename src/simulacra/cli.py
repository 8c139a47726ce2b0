"""The command line: ``simulacra run / sweep / validate / battery / report / models / schema``.

User mistakes (a bad scenario, a missing model, an existing output directory) are
printed as ``error: ...`` lines and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulacra.errors import ScenarioError, SimulacraError, SimulacraWarning

__all__ = ["main"]

EXIT_USER_ERROR = 2


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default in ``--help``, unless it is unset (None, False, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, []):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose ``--help`` (and its subcommands') shows the defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 turn"``, ``"3 turns"``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _print_error(err: Exception) -> None:
    if isinstance(err, ScenarioError):
        from simulacra.scenario import format_errors

        print(format_errors(err), file=sys.stderr)
    else:
        print(f"error: {err}", file=sys.stderr)


def _cmd_validate(args: argparse.Namespace) -> int:
    from simulacra.scenario import format_errors, load_scenario
    from simulacra.scenario.model_check import check_model

    status = 0
    for path in args.scenarios:
        try:
            scenario = load_scenario(path, args.set)
            check_model(scenario)
        except ScenarioError as err:
            print(format_errors(err), file=sys.stderr)
            status = EXIT_USER_ERROR
            continue
        print(
            f"{path}: ok ({_count(len(scenario.agents), 'agent')}, "
            f"{_count(len(scenario.simulacra), 'simulacrum', 'simulacra')}, "
            f"{_count(scenario.dialogue.turns, 'turn')})"
        )
    return status


def _cmd_run(args: argparse.Namespace) -> int:
    from simulacra.scenario import load_scenario
    from simulacra.scenario.model_check import check_model
    from simulacra.schema.options import check_options
    from simulacra.simulation.runner import default_run_id, run

    check_options(args, "simulacra run")
    scenario = load_scenario(args.scenario, args.set)
    check_model(scenario)
    seed = scenario.seed if args.seed is None else args.seed
    out = Path(args.out) if args.out else Path("results") / default_run_id(scenario, seed)
    if out.exists() and not args.overwrite:
        raise SimulacraError(f"{out} already exists; choose another --out or pass --overwrite")
    turns = scenario.dialogue.turns
    started = time.perf_counter()
    print(
        f"running {args.scenario}: {_count(len(scenario.agents), 'agent')}, "
        f"{_count(turns, 'turn')}, seed {seed}",
        file=sys.stderr,
    )

    def progress(model: object) -> None:
        speaker = model.last_speaker
        text = model.history[-1].text
        clipped = text if len(text) <= 70 else text[:67] + "..."
        print(
            f"  turn {model.turn:>3}/{turns}  {speaker.name} (as {speaker.simulacrum}): {clipped}",
            file=sys.stderr,
            flush=True,
        )

    result = run(scenario, seed=seed, progress=None if args.quiet else progress)
    result.save(out, overwrite=args.overwrite)
    elapsed = time.perf_counter() - started
    print(f"\n{'agent':<12} {'MAP (first -> last)':<32} {'normalised entropy':>20}")
    for row in result.summary().itertuples():
        maps = f"{row.map_first} -> {row.map_last}"
        entropy = f"{row.entropy_first:.2f} -> {row.entropy_last:.2f}"
        print(f"{row.agent:<12} {maps:<32} {entropy:>20}")
    timings = result.manifest["timings"]
    print(
        f"\nwrote {out}  ({elapsed:.1f} s, {timings['engine_s'] / max(elapsed, 1e-9):.0%} "
        "inside the engine)"
    )
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from simulacra.llm.models import DEFAULT_MODEL, REGISTRY, resolve_model

    for name, entry in REGISTRY.items():
        default = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{default}: {entry.description}")
        try:
            resolved = resolve_model(name)
        except SimulacraError as err:
            print(f"  not installed: {err}")
            continue
        print(f"  path:   {resolved.path}\n  sha256: {resolved.sha256}")
        print(f"  format: {entry.chat_format}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from simulacra.schema.options import check_options
    from simulacra.sweep import parse_grid, sweep

    check_options(args, "simulacra sweep")
    runs = sweep(
        args.scenario,
        grid=parse_grid(args.grid),
        replicates=args.replicates,
        out=args.out,
        overrides=args.set,
        seed=args.seed,
        workers=args.workers,
        executor=args.executor,
        address=args.address,
        progress=not args.quiet,
        paired=args.paired,
    )
    failed = int((runs["status"] == "failed").sum())
    print(f"{len(runs)} runs, {len(runs) - failed} done, {failed} failed; tables in {args.out}")
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from simulacra.report import report_directory

    written, notes = report_directory(args.directory, args.out, run_id=args.run)
    for note in notes:
        print(note, file=sys.stderr)
    for path in written:
        print(path)
    return 0


def _cmd_battery_validate(args: argparse.Namespace) -> int:
    from simulacra.batteries.runner import validate_battery
    from simulacra.scenario import format_errors

    status = 0
    for directory in args.directories:
        try:
            battery = validate_battery(directory)
        except ScenarioError as err:
            print(format_errors(err), file=sys.stderr)
            status = EXIT_USER_ERROR
            continue
        print(f"{directory}: ok ({battery.kind} battery)")
    return status


def _cmd_battery_run(args: argparse.Namespace) -> int:
    from simulacra.batteries.base import RunOptions
    from simulacra.batteries.runner import run_battery
    from simulacra.schema.options import check_options

    check_options(args, "simulacra battery run")
    extra: dict[str, Any] = {}
    if args.tasks:
        extra["tasks"] = list(args.tasks)
    if args.effects:
        extra["effects"] = list(args.effects)
    if args.reask_runs is not None:
        extra["reask_runs"] = args.reask_runs
    options = RunOptions(
        design=args.design,
        models=tuple(args.model),
        seeds=args.seeds,
        participants=args.participants,
        mode=args.mode,
        no_persona=args.no_persona,
        n_threads=args.threads,
        extra=extra,
    )
    started = time.perf_counter()
    result = run_battery(
        args.directory,
        args.out,
        options,
        workers=args.workers,
        executor=args.executor,
        address=args.address,
        progress=not args.quiet,
    )
    rows = ", ".join(f"{name} {len(table)} rows" for name, table in result.tables.items())
    print(f"wrote {args.out} ({time.perf_counter() - started:.1f} s): {rows}")
    print(f"next: simulacra report {args.out} --out {Path(args.out) / 'report'}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    import json

    from simulacra.schema import json_schema

    print(json.dumps(json_schema(args.kind), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``simulacra`` command."""
    parser = _Parser(
        prog="simulacra",
        description="Agent-based persona simulation on local language models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_set(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a scenario field, e.g. dialogue.turns=4 (repeatable)",
        )

    p = sub.add_parser("run", help="run a scenario and write its results")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--out", help="run directory to write (default results/<scenario>-s<seed>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true", help="no turn-by-turn progress")
    add_set(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check scenario files")
    p.add_argument("scenarios", nargs="+", help="scenario TOML files")
    add_set(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("models", help="list the embedded models")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("sweep", help="run a scenario over a parameter grid with replicates")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a swept field and its values, e.g. belief.beta=0.5,1 (repeatable)",
    )
    p.add_argument("--replicates", type=int, default=1, help="runs per grid point")
    p.add_argument("--out", required=True, help="sweep directory (resumed if it exists)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="local processes, or a Dask cluster",
    )
    p.add_argument("--address", help="Dask scheduler address (default: a LocalCluster)")
    p.add_argument("--seed", type=int, help="the sweep seed (default: the scenario's seed)")
    p.add_argument(
        "--paired",
        action="store_true",
        help="replicate r uses the same seed at every grid point, for paired comparisons "
        "(see docs/reading-the-report.md)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_set(p)
    p.set_defaults(func=_cmd_sweep)

    battery = sub.add_parser(
        "battery", help="run or validate a battery directory (goal guarding, replication)"
    ).add_subparsers(dest="battery_command", required=True)
    p = battery.add_parser(
        "run",
        help="run a battery into an output directory (resumed if it exists)",
    )
    p.add_argument("directory", help="battery directory (holding battery.toml)")
    p.add_argument("--out", required=True, help="output directory (resumed if it exists)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="model name or GGUF path (repeatable; default: the battery's models)",
    )
    p.add_argument("--design", help="named design or size of the battery (e.g. smoke, quick, full)")
    p.add_argument(
        "--seeds", type=int, help="seeds per condition (goal guarding; default: the design's)"
    )
    p.add_argument(
        "--tasks", nargs="+", metavar="TASK", help="only these tasks of the design (goal guarding)"
    )
    p.add_argument(
        "--effects", nargs="+", metavar="EFFECT", help="only these studies (replication)"
    )
    p.add_argument(
        "--reask-runs",
        type=int,
        help="answer runs of each re-asked participant, 1 = no re-asking (replication)",
    )
    p.add_argument("--participants", type=int, help="population size M (replication)")
    p.add_argument("--mode", choices=("sampled", "expected"), help="answering mode (replication)")
    p.add_argument(
        "--no-persona", action="store_true", help="ask the bare model, without persona prompts"
    )
    p.add_argument("--threads", type=int, help="llama.cpp threads per engine (default: all cores)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--address", help="Dask scheduler address (default: a LocalCluster)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_battery_run)
    p = battery.add_parser("validate", help="check battery directories")
    p.add_argument("directories", nargs="+", help="battery directories")
    p.set_defaults(func=_cmd_battery_validate)

    from simulacra.schema import KINDS

    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of a file kind, for editors",
        description="Print the JSON Schema of a file kind (for taplo / Even Better TOML: "
        "simulacra schema scenario > scenario.schema.json, then '#:schema "
        "./scenario.schema.json' as a scenario's first line). The kinds: " + ", ".join(KINDS),
    )
    p.add_argument("kind", metavar="KIND", help="the file kind: " + ", ".join(KINDS))
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser(
        "report", help="figures and summary.csv for a run, sweep or battery directory"
    )
    p.add_argument("directory", help="run, sweep or battery output directory")
    p.add_argument("--out", required=True, help="directory for the figures")
    p.add_argument(
        "--run",
        metavar="RUN_ID",
        help="the run whose agents the posterior heatmap shows (a sweep's run ids are in "
        "its runs.parquet; default: the first run)",
    )
    p.set_defaults(func=_cmd_report)
    return parser


def _plain_warnings(show: Any) -> Any:
    """A ``warnings.showwarning`` printing :class:`SimulacraWarning` as ``warning: ...``."""

    def showwarning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, SimulacraWarning):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, *args, **kwargs)

    return showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _plain_warnings(warnings.showwarning)
            return args.func(args)
    except SimulacraError as err:
        _print_error(err)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (head, less) stopped reading: nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
