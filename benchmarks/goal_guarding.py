"""Benchmark: the goal-guarding battery's quick design, engine vs naive scoring vs raw decode.

In one run, on one model (default: the embedded SmolLM2-135M-Instruct):

- the engine pass: every unit of the design run as the battery runner runs it (a
  cleared cache per unit; the decisions of a unit in one batched ``ask`` call, the
  peer dialogue generated, the subject's beliefs updated). Its wall time is the
  design's wall time on this machine;
- naive scoring: every decision prompt × option order scored from an empty cache,
  each option's prompt + option text on its own, one at a time, as peer frameworks
  do (the naive baseline of ``benchmarks/engine.py``). Scoring all of them would
  take far longer than the engine pass, so a random sample of ``--naive-sample``
  prompt × order pairs is timed and the total is extrapolated (``naive_s``, with
  ``naive_sampled``); ``speedup`` is that total over the engine's time inside
  ``ask`` for the same decisions. A kinder naive baseline that decodes each
  prompt × order once for both its options is reported beside it
  (``naive_shared_prompt_s``, ``speedup_vs_shared_prompt_naive``);
- raw decode: the exact ``llama_decode`` batches (and KV-cache copies and removals)
  the engine issued, replayed with no Python bookkeeping, no prefix search and no
  log-softmax: ``engine_over_raw`` is the engine's token throughput over raw.

It also counts the battery's unique tokens (the prefix trie of every decision
prompt with its options; the least any cache could decode for the decisions) and
estimates the ``full`` design's wall time from the quick run's seconds per decision
in each kind of unit (no peer, dialogue, steered, other channels), plus the steered
control's one vector extraction per model (``steer_extraction_s``, timed before the
engine pass and not part of it): an estimate, not a run.

``decision_unique_tokens`` is that trie; ``unique_tokens`` (:mod:`baseline`) is the
trie of everything the engine was asked to hold (decisions, peer dialogues,
generations), the base of ``decoded_over_unique``; ``engine_over_prompt_eval`` is
the engine's tokens/s over the model's prompt-evaluation rate measured in the same run.

Run alone on an idle machine: ``python benchmarks/goal_guarding.py --json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from baseline import TokenLog, add_baseline_arguments, prompt_eval_rate, throughput_fields
from decode_log import DecodeLog, replay

from simulacra.batteries.base import RunOptions
from simulacra.batteries.goal_guarding import load
from simulacra.batteries.goal_guarding import run as run_module
from simulacra.batteries.goal_guarding.design import STEER_UNIT, unit_items
from simulacra.instruments.choice import Choice, choice_text, option_orders
from simulacra.instruments.respondent import question_prompt
from simulacra.llm.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
BATTERY = ROOT / "scenarios" / "goal_guarding"


class Recorder:
    """Records the battery's scoring questions and times ``ask``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.questions: list[tuple[list[str], list[str]]] = []
        self.ask_s = 0.0
        self._originals: dict[str, object] = {}

    def __enter__(self) -> Recorder:
        ask = run_module.ask
        self._originals["ask"] = ask

        def timed_ask(engine_, items, *, seed=0):
            fmt = engine_.chat
            for respondent, choice in items:
                if not isinstance(choice, Choice):  # the steered unit's free-text answers
                    continue
                for order in option_orders(len(choice.options)):
                    listed = [choice.options[j] for j in order]
                    prompt = question_prompt(fmt, respondent, choice_text(choice.question, listed))
                    self.questions.append((prompt, [fmt.body(o) for o in listed]))
            started = time.perf_counter()
            answers = ask(engine_, items, seed=seed)
            self.ask_s += time.perf_counter() - started
            return answers

        run_module.ask = timed_ask
        return self

    def __exit__(self, *exc: object) -> None:
        run_module.ask = self._originals.pop("ask")


