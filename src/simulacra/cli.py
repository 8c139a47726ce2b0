"""The command line: ``simulacra run / sweep / validate / report / models``.

User mistakes (a bad scenario, a missing model, an existing output directory) are
printed as ``error: ...`` lines and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from simulacra.errors import ScenarioError, SimulacraError

__all__ = ["main"]

EXIT_USER_ERROR = 2


def _print_error(err: Exception) -> None:
    if isinstance(err, ScenarioError):
        from simulacra.scenario import format_errors

        print(format_errors(err), file=sys.stderr)
    else:
        print(f"error: {err}", file=sys.stderr)


def _cmd_validate(args: argparse.Namespace) -> int:
    from simulacra.scenario import format_errors, load_scenario

    status = 0
    for path in args.scenarios:
        try:
            scenario = load_scenario(path, args.set)
        except ScenarioError as err:
            print(format_errors(err), file=sys.stderr)
            status = EXIT_USER_ERROR
            continue
        print(
            f"{path}: ok ({len(scenario.agents)} agents, {len(scenario.simulacra)} simulacra, "
            f"{scenario.dialogue.turns} turns)"
        )
    return status


def _cmd_run(args: argparse.Namespace) -> int:
    from simulacra.runner import default_run_id, run
    from simulacra.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.set)
    seed = scenario.seed if args.seed is None else args.seed
    out = Path(args.out) if args.out else Path("results") / default_run_id(scenario, seed)
    if out.exists() and not args.overwrite:
        raise SimulacraError(f"{out} already exists; choose another --out or pass --overwrite")
    turns = scenario.dialogue.turns
    started = time.perf_counter()
    print(
        f"running {args.scenario}: {len(scenario.agents)} agents, {turns} turns, seed {seed}",
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
    from simulacra.sweep import parse_grid, sweep

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
    )
    failed = int((runs["status"] == "failed").sum())
    print(f"{len(runs)} runs, {len(runs) - failed} done, {failed} failed; tables in {args.out}")
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from simulacra.report import write_report

    written = write_report(args.directory, args.out)
    for path in written:
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``simulacra`` command."""
    parser = argparse.ArgumentParser(
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
    p.add_argument("--executor", choices=("local", "dask"), default="local")
    p.add_argument("--address", help="Dask scheduler address (default: a LocalCluster)")
    p.add_argument("--seed", type=int, help="the sweep seed (default: the scenario's seed)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_set(p)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("report", help="figures and summary.csv for a run or sweep directory")
    p.add_argument("directory", help="run or sweep directory")
    p.add_argument("--out", required=True, help="directory for the figures")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SimulacraError as err:
        _print_error(err)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
