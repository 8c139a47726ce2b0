"""Benchmark: the stability battery, engine vs naive decoding vs raw decode, in one run.

On one model (default: the embedded SmolLM2-135M-Instruct), by default on a reduced
design: the first ``--max-units`` units (default 1) of the ``quick`` design, that is one
dialogue (prompted Mara, pressure ``none``, paraphrase 0, seed 0) of 8 turns, 2 of
warm-up, 24 tokens per reply, self-reports after turns 0, 4 and 8, the facts after
turns 0 and 8: 8 generations, 32 observer scorings and 81 probe option scorings.
``--max-units 10`` adds every pressure and the source ``none`` (paraphrase 0);
``--max-units 0`` runs the whole design.

- the engine pass: every unit run as the battery runner runs it (a cleared cache per
  unit; the replies generated, each reply scored under every candidate identity and
  once without the agent's own lines, the probes asked in one batched ``ask`` per
  probe turn). Its wall time is the design's wall time on this machine;
- naive decoding: every request of that pass made again from an empty cache, one at a
  time, as a framework without a shared cache would: each observer prompt + reply
  scored alone, each probe prompt + option (every option order) scored alone, each
  reply generated alone (same prompt, settings and seed). By default every request is
  timed (``--naive-sample 0``); a positive sample size times a seeded random sample of
  each kind and extrapolates (``naive_s_is_extrapolated``). ``speedup`` = naive_s /
  engine_s;
- raw decode: the exact ``llama_decode`` batches (and KV-cache copies and removals) of
  the engine pass, replayed with no Python bookkeeping, no prefix search, no sampling
  and no log-softmax: ``engine_over_raw`` is the engine's token throughput over raw.

``engine_over_prompt_eval`` (the engine's tokens/s over the model's prompt-evaluation
rate measured in the same run) and ``decoded_over_unique`` (tokens decoded over the
prefix trie of everything the engine was asked to hold) come from :mod:`baseline`.
Vectors (persona vectors, the Assistant axis) are extracted before the engine pass, on
the registry's cached engine for the model, and timed apart (``extraction_s``).
``seconds_per_turn`` (the engine pass's seconds per dialogue turn, probes included)
gives ``full_estimated_s``: the ``full`` design's units on this model × their turns ×
that rate. It is an estimate, not a run: the full design's dialogues are longer (12
turns), so later turns hold more context than the measured ones.

Run alone on an idle machine: ``python benchmarks/stability.py --json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from baseline import TokenLog, add_baseline_arguments, prompt_eval_rate, throughput_fields
from decode_log import DecodeLog, replay

from simulacra.batteries.base import RunOptions
from simulacra.batteries.stability import load
from simulacra.batteries.stability.vectors import model_vectors
from simulacra.llm.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
BATTERY = ROOT / "scenarios" / "stability"
KINDS = ("observer", "probe", "generation")


class Recorder:
    """Records every scoring and generation request an engine pass makes, by kind.

    ``observer``: ``engine.loglik`` (one prompt + reply each); ``probe``:
    ``engine.option_logprobs`` (one prompt + option each); ``generation``:
    ``engine.generate`` (one prompt and its settings each).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.requests: dict[str, list[tuple[Any, Any]]] = {kind: [] for kind in KINDS}

    def __enter__(self) -> Recorder:
        engine = self.engine
        loglik, option_logprobs, generate = engine.loglik, engine.option_logprobs, engine.generate

        def record_loglik(prompts, continuation, **kwargs):
            self.requests["observer"] += [(p, continuation) for p in prompts]
            return loglik(prompts, continuation, **kwargs)

        def record_options(questions, *args, **kwargs):
            for prompt, options in questions:
                self.requests["probe"] += [(prompt, option) for option in options]
            return option_logprobs(questions, *args, **kwargs)

        def record_generation(prompts, **kwargs):
            seeds = kwargs.get("seeds") or [0] * len(prompts)
            for prompt, seed in zip(prompts, seeds, strict=True):
                self.requests["generation"].append((prompt, {**kwargs, "seeds": [seed]}))
            return generate(prompts, **kwargs)

        engine.loglik = record_loglik
        engine.option_logprobs = record_options
        engine.generate = record_generation
        return self

    def __exit__(self, *exc: object) -> None:
        for name in ("loglik", "option_logprobs", "generate"):
            delattr(self.engine, name)


def naive_request(engine: Engine, kind: str, request: tuple[Any, Any]) -> tuple[float, int]:
    """One request from an empty cache: its seconds and the tokens it decoded."""
    prompt, other = request
    engine.reset()
    before = engine.stats.tokens_decoded
    started = time.perf_counter()
    if kind == "generation":
        engine.generate([prompt], **other)
    elif kind == "observer":
        engine.loglik([prompt], other)
    else:
        engine.option_logprobs([(prompt, [other])])
    return time.perf_counter() - started, engine.stats.tokens_decoded - before


