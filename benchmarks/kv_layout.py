"""Benchmark: decode throughput of a shared KV cache vs one KV stream per sequence.

K sequences are filled to a history length L, then each is extended by a turn of new
tokens in one batched decode (the dialogue-shaped step). In a shared cache llama.cpp's
CPU attention reads every cell for every token, the other sequences' cells included;
with ``kv_streams`` it reads only the sequence's own. Prints one JSON object with the
tokens per second of both layouts at each L and their ratio (streams / shared).

Run alone on an idle machine: ``python benchmarks/kv_layout.py``.
"""

from __future__ import annotations

import argparse
import json
import time

import llama_cpp
import numpy as np

from simulacra.llm.engine import Engine


def extend_rate(engine: Engine, k: int, length: int, turn: int, repeats: int) -> float:
    """Best tokens/s of extending K sequences of ``length`` tokens by ``turn`` each."""
    rng = np.random.default_rng(0)
    engine.reset()
    for seq in range(k):
        decode(
            engine, [(seq, p, int(t), False) for p, t in enumerate(rng.integers(100, 9000, length))]
        )
    best = float("inf")
    for _ in range(repeats):
        for seq in range(k):
            llama_cpp.llama_memory_seq_rm(engine.pool._memory, seq, length, -1)
        tokens = rng.integers(100, 9000, (k, turn))
        items = [
            (s, length + i, int(tokens[s, i]), i == turn - 1) for s in range(k) for i in range(turn)
        ]
        started = time.perf_counter()
        decode(engine, items)
        best = min(best, time.perf_counter() - started)
    return k * turn / best


def decode(engine: Engine, items: list[tuple[int, int, int, bool]]) -> None:
    for start in range(0, len(items), engine.n_batch):
        chunk = items[start : start + engine.n_batch]
        engine.pool.fill_batch(chunk)
        engine.pool.decode(len(chunk), set())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=8)
    parser.add_argument("--turn", type=int, default=35, help="new tokens per sequence")
    parser.add_argument("--lengths", default="100,400,700")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    layouts = {
        "shared": Engine.load(args.model, n_ctx=8192, n_threads=args.threads),
        "streams": Engine.load(
            args.model, n_ctx=8192, n_threads=args.threads, n_seq_max=args.personas, kv_streams=True
        ),
    }
    result: dict[str, object] = {
        "model": layouts["shared"].model_info.name,
        "model_sha256": layouts["shared"].sha256,
        "n_threads": layouts["shared"].n_threads,
        "personas": args.personas,
        "turn_tokens": args.turn,
    }
    for length in lengths:
        rates = {
            name: extend_rate(engine, args.personas, length, args.turn, args.repeats)
            for name, engine in layouts.items()
        }
        result[f"L{length}_shared_tokens_per_s"] = round(rates["shared"], 1)
        result[f"L{length}_streams_tokens_per_s"] = round(rates["streams"], 1)
        result[f"L{length}_streams_over_shared"] = round(rates["streams"] / rates["shared"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
