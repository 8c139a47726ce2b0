"""Benchmark: dialogue-shaped persona scoring, engine vs naive recompute vs raw decode.

K persona prompts of about 60 tokens; each turn appends a ~30-token utterance to the
shared history and scores it under all K personas. In one run it measures:

- the engine (prefix-reusing KV pool, batched decode) with one KV stream per persona
  (``kv_streams=True``), the layout meant for this workload, and for comparison the
  engine's default shared cache, where every token's attention also reads the other
  personas' cells;
- a naive baseline that evaluates every prompt + continuation from scratch, one at a
  time, as peer frameworks do;
- raw ``llama_decode`` throughput: the first engine pass's own decode batches and
  KV-cache operations, recorded and replayed on a reset engine with only
  ``llama_decode`` timed (:mod:`decode_log`), so no Python bookkeeping and no
  log-softmax.

The engine pass is repeated (``--repeats``, default 3): the reported engine time is
the median pass, and the per-turn times are per-turn medians over the passes, so one
burst of load from a neighbour on a shared machine does not decide the flatness
ratio. Every pass's total is printed too.

It also measures the model's prompt-evaluation rate and the tokens the dialogue needs
(:mod:`baseline`): ``engine_over_prompt_eval`` and ``decoded_over_unique``. On a
"guest" turn every persona scores the utterance after its own reply header (as if it
said it), and the next turn's prompt holds the same utterance under the guest's
header, so each persona decodes it twice: ``dropped_tokens`` counts the scored cells
a later prompt does not extend (:func:`baseline.dropped_tokens`), the work a layout
that scored a listener's utterance where the history puts it would not do.

Run alone on an idle machine: ``python benchmarks/engine.py --json``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from baseline import (
    TokenLog,
    add_baseline_arguments,
    dropped_tokens,
    prompt_eval_rate,
    throughput_fields,
)
from decode_log import DecodeLog, replay

from simulacra.llm.chat import Message, render_dialogue
from simulacra.llm.engine import Engine

PERSONAS = [
    "a boisterous pirate captain who shouts about treasure, rum and the open sea",
    "a meticulous chemistry professor who explains reactions with careful precision",
    "a sleepy toddler who speaks in very short sentences and wants snacks",
    "a hard-boiled noir detective who narrates everything in a gloomy tone",
    "a cheerful customer-support bot that apologises and offers to help",
    "a laid-back surfer who talks about waves, sunshine and good vibes",
    "a medieval monk who speaks solemnly about prayer, silence and the abbey",
    "a Shakespearean actor who declaims everything in grand theatrical verse",
]
UTTERANCES = [
    "Well, I suppose the storm will pass by morning, but until then we should stay close to the fire and share whatever food we have left.",
    "Did anyone else hear that strange noise coming from the cellar a moment ago, or am I simply imagining things in this old house?",
    "I think we ought to make a plan before we do anything rash, because the last time we rushed in, everything went badly wrong.",
    "The map shows a narrow path along the cliffs, which is dangerous at night but would save us almost two full days of walking.",
    "Honestly, I have never trusted the innkeeper; he smiles too much and always seems to know things he should not know about us.",
    "If we split the remaining coins evenly, each of us will have just enough to buy a horse and some supplies in the next town.",
    "Let me tell you about the time I crossed the desert with nothing but a water skin and a stubborn camel named Gertrude.",
    "We should write down everything that happened today, because tomorrow none of us will remember the details correctly.",
    "The old woman at the market warned me that the bridge is closed, so we will have to find another way across the river.",
    "I am tired of running from shadows; tonight we stand our ground and find out what has been following us since the village.",
    "Perhaps the letter was never meant for us at all, and we have been chasing someone else's secret for the whole week.",
    "My grandmother always said that a warm meal and a good night's sleep can fix almost any problem, and I believe her.",
    "Look at the stars tonight; if we follow the bright one to the north, we should reach the mountains within three days.",
    "I found a strange key hidden under the floorboards, and it looks far too old and too heavy to open any ordinary door.",
    "Before we leave, someone should thank the farmer who let us sleep in his barn and fed us bread and cheese for free.",
    "Whatever happens at the castle tomorrow, promise me that we will all meet again here by the well when the bells ring.",
]


def persona_prompt(description: str) -> str:
    return (
        f"You are {description}. You are in a conversation with a small group of "
        "travellers sheltering at an inn. Stay in character at all times and answer "
        "with one or two sentences in your own distinctive voice."
    )


def dialogue(engine: Engine, turns: int) -> list[tuple[list[list[str]], str]]:
    """The (K prompts, continuation) pairs of each turn."""
    history: list[Message] = []
    steps = []
    for t in range(turns):
        text = UTTERANCES[t % len(UTTERANCES)]
        prompts = [
            render_dialogue(engine.chat, persona_prompt(p), history, owner="agent")
            for p in PERSONAS
        ]
        steps.append((prompts, engine.chat.body(text)))
        history.append(Message("agent" if t % 2 == 0 else "guest", text))
    return steps


def run_engine(engine: Engine, steps: list) -> tuple[list[float], list[int]]:
    """Per-turn seconds and per-turn tokens decoded."""
    engine.reset()
    times, tokens = [], []
    for prompts, continuation in steps:
        before = engine.stats.tokens_decoded
        started = time.perf_counter()
        engine.loglik(prompts, continuation)
        times.append(time.perf_counter() - started)
        tokens.append(engine.stats.tokens_decoded - before)
    return times, tokens


def run_naive(engine: Engine, steps: list) -> tuple[float, int]:
    """Every prompt + continuation evaluated from an empty cache, one at a time."""
    total, tokens = 0.0, 0
    for prompts, continuation in steps:
        for prompt in prompts:
            engine.reset()
            before = engine.stats.tokens_decoded
            started = time.perf_counter()
            engine.loglik([prompt], continuation)
            total += time.perf_counter() - started
            tokens += engine.stats.tokens_decoded - before
    return total, tokens


def cached_chains(engine: Engine, steps: list) -> list[list[np.ndarray]]:
    """Per persona, the tokens each turn's scoring request leaves cached, turn by turn."""
    chains: list[list[np.ndarray]] = [[] for _ in steps[0][0]]
    for prompts, continuation in steps:
        cont = engine.tokenize(continuation)
        for k, prompt in enumerate(prompts):
            chains[k].append(np.concatenate([engine.prompt_tokens(prompt), cont])[:-1])
    return chains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--turns", type=int, default=16)
    parser.add_argument("--model", default=None, help="registry name or GGUF path")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="engine passes (median)")
    add_baseline_arguments(parser)
    args = parser.parse_args()

    engine = Engine.load(
        args.model,
        n_ctx=8192,
        n_threads=args.threads,
        n_seq_max=len(PERSONAS),
        kv_streams=True,
        n_gpu_layers=args.gpu_layers,
    )
    shared = Engine.load(
        args.model, n_ctx=8192, n_threads=args.threads, n_gpu_layers=args.gpu_layers
    )
    steps = dialogue(engine, args.turns)
    run_engine(engine, steps[:2])  # warm-up
    run_engine(shared, steps[:2])
    shared_times, _ = run_engine(shared, steps)
    # The first pass also records the tokens it needed and its decode calls.
    with TokenLog(engine) as needed, DecodeLog() as decodes:
        passes = [run_engine(engine, steps)]
    passes += [run_engine(engine, steps) for _ in range(args.repeats - 1)]
    turn_tokens = passes[0][1]
    engine_tokens = sum(turn_tokens)
    pass_totals = [sum(times) for times, _ in passes]
    turn_times = [float(t) for t in np.median([times for times, _ in passes], axis=0)]
    naive_s, naive_tokens = run_naive(shared, steps)
    raw_s, raw_tokens = replay(engine, decodes.events)
    dropped = dropped_tokens(cached_chains(engine, steps))
    engine_s = float(np.median(pass_totals))
    baseline = prompt_eval_rate(engine, n_tokens=args.prompt_eval_tokens)
    quarter = max(1, args.turns // 4)
    result = {
        "model": engine.model_info.name,
        "model_sha256": engine.sha256,
        "n_threads": engine.n_threads,
        "personas": len(PERSONAS),
        "kv_streams": engine.kv_streams,
        "turns": args.turns,
        "engine_s": round(engine_s, 4),
        "engine_pass_s": [round(t, 4) for t in pass_totals],
        "naive_s": round(naive_s, 4),
        "shared_cache_engine_s": round(sum(shared_times), 4),
        "shared_cache_speedup": round(naive_s / sum(shared_times), 3),
        "shared_cache_last_over_first": round(
            sum(shared_times[-quarter:]) / sum(shared_times[:quarter]), 3
        ),
        "speedup": round(naive_s / engine_s, 3),
        "first_turns_s": round(sum(turn_times[:quarter]), 4),
        "last_turns_s": round(sum(turn_times[-quarter:]), 4),
        "last_over_first": round(sum(turn_times[-quarter:]) / sum(turn_times[:quarter]), 3),
        "engine_tokens": engine_tokens,
        "naive_tokens": naive_tokens,
        "raw_tokens": raw_tokens,
        "engine_tokens_per_s": round(engine_tokens / engine_s, 1),
        "raw_tokens_per_s": round(raw_tokens / raw_s, 1),
        "engine_over_raw": round((engine_tokens / engine_s) / (raw_tokens / raw_s), 3),
        "dropped_tokens": dropped,
        "dropped_fraction": round(dropped / engine_tokens, 3),
        **throughput_fields(engine_tokens, engine_s, needed.unique(), baseline),
        "first_turns_tokens": sum(turn_tokens[:quarter]),
        "last_turns_tokens": sum(turn_tokens[-quarter:]),
        "turn_s": [round(t, 4) for t in turn_times],
        "turn_tokens": turn_tokens,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
