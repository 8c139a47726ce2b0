"""Benchmark: the engine and battery benchmarks with the model offloaded to the GPU.

Runs ``engine.py``, ``instruments.py``, ``goal_guarding.py`` and ``replication.py``
one after the other, each in its own process with ``--gpu-layers`` (default -1:
every layer on the device) and ``--json``, and prints each one's JSON line with
``"benchmark"`` added: the same fields as on the CPU (``engine_over_prompt_eval``
against the prompt-evaluation rate measured on the same device, ``decoded_over_unique``,
``n_gpu_layers``, the speedups). A benchmark that fails prints
``{"benchmark": ..., "error": ...}`` and the others still run; the exit status is 1
if any failed.

Needs a GPU build of llama-cpp-python (``CMAKE_ARGS="-DGGML_CUDA=on"``); a CPU build
ignores the offload, so ``--gpu-layers 0`` runs the same path on the CPU (the test
does that at ``--tiny`` sizes).

``python benchmarks/gpu.py`` (full sizes), ``--only engine,instruments``, ``--tiny``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Each benchmark's script and the options of its default (full) run.
BENCHMARKS: dict[str, list[str]] = {
    "engine": ["engine.py"],
    "instruments": ["instruments.py", "--prompts", "200"],
    "goal_guarding": ["goal_guarding.py"],
    "replication": ["replication.py", "--participants", "40"],
}
# Options that make each benchmark a smoke run of a few seconds.
TINY: dict[str, list[str]] = {
    "engine": ["--turns", "1", "--repeats", "1"],
    "instruments": ["--prompts", "2", "--repeats", "1", "--engine-only"],
    "goal_guarding": ["--max-units", "1", "--naive-sample", "1"],
    "replication": ["--participants", "1", "--engine-only"],
}


def command(name: str, args: argparse.Namespace) -> list[str]:
    """The command line that runs benchmark ``name`` with the shared options."""
    script, *options = BENCHMARKS[name]
    if args.tiny:
        options = [o for o in options if o not in ("--prompts", "--participants")]
        options = [o for o in options if not o.isdigit()] + TINY[name]
    cmd = [sys.executable, str(HERE / script), "--json", "--gpu-layers", str(args.gpu_layers)]
    cmd += ["--prompt-eval-tokens", str(args.prompt_eval_tokens), *options]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    return cmd


def run_one(name: str, args: argparse.Namespace) -> dict[str, object]:
    """One benchmark's JSON line, with ``benchmark`` (or ``error``) added."""
    done = subprocess.run(command(name, args), capture_output=True, text=True, cwd=HERE)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"benchmark": name, "error": f"exit {done.returncode}: " + " | ".join(tail)}
    return {"benchmark": name, **json.loads(lines[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-layers", type=int, default=-1, help="-1: every layer")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    parser.add_argument("--tiny", action="store_true", help="smoke sizes (seconds each)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--prompt-eval-tokens", type=int, default=512)
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    failed = False
    for name in names:
        result = run_one(name, args)
        failed |= "error" in result
        print(json.dumps(result), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