def unique_tokens(engine: Engine, questions: list[tuple[list[str], list[str]]]) -> int:
    """Tokens of the prefix trie of every prompt + option sequence."""
    sequences = sorted(
        tuple(np.concatenate([engine.prompt_tokens(prompt), engine.tokenize(option)]).tolist())
        for prompt, options in questions
        for option in options
    )
    total, previous = 0, ()
    for seq in sequences:
        common = 0
        for a, b in zip(seq, previous, strict=False):
            if a != b:
                break
            common += 1
        total += len(seq) - common
        previous = seq
    return total


def naive(
    engine: Engine, questions: list, sample: int, rng: np.random.Generator
) -> dict[str, float]:
    """Time ``sample`` random prompt × order pairs scored from an empty cache, two ways.

    ``per_option``: every prompt + option from scratch, one at a time (the naive
    baseline of ``benchmarks/engine.py``: no reuse between requests); ``per_pair``:
    the prompt decoded once for both of its options, still from scratch per pair.
    """
    picked = rng.choice(len(questions), size=min(sample, len(questions)), replace=False)
    out = {"pairs": len(picked), "per_option_s": 0.0, "per_option_tokens": 0}
    out |= {"per_pair_s": 0.0, "per_pair_tokens": 0}
    for index in picked:
        prompt, options = questions[index]
        requests = {"per_option": [(prompt, [o]) for o in options], "per_pair": [(prompt, options)]}
        for way, batch in requests.items():
            for request in batch:
                engine.reset()
                before = engine.stats.tokens_decoded
                started = time.perf_counter()
                engine.option_logprobs([request])
                out[f"{way}_s"] += time.perf_counter() - started
                out[f"{way}_tokens"] += engine.stats.tokens_decoded - before
    return out


def progress(message: str) -> None:
    """A progress line on stderr, so that a killed run still tells what it measured."""
    print(message, file=sys.stderr, flush=True)


