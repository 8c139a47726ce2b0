"""Twenty questions: does the answerer commit to an object before it is asked to reveal it?

Shanahan, McDonell & Reynolds ("Role play with large language models", Nature
2023; PROTOCOLS.md §1) argue that a dialogue agent playing twenty questions
never picks an object in advance: it keeps a superposition over every object
consistent with the answers so far, and regenerating the reveal gives different
objects, each consistent with all the answers. The argument predicts a high
share of consistent reveals *and* a high entropy of the reveals.

The game here:

- The *answerer* is told it has secretly picked one of ``N`` objects from a list,
  without being told which one (the uncommitted prompt).
- The *questioner*, a simple agent, asks yes/no questions from a bank whose true
  answer for every object is known (:data:`OBJECTS`). By default it picks the
  unasked question whose answer is most uncertain under the current posterior
  ("split"); or a random one.
- Each answer is **sampled** from the model: ``P(yes)`` is the answerer's forced
  choice between "yes" and "no" (averaged over both option orders, as the probes
  do), and the answer is drawn from it. It enters the dialogue.
- ``P(object | answers)`` is tracked by likelihood: the same question is put to
  ``N`` committed answerers ("Your object is: o") and
  ``P(o | answers) ∝ prod_i P(a_i | o, history_i)`` from a uniform prior.
- At the end the uncommitted answerer is asked which object it picked; the
  forced-choice distribution over the ``N`` names (both listing orders) is the
  reveal distribution, and ``M`` reveals are drawn from it.

Reported per game (:func:`summarize_games`) and over games (:func:`summarize`):

- ``consistency``: share of reveals whose true answers (:data:`OBJECTS`) match
  every answer given; ``chance_consistency``: the share of the ``N`` objects that
  do, i.e. what reveals drawn uniformly at random would score;
- ``model_consistency``: share of reveals ``o`` for which the committed model
  itself favours every answer given (``P(a_i | o) >= 0.5``);
- ``reveal_entropy``: entropy of the ``M`` reveals (nats, and normalised by
  ``log N``), and ``reveal_distribution_entropy`` of the distribution itself.

The game is not a scenario file (the scenario schema has no yes/no question
bank); run it from Python (:func:`play`, :func:`play_games`) or with
``python -m simulacra.analysis.twenty_questions``.

Measured with the defaults (10 games, 3 questions, 20 reveals, seed 0): the
embedded models do not play the game. The consistency of the reveals is at the
chance level (SmolLM2-135M-Instruct 0.07 [0.01, 0.14], Gemma-3-270M 0.15
[0.05, 0.27], chance 0.09 [0.04, 0.15]); in half the games the sampled answers
already contradict every object; and ``P(object | answers)`` stays almost flat
(normalised entropy 0.998-0.999) because the committed answerers answer nearly
alike whatever their object. The reveals are fairly spread (normalised entropy
0.47 and 0.66) but dominated by one name (SmolLM2 reveals "apple" most often in
9 of 10 games), so their entropy reflects indifference to the answers, not a
superposition of consistent objects.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from simulacra.analysis.collapse import bootstrap_ci
from simulacra.llm.chat import Message, render_dialogue
from simulacra.llm.engine import Engine
from simulacra.probes import question_text

__all__ = [
    "ANSWERER",
    "OBJECTS",
    "QUESTIONER",
    "QUESTIONS",
    "TwentyQuestionsResult",
    "consistency_share",
    "main",
    "play",
    "play_games",
    "reveal_entropy",
    "summarize",
    "summarize_games",
]

ANSWERER = "Answerer"
QUESTIONER = "Questioner"
YES, NO = "yes", "no"

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


@dataclass
class TwentyQuestionsResult:
    """The tables of one or more games (one row per observation, keyed by ``game``).

    Attributes:
        questions: ``game, turn, question, text, answer, p_yes``: the question
            asked at each turn, the sampled answer and the uncommitted answerer's
            ``P(yes)``.
        posterior: ``game, turn, object, p_answer, loglik, posterior,
            consistent``: per object after each turn (turn 0 is the uniform
            prior), the committed answerer's probability of the answer given,
            the cumulative log-likelihood, ``P(object | answers)`` and whether the
            object's true answers match every answer so far.
        final: ``game, object, reveal_probability, posterior, consistent,
            model_consistent``: the reveal distribution at the end of each game.
        reveals: ``game, sample, object, consistent, model_consistent``: the
            ``M`` sampled reveals.
        settings: the game settings (model, questions, reveals, questioner, seed).
    """

    questions: pd.DataFrame
    posterior: pd.DataFrame
    final: pd.DataFrame
    reveals: pd.DataFrame
    settings: dict[str, object]

    def summary(self) -> pd.DataFrame:
        """Per-game metrics; see :func:`summarize_games`."""
        return summarize_games(self)


# ------------------------------------------------------------------ metrics


def consistency_share(reveals: pd.DataFrame, column: str = "consistent") -> float:
    """Share of reveals consistent with every answer given (NaN without reveals)."""
    values = reveals[column].to_numpy(dtype=float)
    return float(values.mean()) if values.size else float("nan")


def reveal_entropy(reveals: pd.DataFrame, n_objects: int | None = None) -> float:
    """Entropy of the revealed objects (nats); normalised by ``log N`` when ``n_objects`` is given.

    Args:
        reveals: one row per reveal, with an ``object`` column.
        n_objects: ``N``; when given the result is ``H / log N``.

    Returns:
        The plug-in entropy of the reveal frequencies; NaN without reveals.
    """
    if reveals.empty:
        return float("nan")
    freq = reveals["object"].value_counts(normalize=True).to_numpy(dtype=float)
    h = float(max(-(freq * np.log(freq)).sum(), 0.0))
    return h / np.log(n_objects) if n_objects else h


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(max(-(p * np.log(p)).sum(), 0.0))


def summarize_games(result: TwentyQuestionsResult) -> pd.DataFrame:
    """One row of metrics per game.

    Columns: ``game``, ``n_questions``, ``n_objects``, ``n_reveals``,
    ``n_consistent_objects`` (objects whose true answers match all answers),
    ``chance_consistency`` (that count / N), ``consistency``,
    ``model_consistency``, ``reveal_entropy`` (nats),
    ``normalized_reveal_entropy`` (/ log N), ``max_consistent_entropy``
    (``log(n_consistent_objects) / log N``, the highest normalised entropy fully
    consistent reveals could have), ``reveal_distribution_entropy`` (normalised
    entropy of the reveal distribution), ``posterior_entropy`` (normalised
    entropy of ``P(object | answers)`` at the end), ``posterior_consistent_mass``
    (its mass on consistent objects), ``modal_reveal`` and ``yes_share`` (share of
    "yes" answers).
    """
    rows = []
    for game, final in result.final.groupby("game", sort=True):
        n = len(final)
        log_n = np.log(n)
        reveals = result.reveals[result.reveals["game"] == game]
        asked = result.questions[result.questions["game"] == game]
        n_consistent = int(final["consistent"].sum())
        rows.append(
            {
                "game": game,
                "n_questions": len(asked),
                "n_objects": n,
                "n_reveals": len(reveals),
                "n_consistent_objects": n_consistent,
                "chance_consistency": n_consistent / n,
                "consistency": consistency_share(reveals),
                "model_consistency": consistency_share(reveals, "model_consistent"),
                "reveal_entropy": reveal_entropy(reveals),
                "normalized_reveal_entropy": reveal_entropy(reveals, n),
                "max_consistent_entropy": np.log(n_consistent) / log_n if n_consistent else 0.0,
                "reveal_distribution_entropy": _entropy(final["reveal_probability"].to_numpy(float))
                / log_n,
                "posterior_entropy": _entropy(final["posterior"].to_numpy(float)) / log_n,
                "posterior_consistent_mass": float(
                    final["posterior"].to_numpy(float)[final["consistent"].to_numpy(bool)].sum()
                ),
                "modal_reveal": reveals["object"].mode().iloc[0] if len(reveals) else None,
                "yes_share": float((asked["answer"] == YES).mean()) if len(asked) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def summarize(result: TwentyQuestionsResult, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Means over games with percentile-bootstrap 95% intervals.

    Returns:
        One row per metric of :func:`summarize_games` (numeric ones): ``metric``,
        ``mean``, ``low``, ``high``, ``n`` (games).
    """
    games = summarize_games(result)
    metrics = [
        "chance_consistency",
        "consistency",
        "model_consistency",
        "normalized_reveal_entropy",
        "max_consistent_entropy",
        "reveal_distribution_entropy",
        "posterior_entropy",
        "posterior_consistent_mass",
        "yes_share",
    ]
    rng = np.random.default_rng(seed)
    rows = []
    for metric in metrics:
        values = games[metric].to_numpy(dtype=float)
        mean, low, high = bootstrap_ci(values, np.mean, n_boot, 0.95, rng)
        rows.append((metric, mean, low, high, int(np.count_nonzero(~np.isnan(values)))))
    return pd.DataFrame(rows, columns=["metric", "mean", "low", "high", "n"])


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
    return _entropy(np.array([p, 1.0 - p]))


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
        texts = [question_text(questions[keys[q]], order) for order in ((YES, NO), (NO, YES))]
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
    """``python -m simulacra.analysis.twenty_questions``: play games and print the summary."""
    parser = argparse.ArgumentParser(
        prog="python -m simulacra.analysis.twenty_questions",
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

    from simulacra.runner import get_engine
    from simulacra.scenario import ModelSpec

    spec = (
        ModelSpec(path=args.model, n_ctx=4096)
        if args.model.endswith(".gguf")
        else ModelSpec(name=args.model, n_ctx=4096)
    )
    engine = get_engine(spec, n_threads=args.threads)
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
