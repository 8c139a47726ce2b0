"""Benchmark: the Many Labs 1 replication battery, engine vs naive scoring vs raw decode.

In one run, on the default model (or ``--model``):

- the engine: every unit of the battery at M participants (default 40), through
  :meth:`ReplicationBattery.run_unit` on one engine reset before each unit, exactly
  as the battery runner runs them (prefix-sharing KV cache, batched scoring and
  generation);
- naive scoring: every participant x study x item x option order x option scored
  from an empty cache, one prompt at a time, and every generation prompt generated
  alone from an empty cache, as a framework without a shared cache would. Doing all
  of it would take hours, so a seeded random sample of the scoring requests
  (``--naive-scoring``) and of the generation prompts (``--naive-generation``) is
  timed and the means are multiplied by the full counts (``naive_s`` is therefore
  an extrapolation; the sample sizes are printed);
- raw ``llama_decode``: the engine pass's exact decode batches and KV-cache
  operations of its first ``--raw-units`` units are recorded and replayed on a
  reset engine with only ``llama_decode`` timed, i.e. those units' unique tokens
  through bare decode calls, with no Python bookkeeping, no log-softmax and no
  sampling (a sample of the battery's units, so that the replay does not double
  the benchmark's time).

``speedup`` = naive_s / engine_s; ``engine_over_raw`` = the engine's tokens/s over
raw tokens/s on the same replayed units (targets: >= 2.5 and >= 0.8); the engine's
count comes from its own statistics, the raw count from the replayed batches, and
``raw_s_over_engine_s`` compares the two times for the same units directly. ``engine_over_prompt_eval`` (the engine's tokens/s over the model's prompt-evaluation
rate, measured in the same run) and ``decoded_over_unique`` (tokens decoded over the
prefix trie of everything the engine was asked to hold) come from :mod:`baseline`.
Run alone on an idle machine: ``python benchmarks/replication.py --json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from baseline import TokenLog, add_baseline_arguments, prompt_eval_rate, throughput_fields
from decode_log import DecodeLog, replay

from simulacra.batteries import RunOptions
from simulacra.batteries.replication import load
from simulacra.llm.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
BATTERY = ROOT / "scenarios" / "replication" / "many_labs_1"


class Recorder:
    """Records an engine pass's scoring questions and generation prompts (for the naive baseline)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.questions: list[tuple[Any, list[str]]] = []
        self.generations: list[tuple[Any, dict[str, Any]]] = []

    def __enter__(self) -> Recorder:
        engine = self.engine
        option_logprobs, generate = engine.option_logprobs, engine.generate

        def record_questions(questions, *args, **kwargs):
            self.questions += [(prompt, list(options)) for prompt, options in questions]
            return option_logprobs(questions, *args, **kwargs)

        def record_generation(prompts, **kwargs):
            seeds = kwargs.get("seeds") or [0] * len(prompts)
            for prompt, seed in zip(prompts, seeds, strict=True):
                self.generations.append((prompt, {**kwargs, "seeds": [seed]}))
            return generate(prompts, **kwargs)

        engine.option_logprobs = record_questions
        engine.generate = record_generation
        return self

    def __exit__(self, *exc: object) -> None:
        del self.engine.option_logprobs
        del self.engine.generate


