"""Benchmark: one batched Choice over 200 personas vs scoring every prompt from scratch.

The workload of issue 9: 200 respondents, each a distinct persona prompt of about
60 tokens, asked one shared question of about 120 tokens with two options, in both
orders (so 400 prompts and 800 option continuations). In one run it measures:

- the instruments path, :func:`simulacra.instruments.ask` on a reset engine: one
  batched scoring call, each persona decoded once and shared by its two orders,
  single-token options read at one position;
- a naive baseline that scores every prompt x order x option from an empty cache,
  one at a time (``engine.reset()`` then ``engine.loglik``), as peer frameworks do;
- raw ``llama_decode`` throughput: the engine pass's own decode calls (and cache
  copies) recorded and replayed on a reset context with no Python bookkeeping, no
  tokenization and no log-softmax, timing only ``llama_decode``.

The two answers are compared: the largest gap between the engine's and the naive
probabilities is reported (``max_abs_gap``).

Every run also measures the model's prompt-evaluation rate (:mod:`baseline`) and
reports ``engine_over_prompt_eval`` and ``decoded_over_unique``; ``--engine-only``
skips the naive and raw passes (no ``speedup`` then).

Run alone on an idle machine: ``python benchmarks/instruments.py --json``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from baseline import TokenLog, add_baseline_arguments, prompt_eval_rate, throughput_fields
from decode_log import DecodeLog, replay

from simulacra.instruments import Choice, Respondent, ask
from simulacra.instruments.asking import instrument_text
from simulacra.instruments.choice import choice_text, option_orders, softmax
from simulacra.instruments.respondent import question_prompt
from simulacra.llm.engine import Engine

NAMES = [
    "Amara", "Bjorn", "Chen", "Dolores", "Emeka", "Farida", "Gustavo", "Hana", "Ivan", "Jun",
    "Kwame", "Leila", "Mateo", "Noor", "Olga", "Pradeep", "Quinn", "Rosa", "Sven", "Tamar",
]  # fmt: skip
JOBS = [
    "nurse", "carpenter", "accountant", "bus driver", "school teacher", "software developer",
    "farmer", "chef", "police officer", "librarian",
]  # fmt: skip
TOWNS = [
    "a small fishing village",
    "a busy capital city",
    "a quiet mountain town",
    "the suburbs",
    "a farming county",
]
TRAITS = [
    ("cautious", "thrifty"), ("generous", "talkative"), ("stubborn", "loyal"),
    ("curious", "impulsive"), ("shy", "meticulous"), ("cheerful", "competitive"),
]  # fmt: skip
VALUES = ["honesty", "family", "financial security", "fairness", "personal freedom", "tradition"]
QUESTION = (
    "Here is a situation. You are walking home late on a rainy evening after a long and tiring "
    "week. On the pavement outside a closed bakery you find a brown leather wallet. Inside there "
    "are four hundred dollars in cash, two bank cards, a bus pass and an identity card with a "
    "name and an address on the other side of town, about forty minutes away by bus. Nobody is "
    "around, there are no cameras that you can see, and nobody would ever know what you decided "
    "to do. You have been short of money this month and your rent is due on Monday. Thinking "
    "about the kind of person you are, what would you most likely do with the wallet?"
)
OPTIONS = ("return the wallet with the money", "keep the cash")


def personas(n: int) -> list[str]:
    """``n`` distinct persona prompts of about 60 tokens."""
    rng = np.random.default_rng(0)
    out, seen = [], set()
    while len(out) < n:
        name = NAMES[rng.integers(len(NAMES))]
        age = int(rng.integers(19, 80))
        job = JOBS[rng.integers(len(JOBS))]
        town = TOWNS[rng.integers(len(TOWNS))]
        first, second = TRAITS[rng.integers(len(TRAITS))]
        value = VALUES[rng.integers(len(VALUES))]
        key = (name, age, job, town, first, value)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            f"You are {name}, a {age}-year-old {job} from {town}. You are {first} and {second}, "
            f"and what matters most to you is {value}. You answer questions about yourself "
            "honestly, in the first person, with a short and direct reply."
        )
    return out


def run_engine(engine: Engine, items: list) -> tuple[float, list]:
    engine.reset()
    started = time.perf_counter()
    answers = ask(engine, items, seed=0)
    return time.perf_counter() - started, answers


def run_naive(engine: Engine, items: list) -> tuple[float, int, list[np.ndarray]]:
    """Every prompt x order x option scored from an empty cache, one at a time."""
    total, tokens, answers = 0.0, 0, []
    for respondent, choice in items:
        per_order = []
        for order in option_orders(len(choice.options)):
            listed = [choice.options[j] for j in order]
            prompt = question_prompt(engine.chat, respondent, choice_text(choice.question, listed))
            values = []
            for option in listed:
                engine.reset()
                before = engine.stats.tokens_decoded
                started = time.perf_counter()
                values.append(float(engine.loglik([prompt], engine.chat.body(option))[0]))
                total += time.perf_counter() - started
                tokens += engine.stats.tokens_decoded - before
            row = np.zeros(len(order))
            row[list(order)] = softmax(np.array(values))
            per_order.append(row)
        answers.append(np.mean(per_order, axis=0))
    return total, tokens, answers


def record_engine(engine: Engine, items: list) -> tuple[list, int]:
    """The engine pass's llama.cpp calls, in order, and the tokens it decoded."""
    engine.reset()
    before = engine.stats.tokens_decoded
    with DecodeLog() as log:
        ask(engine, items, seed=0)
    return log.events, engine.stats.tokens_decoded - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--prompts", type=int, default=200, help="personas (respondents)")
    parser.add_argument("--model", default=None, help="registry name or GGUF path")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="engine passes (median)")
    parser.add_argument(
        "--options", nargs=2, default=list(OPTIONS), help="the two options (any length)"
    )
    parser.add_argument("--engine-only", action="store_true", help="skip naive and raw")
    parser.add_argument("--save-answers", default=None, help="write the probabilities (.npy)")
    add_baseline_arguments(parser)
    args = parser.parse_args()

    engine = Engine.load(
        args.model, n_ctx=16384, n_threads=args.threads, n_gpu_layers=args.gpu_layers
    )
    choice = Choice("wallet", QUESTION, tuple(args.options))
    items = [
        (Respondent(f"p{k:03d}", text), choice) for k, text in enumerate(personas(args.prompts))
    ]
    persona_tokens = [len(engine.tokenize(r.system)) for r, _ in items]
    question_tokens = len(engine.tokenize(instrument_text(choice)))
    option_tokens = [len(engine.tokenize(engine.chat.body(o))) for o in choice.options]

    ask(engine, items[:4], seed=0)  # warm-up
    before, evicted = engine.stats.tokens_decoded, engine.stats.evictions
    needed = TokenLog(engine)
    with needed:  # the first pass also records the tokens it needed
        first, answers = run_engine(engine, items)
    passes = [first] + [run_engine(engine, items)[0] for _ in range(args.repeats - 1)]
    engine_tokens = (engine.stats.tokens_decoded - before) // len(passes)
    evictions = (engine.stats.evictions - evicted) // len(passes)
    if args.save_answers:
        np.save(args.save_answers, np.array([a.probabilities for a in answers]))
    engine_s = float(np.median(passes))
    baseline = prompt_eval_rate(engine, n_tokens=args.prompt_eval_tokens)
    unique = needed.unique()
    result = {
        "model": engine.model_info.name,
        "model_sha256": engine.sha256,
        "n_threads": engine.n_threads,
        "prompts": len(items),
        "orders": len(option_orders(len(choice.options))),
        "persona_tokens_mean": round(float(np.mean(persona_tokens)), 1),
        "question_tokens": question_tokens,
        "option_tokens": option_tokens,
        "engine_s": round(engine_s, 4),
        "engine_pass_s": [round(t, 4) for t in passes],
        "engine_tokens": engine_tokens,
        "engine_tokens_per_s": round(engine_tokens / engine_s, 1),
        "engine_evictions": evictions,
        **throughput_fields(engine_tokens, engine_s, unique, baseline),
        "engine_ms_per_prompt": round(1000 * engine_s / len(items), 2),
    }
    if not args.engine_only:
        calls, recorded_tokens = record_engine(engine, items)
        raw_s, raw_tokens = replay(engine, calls)
        naive_s, naive_tokens, naive_answers = run_naive(engine, items)
        gap = max(
            float(np.max(np.abs(np.array(a.probabilities) - b)))
            for a, b in zip(answers, naive_answers, strict=True)
        )
        result |= {
            "naive_s": round(naive_s, 4),
            "speedup": round(naive_s / engine_s, 3),
            "naive_tokens": naive_tokens,
            "raw_tokens": raw_tokens,
            "recorded_tokens": recorded_tokens,
            "naive_tokens_per_s": round(naive_tokens / naive_s, 1),
            "raw_tokens_per_s": round(raw_tokens / raw_s, 1),
            "engine_over_raw": round((engine_tokens / engine_s) / (raw_tokens / raw_s), 3),
            "naive_ms_per_prompt": round(1000 * naive_s / len(items), 2),
            "max_abs_gap": round(gap, 6),
        }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")


if __name__ == "__main__":
    main()
