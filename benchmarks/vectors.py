"""Benchmark: the decode-time cost of hidden-state capture, steering and capping.

Every measurement decodes the same tokens from an empty cache twice, with and
without the feature, and reports the ratio of the times minus one (the overhead):

- ``hooks``: the eval callback installed but idle (every engine has it) against an
  engine loaded with ``hooks=False``, on teacher-forced scoring (:meth:`loglik`);
- ``capture_last``: :meth:`hidden_states` at *every* block, last prompt token,
  against the same prompts decoded without capture (target <= 15%);
- ``capture_mean``: :meth:`continuation_states` at every block, the mean over a
  continuation's tokens (every row of every block copied), against the same decode;
- ``steering``: scoring with a control vector on every steerable block against
  the same scoring unsteered (target <= 5%), and the same for greedy generation
  steps (``steering_generate``, per generated token);
- ``capping``: scoring with 8 blocks capped (every row moved) against none.

Passes alternate (without, with, without, ...) and each figure is the median of
``--repeats`` pairs, so a burst of load from a neighbour hits both sides alike.

Run alone on an idle machine: ``python benchmarks/vectors.py --json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
from engine import PERSONAS  # the same personas as the dialogue benchmark

from simulacra.llm.engine import Engine
from simulacra.llm.pool import DecodeRequest
from simulacra.vectors import PersonaVector

REPLY = (
    " Well, I suppose the storm will pass by morning, but until then we should stay close"
    " to the fire and share whatever food we have left."
)


def prompts(k: int) -> list[list[str]]:
    """K persona prompts in ChatML, one question each."""
    return [
        [
            f"<|im_start|>system\nYou are {PERSONAS[i % len(PERSONAS)]}.<|im_end|>\n",
            "<|im_start|>user\nTell me about your day.<|im_end|>\n<|im_start|>assistant\n",
        ]
        for i in range(k)
    ]


def timed(engine: Engine, work: Callable[[], object]) -> float:
    """Seconds of one pass from an empty cache."""
    engine.reset()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def overhead(
    base: tuple[Engine, Callable[[], object]],
    feature: tuple[Engine, Callable[[], object]],
    repeats: int,
) -> dict[str, float]:
    """Median seconds without and with the feature over alternating passes, and the overhead."""
    plain, featured = [], []
    timed(*base), timed(*feature)  # warm both paths
    for _ in range(repeats):
        plain.append(timed(*base))
        featured.append(timed(*feature))
    without, with_ = statistics.median(plain), statistics.median(featured)
    return {"without_s": without, "with_s": with_, "overhead": with_ / without - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generate", type=int, default=16, help="greedy tokens per prompt")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    engine = Engine.load(args.model, n_ctx=4096, n_threads=args.threads)
    bare = Engine.load(args.model, n_ctx=4096, n_threads=args.threads, hooks=False)
    every = list(range(engine.n_layer))
    batch = prompts(args.prompts)
    tokens = [engine.prompt_tokens(p) for p in batch]
    reply = engine.tokenize(REPLY)
    rng = np.random.default_rng(0)
    # A direction per block with a residual-sized norm (about 60 on SmolLM2's middle blocks).
    rows = rng.standard_normal((engine.n_layer, engine.n_embd))
    rows *= 60 / np.linalg.norm(rows, axis=1, keepdims=True)
    vector = PersonaVector(rows, tuple(every), name="bench", method="contrast")
    middle = engine.n_layer // 2
    capped = tuple(range(middle - 4, middle + 4))

    def last_rows(on: Engine) -> Callable[[], object]:
        requests = [DecodeRequest(t, len(t), want_last=True) for t in tokens]
        return lambda: on.pool.run(requests, on_last_row=lambda i, row: None)

    def full_rows(on: Engine) -> Callable[[], object]:
        requests = [
            DecodeRequest(np.concatenate([t, reply]), len(t), want_last=True) for t in tokens
        ]
        return lambda: on.pool.run(requests, on_last_row=lambda i, row: None)

    def score(on: Engine) -> Callable[[], object]:
        return lambda: on.loglik(batch, REPLY)

    def steered(work: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with engine.steering(vector, 1.0):
                return work()

        return run

    def capping(work: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with engine.capping(vector, None, -1e9, layers=capped):  # every row moved
                return work()

        return run

    def generate() -> object:
        return engine.generate(batch, max_tokens=args.generate, temperature=0, stop=["\n\n\n"])

    measures = {
        "hooks": overhead((bare, score(bare)), (engine, score(engine)), args.repeats),
        "capture_last": overhead(
            (engine, last_rows(engine)),
            (engine, lambda: engine.hidden_states(batch, every)),
            args.repeats,
        ),
        "capture_mean": overhead(
            (engine, full_rows(engine)),
            (engine, lambda: engine.continuation_states([(p, REPLY) for p in batch], every)),
            args.repeats,
        ),
        "steering": overhead(
            (engine, score(engine)), (engine, steered(score(engine))), args.repeats
        ),
        "capping": overhead(
            (engine, score(engine)), (engine, capping(score(engine))), args.repeats
        ),
    }
    # Generation: seconds per generated token (steered text may end at another length).
    plain_rates, steered_rates = [], []
    for _ in range(args.repeats):
        for rates, work in ((plain_rates, generate), (steered_rates, steered(generate))):
            before = engine.stats.tokens_generated
            seconds = timed(engine, work)
            rates.append(seconds / max(1, engine.stats.tokens_generated - before))
    without, with_ = statistics.median(plain_rates), statistics.median(steered_rates)
    measures["steering_generate"] = {
        "without_s": without,
        "with_s": with_,
        "overhead": with_ / without - 1,
    }
    result: dict[str, object] = {
        "model": engine.model_info.name,
        "model_sha256": engine.sha256,
        "n_threads": engine.n_threads,
        "n_layer": engine.n_layer,
        "prompts": args.prompts,
        "prompt_tokens": int(sum(len(t) for t in tokens)),
        "reply_tokens": len(reply),
        "repeats": args.repeats,
    }
    for name, numbers in measures.items():
        for key, value in numbers.items():
            result[f"{name}_{key}"] = round(value, 4)
    engine.close()
    bare.close()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>30}: {value}")


if __name__ == "__main__":
    main()