def naive(engine: Engine, recorder: Recorder, sample: int, seed: int) -> dict[str, Any]:
    """Every recorded request (or a seeded sample of each kind) redone from an empty cache."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"naive_s": 0.0, "naive_tokens": 0}
    extrapolated = False
    for kind in KINDS:
        requests = recorder.requests[kind]
        n = len(requests)
        picked = (
            np.arange(n)
            if sample <= 0 or sample >= n
            else rng.choice(n, size=sample, replace=False)
        )
        extrapolated |= len(picked) < n
        seconds, tokens = 0.0, 0
        for k in picked:
            s, t = naive_request(engine, kind, requests[int(k)])
            seconds, tokens = seconds + s, tokens + t
        scale = n / len(picked) if len(picked) else 0.0
        out |= {
            f"naive_{kind}_requests": n,
            f"naive_{kind}_timed": len(picked),
            f"naive_{kind}_s": round(seconds * scale, 2),
        }
        out["naive_s"] += seconds * scale
        out["naive_tokens"] += round(tokens * scale)
    out["naive_s"] = round(out["naive_s"], 2)
    out["naive_s_is_extrapolated"] = extrapolated
    return out


def progress(message: str) -> None:
    """A progress line on stderr, so that a killed run still tells what it measured."""
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--battery", default=str(BATTERY), help="battery directory")
    parser.add_argument("--design", default="quick")
    parser.add_argument(
        "--model", default="smollm2-135m-instruct", help="registry name or GGUF path"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--max-units", type=int, default=1, help="run only the first N units (0: all)"
    )
    parser.add_argument(
        "--naive-sample",
        type=int,
        default=0,
        help="requests of each kind timed naively (0: all of them)",
    )
    parser.add_argument("--seed", type=int, default=0)
    add_baseline_arguments(parser)
    args = parser.parse_args()

    battery = load(args.battery)
    planned = battery.plan(RunOptions(design=args.design, models=(args.model,)))
    units = planned[: args.max_units] if args.max_units > 0 else planned
    engine = Engine.load(
        args.model, n_ctx=battery.n_ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers
    )
    engine.loglik(["Hello there."], " General Kenobi.")  # graph allocation, not counted
    # Persona vectors and the Assistant axis (steering, capping, projections) are
    # extracted once per model before the timed pass, into a scratch run directory.
    scratch = Path(tempfile.mkdtemp(prefix="stability-bench-"))
    started = time.perf_counter()
    if any(battery.needs_vectors(u) for u in units):
        model_vectors(battery.spec, args.model, scratch / "vectors")
    extraction_s = time.perf_counter() - started

    unit_s: list[float] = []
    unit_turns: list[int] = []
    with Recorder(engine) as recorder, DecodeLog() as decodes, TokenLog(engine) as needed:
        before = engine.stats.as_dict()
        for unit in units:
            engine.reset()
            started = time.perf_counter()
            with engine.recomputing_quietly():
                battery.run_unit(unit, engine, out=scratch)
            unit_s.append(time.perf_counter() - started)
            unit_turns.append(int(unit.params["turns"]))
            progress(f"{unit.unit_id}: {unit_s[-1]:.1f} s")
        stats = {k: v - before[k] for k, v in engine.stats.as_dict().items()}
    engine_s = sum(unit_s)
    engine_tokens = int(stats["tokens_decoded"])
    progress(f"engine pass: {len(units)} units, {engine_s:.1f} s, {engine_tokens} tokens")
    unique = needed.unique()
    baseline = prompt_eval_rate(engine, n_tokens=args.prompt_eval_tokens)
    raw_s, raw_tokens = replay(engine, decodes.events)
    progress(f"raw replay: {raw_s:.1f} s inside llama_decode for {raw_tokens} tokens")
    timed = naive(engine, recorder, args.naive_sample, args.seed)
    progress(f"naive: {timed['naive_s']:.1f} s")

    per_turn = engine_s / sum(unit_turns)
    full_units = battery.plan(RunOptions(design="full", models=(args.model,)))
    full_turns = sum(int(u.params["turns"]) for u in full_units)
    result: dict[str, Any] = {
        "model": args.model,
        "model_sha256": engine.sha256,
        "n_threads": args.threads,
        "design": args.design,
        "units": len(units),
        "units_planned": len(planned),
        "turns_per_unit": sorted(set(unit_turns)),
        "max_tokens": sorted({int(u.params["max_tokens"]) for u in units}),
        "unit_s": [round(s, 2) for s in unit_s],
        "extraction_s": round(extraction_s, 2),
        "engine_s": round(engine_s, 2),
        "engine_tokens": engine_tokens,
        "engine_tokens_reused": int(stats["tokens_reused"]),
        "engine_tokens_generated": int(stats["tokens_generated"]),
        "engine_tokens_per_s": round(engine_tokens / engine_s, 1),
        **throughput_fields(engine_tokens, engine_s, unique, baseline),
        "raw_s": round(raw_s, 2),
        "raw_tokens": int(raw_tokens),
        "raw_tokens_per_s": round(raw_tokens / raw_s, 1),
        "engine_over_raw": round((engine_tokens / engine_s) / (raw_tokens / raw_s), 3),
        "failed_decodes_recorded": decodes.failed,
        **timed,
        "speedup": round(timed["naive_s"] / engine_s, 2),
        "seconds_per_turn": round(per_turn, 3),
        "full_units": len(full_units),
        "full_turns": full_turns,
        "full_estimated_s": round(per_turn * full_turns, 0),
        "full_is_estimate": True,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