def naive(
    engine: Engine, recorder: Recorder, n_scoring: int, n_generation: int, seed: int
) -> dict[str, Any]:
    """Time a seeded sample of requests from an empty cache; extrapolate to all of them."""
    requests = [(prompt, option) for prompt, options in recorder.questions for option in options]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(requests), size=min(n_scoring, len(requests)), replace=False)
    scoring_s, scoring_tokens = [], 0
    for k in picked:
        prompt, option = requests[int(k)]
        engine.reset()
        before = engine.stats.tokens_decoded
        started = time.perf_counter()
        engine.loglik([prompt], option)
        scoring_s.append(time.perf_counter() - started)
        scoring_tokens += engine.stats.tokens_decoded - before
    gens = recorder.generations
    picked_gen = rng.choice(len(gens), size=min(n_generation, len(gens)), replace=False)
    generation_s = []
    for k in picked_gen:
        prompt, kwargs = gens[int(k)]
        engine.reset()
        started = time.perf_counter()
        engine.generate([prompt], **kwargs)
        generation_s.append(time.perf_counter() - started)
    mean_scoring = float(np.mean(scoring_s)) if scoring_s else 0.0
    mean_generation = float(np.mean(generation_s)) if generation_s else 0.0
    return {
        "naive_s": mean_scoring * len(requests) + mean_generation * len(gens),
        "naive_scoring_requests": len(requests),
        "naive_generation_prompts": len(gens),
        "naive_scoring_sampled": len(scoring_s),
        "naive_generation_sampled": len(generation_s),
        "naive_mean_scoring_s": mean_scoring,
        "naive_mean_generation_s": mean_generation,
        "naive_tokens_estimated": int(scoring_tokens / max(1, len(scoring_s)) * len(requests)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--participants", type=int, default=40)
    parser.add_argument("--model", default=None, help="registry name or GGUF path")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--mode", default="sampled", choices=("sampled", "expected"))
    parser.add_argument("--naive-scoring", type=int, default=60, help="scoring requests timed")
    parser.add_argument("--naive-generation", type=int, default=10, help="generations timed")
    parser.add_argument("--raw-units", type=int, default=4, help="units replayed for raw")
    parser.add_argument("--engine-only", action="store_true", help="skip naive and raw")
    add_baseline_arguments(parser)
    args = parser.parse_args()

    battery = load(BATTERY)
    model = args.model or battery.models[0]
    units = battery.plan(
        RunOptions(participants=args.participants, mode=args.mode, models=(model,))
    )
    engine = Engine.load(
        model, n_ctx=battery.n_ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers
    )
    # Warm-up: one small unit's first call (graph allocation), not counted.
    engine.loglik(["Hello there."], " General Kenobi.")
    unit_s: list[float] = []
    unit_tokens: list[int] = []
    before = engine.stats.as_dict()
    rows = 0
    with Recorder(engine) as recorder, DecodeLog() as decodes, TokenLog(engine) as needed:
        started = time.perf_counter()
        for k, unit in enumerate(units):
            decodes.active = k < args.raw_units
            engine.reset()
            began = time.perf_counter()
            decoded = engine.stats.tokens_decoded
            tables = battery.run_unit(unit, engine)
            unit_s.append(time.perf_counter() - began)
            unit_tokens.append(engine.stats.tokens_decoded - decoded)
            print(f"unit {k + 1}/{len(units)}: {unit_s[-1]:.1f} s", file=sys.stderr, flush=True)
            rows += len(tables["answers"])
        engine_s = time.perf_counter() - started
    stats = {k: v - before[k] for k, v in engine.stats.as_dict().items()}
    engine_tokens = int(stats["tokens_decoded"])
    result: dict[str, Any] = {
        "model": engine.model_info.name,
        "model_sha256": engine.sha256,
        "n_threads": engine.n_threads,
        "n_ctx": battery.n_ctx,
        "participants": args.participants,
        "effects": len(battery.effects),
        "mode": args.mode,
        "units": len(units),
        "answers": rows,
        "engine_s": round(engine_s, 3),
        "unit_s_max": round(max(unit_s), 3),
        "engine_tokens": engine_tokens,
        "engine_tokens_reused": int(stats["tokens_reused"]),
        "engine_tokens_generated": int(stats["tokens_generated"]),
        "engine_decode_calls": int(stats["decode_calls"]),
        "engine_evictions": int(stats["evictions"]),
        "engine_tokens_per_s": round(engine_tokens / engine_s, 1),
        "engine_s_per_participant": round(engine_s / args.participants, 3),
        **throughput_fields(
            engine_tokens,
            engine_s,
            needed.unique(),
            prompt_eval_rate(engine, n_tokens=args.prompt_eval_tokens),
        ),
    }
    print(
        json.dumps(result), file=sys.stderr, flush=True
    )  # the engine pass, kept if later parts fail
    if not args.engine_only:
        raw_s, raw_tokens = replay(engine, decodes.events)
        print(f"raw replay: {raw_tokens} tokens in {raw_s:.1f} s", file=sys.stderr, flush=True)
        k = min(args.raw_units, len(units))
        sampled_rate = sum(unit_tokens[:k]) / sum(unit_s[:k])
        result |= {
            "raw_s": round(raw_s, 3),
            "raw_tokens": raw_tokens,
            "raw_units": k,
            "engine_tokens_raw_units": sum(unit_tokens[:k]),
            "engine_s_raw_units": round(sum(unit_s[:k]), 3),
            "failed_decodes_recorded": decodes.failed,
            "raw_s_over_engine_s": round(raw_s / sum(unit_s[:k]), 3),
            "raw_tokens_per_s": round(raw_tokens / raw_s, 1),
            "engine_tokens_per_s_raw_units": round(sampled_rate, 1),
            "engine_over_raw": round(sampled_rate / (raw_tokens / raw_s), 3),
        }
        timing = naive(engine, recorder, args.naive_scoring, args.naive_generation, seed=0)
        result |= {k: round(v, 4) if isinstance(v, float) else v for k, v in timing.items()}
        result["naive_extrapolated"] = True
        result["speedup"] = round(timing["naive_s"] / engine_s, 3)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