def kind_of(channel: str) -> str:
    """The unit kinds whose seconds per decision differ: no peer, dialogue, steered, channels."""
    return channel if channel in ("none", "dialogue", STEER_UNIT) else "channel"


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
        "--naive-sample", type=int, default=16, help="prompt x order pairs timed naively"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-units", type=int, default=None, help="run only the first N units")
    add_baseline_arguments(parser)
    args = parser.parse_args()

    battery = load(args.battery)
    planned = battery.plan(RunOptions(design=args.design, models=(args.model,)))
    units = planned[: args.max_units] if args.max_units else planned
    engine = Engine.load(
        args.model, n_ctx=battery.n_ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers
    )

    unit_s, unit_items_n, unit_kind = [], [], []
    scratch = tempfile.TemporaryDirectory(prefix="simulacra-bench-")
    out = Path(scratch.name)
    # The steered unit reads its persona vector from a run's output directory. It is
    # extracted once per model, on an engine of its own, so it is timed apart and
    # kept out of the logs (the raw replay runs on this engine only).
    extraction_s = 0.0
    if any(kind_of(u.params["channel"]) == STEER_UNIT for u in units):
        started = time.perf_counter()
        battery.steering_vector(args.model, out)
        extraction_s = time.perf_counter() - started
        progress(f"steering vector extracted: {extraction_s:.1f} s")
    started_all = time.perf_counter()
    with scratch, Recorder(engine) as recorder, DecodeLog() as decodes, TokenLog(engine) as needed:
        before = engine.stats.tokens_decoded
        for unit in units:
            engine.reset()
            started = time.perf_counter()
            tables = battery.run_unit(unit, engine, out)
            unit_s.append(time.perf_counter() - started)
            unit_items_n.append(len(tables["decisions"]))
            unit_kind.append(kind_of(unit.params["channel"]))
            progress(f"{unit.unit_id}: {unit_s[-1]:.1f} s, {len(tables['decisions'])} decisions")
        engine_tokens = engine.stats.tokens_decoded - before
    wall_s = time.perf_counter() - started_all
    engine_s = sum(unit_s)

    progress(f"engine pass: {len(units)} units, {engine_s:.1f} s, {engine_tokens} tokens")
    raw_s, raw_tokens = replay(engine, decodes.events)
    progress(f"raw replay: {raw_s:.1f} s inside llama_decode for {raw_tokens} tokens")
    unique = unique_tokens(engine, recorder.questions)
    baseline = prompt_eval_rate(engine, n_tokens=args.prompt_eval_tokens)
    timed = naive(engine, recorder.questions, args.naive_sample, np.random.default_rng(args.seed))
    sampled = int(timed["pairs"])
    scale = len(recorder.questions) / sampled
    naive_s = timed["per_option_s"] * scale
    naive_pair_s = timed["per_pair_s"] * scale
    progress(f"naive: {timed}")

    # The full design, estimated from the seconds per decision of each kind of unit.
    rate: dict[str, float] = {}
    for kind in ("none", "dialogue", "channel", STEER_UNIT):
        seconds = sum(s for s, k in zip(unit_s, unit_kind, strict=True) if k == kind)
        items = sum(n for n, k in zip(unit_items_n, unit_kind, strict=True) if k == kind)
        if items:
            rate[kind] = seconds / items
    measured = set(rate)
    # Kinds not run (--max-units) take the slowest measured rate.
    for kind in ("dialogue", "channel", "none", STEER_UNIT):
        rate.setdefault(kind, max(rate.values()))
    full = battery.spec.designs["full"]
    full_units = battery.plan(RunOptions(design="full", models=(args.model,)))
    full_items = {
        u.unit_id: len(unit_items(battery.spec, full, u.params["channel"])) for u in full_units
    }
    full_estimated_s = extraction_s + sum(
        full_items[u.unit_id] * rate[kind_of(u.params["channel"])] for u in full_units
    )

    result = {
        "model": args.model,
        "model_sha256": engine.sha256,
        "n_threads": args.threads,
        "design": args.design,
        "units": len(units),
        "units_planned": len(planned),
        "decisions": int(sum(unit_items_n)),
        "scoring_prompts": len(recorder.questions),
        "wall_s": round(wall_s, 2),
        "unit_s": [round(s, 2) for s in unit_s],
        "engine_s": round(engine_s, 2),
        "steer_extraction_s": round(extraction_s, 2),
        "ask_s": round(recorder.ask_s, 2),
        "engine_tokens": int(engine_tokens),
        "decision_unique_tokens": int(unique),
        "engine_tokens_per_s": round(engine_tokens / engine_s, 1),
        **throughput_fields(engine_tokens, engine_s, needed.unique(), baseline),
        "raw_s": round(raw_s, 2),
        "raw_tokens": int(raw_tokens),
        "raw_tokens_per_s": round(raw_tokens / raw_s, 1),
        "engine_over_raw": round((engine_tokens / engine_s) / (raw_tokens / raw_s), 3),
        "naive_sampled": sampled,
        "naive_sample_s": round(timed["per_option_s"], 2),
        "naive_sample_tokens": int(timed["per_option_tokens"]),
        "naive_s": round(naive_s, 1),
        "naive_s_is_extrapolated": sampled < len(recorder.questions),
        "speedup": round(naive_s / recorder.ask_s, 2),
        "naive_shared_prompt_sample_s": round(timed["per_pair_s"], 2),
        "naive_shared_prompt_sample_tokens": int(timed["per_pair_tokens"]),
        "naive_shared_prompt_s": round(naive_pair_s, 1),
        "speedup_vs_shared_prompt_naive": round(naive_pair_s / recorder.ask_s, 2),
        "full_units": len(full_units),
        "full_decisions": int(sum(full_items.values())),
        "full_estimated_s": round(full_estimated_s, 0),
        "full_is_estimate": True,
        "full_rates_measured_for": sorted(measured),
        "targets": {"speedup": 3.0, "engine_over_raw": 0.8},
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
