"""The command line: ``simulacra run / sweep / validate / battery / report / models / vectors``.

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

    from simulacra.sweep.progress import Heartbeat

    heartbeat = Heartbeat(enabled=not args.quiet)

    def progress(model: object) -> None:
        speaker = model.last_speaker
        text = model.history[-1].text
        clipped = text if len(text) <= 70 else text[:67] + "..."
        print(
            f"  turn {model.turn:>3}/{turns}  {speaker.name} (as {speaker.simulacrum}): {clipped}",
            file=sys.stderr,
            flush=True,
        )
        if model.turn >= turns:
            heartbeat.step("writing the run directory", False)

    heartbeat.step("loading the model and starting the dialogue", False)
    with heartbeat:
        result = run(
            scenario,
            seed=seed,
            progress=None if args.quiet else progress,
            status=None if args.quiet else heartbeat.step,
        )
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


def _check_counts(args: argparse.Namespace, command: str, *names: str) -> None:
    """Counts of a vectors command (``--max-tokens``, ...) must be >= 1 when given."""
    from simulacra.errors import ScenarioIssue

    issues = [
        ScenarioIssue(command, "--" + name.replace("_", "-"), f"must be >= 1, got {value}")
        for name in names
        if (value := getattr(args, name)) is not None and value < 1
    ]
    if issues:
        raise ScenarioError(issues)


def _vector_out(path: str) -> Path:
    out = Path(path)
    if out.exists():
        raise SimulacraError(f"{out} already exists; choose another --out (nothing was written)")
    if out.suffix != ".gguf":
        raise SimulacraError(f"--out {out}: expected a .gguf file name")
    return out


def _cmd_vectors_extract(args: argparse.Namespace) -> int:
    from simulacra.persona_vectors import extract_vector
    from simulacra.schema.options import check_options
    from simulacra.vectors import load_spec, write_control_vector

    check_options(args, "simulacra vectors extract")
    _check_counts(args, "simulacra vectors extract", "max_tokens")
    out = _vector_out(args.out)
    spec = load_spec(args.spec)
    started = time.perf_counter()
    vector = extract_vector(
        spec,
        args.model,
        layers=args.layer or None,
        source=args.spec,
        max_tokens=args.max_tokens,
        seed=args.seed,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if 0 in vector.layers:
        print("note: block 0 cannot be steered by llama.cpp; it is left out", file=sys.stderr)
    write_control_vector(vector, out, drop_layer_zero=True)
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s)")
    _show(out)
    return 0


def _cmd_vectors_axis(args: argparse.Namespace) -> int:
    from simulacra.persona_vectors import extract_axis
    from simulacra.schema.options import check_options
    from simulacra.vectors import load_role_set, write_control_vector

    check_options(args, "simulacra vectors axis")
    _check_counts(args, "simulacra vectors axis", "max_tokens", "questions", "prompts")
    out = _vector_out(args.out)
    role_set = load_role_set(args.roles)
    started = time.perf_counter()
    result = extract_axis(
        role_set,
        args.model,
        layers=args.layer or None,
        source=args.roles,
        max_tokens=args.max_tokens,
        seed=args.seed,
        questions=args.questions,
        prompts=args.prompts,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    for block, axis in result.analyses.items():
        ratios = ", ".join(f"{r:.3f}" for r in axis.space.explained_variance_ratio[:3])
        sep = axis.separation
        print(
            f"block {block}: variance explained by PC1-PC3 {ratios}; PC1 "
            f"{'separates' if sep.separates else 'does not separate'} the default assistant "
            f"from the roles (roles above it: {sep.rank}, distance from the end "
            f"{sep.distance_from_end:.2f}, cosine with the contrast axis "
            f"{sep.cosine_with_contrast:.2f})"
        )
    write_control_vector(result.vector, out, drop_layer_zero=True)
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s)")
    _show(out)
    return 0


def _show(path: Path | str) -> None:
    from simulacra.vectors import read_control_vector

    vector = read_control_vector(path)
    print(f"{path}: {vector.name} ({vector.method}), {vector.n_embd} wide")
    print(f"  model:   {vector.model_name or '?'} ({vector.architecture or '?'})")
    print(f"  sha256:  {vector.model_sha256 or '?'}")
    print(f"  prompts: {vector.prompts_sha256 or '?'}")
    for key, value in sorted(vector.meta.items()):
        print(f"  {key}: {value}")
    print("  layer  norm")
    for layer, norm in zip(vector.layers, vector.norms(), strict=True):
        print(f"  {layer:>5}  {norm:.3f}")


def _cmd_vectors_show(args: argparse.Namespace) -> int:
    for path in args.files:
        _show(path)
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

    vectors = sub.add_parser(
        "vectors", help="persona vectors: extract, the Assistant axis, show a file"
    ).add_subparsers(dest="vectors_command", required=True)
    p = vectors.add_parser("extract", help="extract a persona vector from a spec file")
    p.add_argument("spec", help="extraction spec TOML (e.g. scenarios/vectors/pirate.toml)")
    p.add_argument("--out", required=True, help="control-vector GGUF file to write (new)")
    p.add_argument("--model", help="model name or GGUF path (default: the embedded model)")
    p.add_argument(
        "--layer",
        type=int,
        action="append",
        default=[],
        help="block to extract at (repeatable; default: the spec's layers)",
    )
    p.add_argument("--max-tokens", type=int, default=48, help="longest answer generated")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the answers")
    p.set_defaults(func=_cmd_vectors_extract)
    p = vectors.add_parser("axis", help="the Assistant axis of a role set")
    p.add_argument("roles", help="role-set TOML (e.g. scenarios/vectors/roles.toml)")
    p.add_argument("--out", required=True, help="control-vector GGUF file to write (new)")
    p.add_argument("--model", help="model name or GGUF path (default: the embedded model)")
    p.add_argument(
        "--layer",
        type=int,
        action="append",
        default=[],
        help="block to read (repeatable; default: the middle block)",
    )
    p.add_argument("--questions", type=int, help="use the first N questions (default: all)")
    p.add_argument("--prompts", type=int, help="use the first N prompts per role (default: all)")
    p.add_argument("--max-tokens", type=int, default=48, help="longest answer generated")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the answers")
    p.set_defaults(func=_cmd_vectors_axis)
    p = vectors.add_parser("show", help="layers, norms and metadata of control-vector files")
    p.add_argument("files", nargs="+", help="control-vector GGUF files")
    p.set_defaults(func=_cmd_vectors_show)

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
