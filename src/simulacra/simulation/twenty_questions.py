"""Twenty questions on the model: does the answerer commit to an object before the reveal?

The game of :mod:`simulacra.analysis.twenty_questions` (which holds the protocol,
the result tables and their metrics), played on an engine: an uncommitted
answerer samples yes/no answers, ``N`` committed answerers give the likelihood
of each answer per object, and the uncommitted answerer's reveal distribution is
read at the end. Run it from Python (:func:`play`, :func:`play_games`) or with
``python -m simulacra.simulation.twenty_questions``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from simulacra.analysis.twenty_questions import (
    NO,
    YES,
    TwentyQuestionsResult,
    entropy,
    summarize,
    summarize_games,
)
from simulacra.instruments.choice import choice_text
from simulacra.llm.cache import get_engine
from simulacra.llm.chat import Message, render_dialogue
from simulacra.llm.engine import Engine

__all__ = [
    "ANSWERER",
    "OBJECTS",
    "QUESTIONER",
    "QUESTIONS",
    "main",
    "play",
    "play_games",
]

ANSWERER = "Answerer"
QUESTIONER = "Questioner"

#: The question bank: key -> question text.
QUESTIONS: dict[str, str] = {
    "animal": "Is it an animal?",
    "plant": "Is it a plant or part of a plant?",
    "edible": "Do people usually eat it?",
    "big": "Is it bigger than a person?",
    "flies": "Can it fly?",
    "wheels": "Does it have wheels?",
    "metal": "Is it made mostly of metal?",
    "music": "Is it used to make music?",
    "tool": "Is it a tool for building or repairing things?",
}

#: The objects and their true answer to every question (every object differs).
OBJECTS: dict[str, dict[str, bool]] = {
    name: {key: key in yes for key in QUESTIONS}
    for name, yes in {
        "dog": {"animal"},
        "elephant": {"animal", "big"},
        "eagle": {"animal", "flies"},
        "apple": {"plant", "edible"},
        "oak tree": {"plant", "big"},
        "car": {"big", "wheels", "metal"},
        "hammer": {"metal", "tool"},
        "guitar": {"music"},
    }.items()
}

Questioner = Literal["split", "random"]
_REVEAL_QUESTION = "I give up. Which object did you pick?"


# ------------------------------------------------------------------ the game


def _system(objects: Sequence[str], chosen: str | None) -> str:
    listed = ", ".join(objects)
    text = (
        "We are playing twenty questions. You have secretly picked one object from this "
        f"list: {listed}. The {QUESTIONER} asks yes/no questions to guess it. Answer each "
        'question truthfully about your object with "yes" or "no".'
    )
    return text if chosen is None else f"{text} Your object is: {chosen}."


def _binary_entropy(p: float) -> float:
    return entropy(np.array([p, 1.0 - p]))


def play(
    engine: Engine,
    *,
    objects: Mapping[str, Mapping[str, bool]] = OBJECTS,
    questions: Mapping[str, str] = QUESTIONS,
    n_questions: int = 3,
    n_reveals: int = 20,
    questioner: Questioner = "split",
    seed: int = 0,
    game: int = 0,
) -> TwentyQuestionsResult:
    """Play one game of twenty questions on ``engine``.

    Args:
        engine: the inference engine (its cache is reset first).
        objects: object name -> question key -> true answer.
        questions: question key -> question text.
        n_questions: questions asked before the reveal (<= len(questions)).
        n_reveals: ``M``, the reveals drawn at the end.
        questioner: "split" (the unasked question whose answer is most uncertain
            under the current posterior, ties to bank order) or "random".
        seed: seed of the answers, the questioner and the reveals.
        game: the value of the ``game`` column.

    Returns:
        The game's tables.

    Raises:
        ValueError: on bad settings or an object lacking a question's answer.
    """
    names = list(objects)
    keys = list(questions)
    if len(names) < 2:
        raise ValueError("twenty questions needs at least 2 objects")
    if not 1 <= n_questions <= len(keys):
        raise ValueError(f"n_questions must be in [1, {len(keys)}], got {n_questions}")
    if n_reveals < 1:
        raise ValueError(f"n_reveals must be >= 1, got {n_reveals}")
    if questioner not in ("split", "random"):
        raise ValueError(f"questioner must be 'split' or 'random', got {questioner!r}")
    for name in names:
        missing = [k for k in keys if k not in objects[name]]
        if missing:
            raise ValueError(f"object {name!r} has no answer to {missing}")
    truth = np.array([[bool(objects[o][k]) for k in keys] for o in names])  # (N, Q)

    rng = np.random.default_rng(seed)
    engine.reset()
    chat = engine.chat
    systems = [_system(names, None)] + [_system(names, o) for o in names]
    history: list[Message] = []
    log_post = np.full(len(names), -np.log(len(names)))
    loglik = np.zeros(len(names))
    consistent = np.ones(len(names), dtype=bool)
    asked: list[int] = []
    q_rows: list[dict[str, object]] = []
    p_rows: list[dict[str, object]] = []

    def record(turn: int, p_answer: np.ndarray) -> None:
        post = np.exp(log_post)
        for j, name in enumerate(names):
            p_rows.append(
                {
                    "game": game,
                    "turn": turn,
                    "object": name,
                    "p_answer": float(p_answer[j]),
                    "loglik": float(loglik[j]),
                    "posterior": float(post[j]),
                    "consistent": bool(consistent[j]),
                }
            )

    record(0, np.full(len(names), np.nan))
    p_answers = np.zeros((n_questions, len(names)))
    answers: list[bool] = []
    options = [chat.body(YES), chat.body(NO)]
    for turn in range(1, n_questions + 1):
        remaining = [q for q in range(len(keys)) if q not in asked]
        if questioner == "random":
            q = int(rng.choice(remaining))
        else:
            post = np.exp(log_post)
            q = max(remaining, key=lambda i: _binary_entropy(float(post @ truth[:, i])))
        asked.append(q)
        texts = [choice_text(questions[keys[q]], order) for order in ((YES, NO), (NO, YES))]
        batch = []
        for system in systems:
            for text, opts in zip(texts, (options, options[::-1]), strict=True):
                prompt = render_dialogue(
                    chat, system, [*history, Message(QUESTIONER, text)], ANSWERER
                )
                batch.append((prompt, opts))
        probs = engine.choices(batch)
        p_yes = np.array([(probs[2 * s][0] + probs[2 * s + 1][1]) / 2 for s in range(len(systems))])
        answer = bool(rng.random() < p_yes[0])
        answers.append(answer)
        p_answer = p_yes[1:] if answer else 1.0 - p_yes[1:]
        p_answers[turn - 1] = p_answer
        with np.errstate(divide="ignore"):
            loglik += np.log(p_answer)
        log_post = loglik - np.logaddexp.reduce(loglik)
        consistent &= truth[:, q] == answer
        word = YES if answer else NO
        history += [Message(QUESTIONER, texts[0]), Message(ANSWERER, word)]
        q_rows.append(
            {
                "game": game,
                "turn": turn,
                "question": keys[q],
                "text": questions[keys[q]],
                "answer": word,
                "p_yes": float(p_yes[0]),
            }
        )
        record(turn, p_answer)

    # The reveal: the uncommitted answerer names its object, both listing orders.
    bodies = [chat.body(o) for o in names]
    batch = []
    for order in (names, names[::-1]):
        text = f"{_REVEAL_QUESTION} Answer with one of: {', '.join(order)}."
        prompt = render_dialogue(chat, systems[0], [*history, Message(QUESTIONER, text)], ANSWERER)
        batch.append((prompt, [bodies[names.index(o)] for o in order]))
    forward, backward = engine.choices(batch)
    reveal_p = (forward + backward[::-1]) / 2
    model_consistent = np.all(p_answers >= 0.5, axis=0)
    drawn = rng.choice(len(names), size=n_reveals, p=reveal_p / reveal_p.sum())
    post = np.exp(log_post)
    final = pd.DataFrame(
        {
            "game": game,
            "object": names,
            "reveal_probability": reveal_p,
            "posterior": post,
            "consistent": consistent,
            "model_consistent": model_consistent,
        }
    )
    reveals = pd.DataFrame(
        {
            "game": game,
            "sample": np.arange(n_reveals),
            "object": [names[i] for i in drawn],
            "consistent": consistent[drawn],
            "model_consistent": model_consistent[drawn],
        }
    )
    settings = {
        "model": engine.model_info.name,
        "n_questions": n_questions,
        "n_reveals": n_reveals,
        "questioner": questioner,
        "seed": seed,
        "objects": names,
    }
    return TwentyQuestionsResult(
        pd.DataFrame(q_rows), pd.DataFrame(p_rows), final, reveals, settings
    )


def play_games(
    engine: Engine, games: int, *, seed: int = 0, **kwargs: object
) -> TwentyQuestionsResult:
    """Play ``games`` independent games (seeds derived from ``seed`` and the game index).

    Args:
        engine: the inference engine.
        games: how many games.
        seed: the base seed.
        **kwargs: passed to :func:`play` (``n_questions``, ``n_reveals``, ...).

    Returns:
        The games' tables, concatenated.
    """
    results = []
    for game in range(games):
        game_seed = int(np.random.SeedSequence([seed, game]).generate_state(1)[0])
        results.append(play(engine, seed=game_seed, game=game, **kwargs))  # type: ignore[arg-type]
    settings = {**results[0].settings, "seed": seed, "games": games}
    return TwentyQuestionsResult(
        *(
            pd.concat([getattr(r, name) for r in results], ignore_index=True)
            for name in ("questions", "posterior", "final", "reveals")
        ),
        settings=settings,
    )


# ------------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulacra.simulation.twenty_questions``: play games and print the summary."""
    parser = argparse.ArgumentParser(
        prog="python -m simulacra.simulation.twenty_questions",
        description="Twenty questions: consistency and entropy of regenerated reveals.",
    )
    parser.add_argument("--model", default="smollm2-135m-instruct", help="registry name or GGUF")
    parser.add_argument("--games", type=int, default=10)
    parser.add_argument("--questions", type=int, default=3, help="questions before the reveal")
    parser.add_argument("--reveals", type=int, default=20, help="reveals drawn per game (M)")
    parser.add_argument("--questioner", choices=("split", "random"), default="split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", help="directory for the tables (parquet) and summary.csv")
    args = parser.parse_args(argv)

    engine = get_engine(args.model, n_ctx=4096, n_threads=args.threads)
    started = time.perf_counter()
    result = play_games(
        engine,
        args.games,
        seed=args.seed,
        n_questions=args.questions,
        n_reveals=args.reveals,
        questioner=args.questioner,
    )
    overall = summarize(result, seed=args.seed)
    games = summarize_games(result)
    with pd.option_context("display.width", 160, "display.max_columns", 30):
        print(games.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        print()
        print(overall.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    elapsed = time.perf_counter() - started
    print(f"\n{args.games} games on {engine.model_info.name} in {elapsed:.1f} s")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("questions", "posterior", "final", "reveals"):
            getattr(result, name).to_parquet(out / f"{name}.parquet", index=False)
        games.to_csv(out / "games.csv", index=False)
        overall.to_csv(out / "summary.csv", index=False)
        print(f"tables in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
