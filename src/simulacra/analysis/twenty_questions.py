"""Twenty questions: does the answerer commit to an object before it is asked to reveal it?

Shanahan, McDonell & Reynolds ("Role play with large language models", Nature
2023) argue that a dialogue agent playing twenty questions
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

This module holds the result tables and their metrics (pure functions); the
game itself, which runs the model, is :mod:`simulacra.simulation.twenty_questions`. The
game is not a scenario file (the scenario schema has no yes/no question bank);
run it from Python (:func:`simulacra.simulation.twenty_questions.play`,
:func:`~simulacra.simulation.twenty_questions.play_games`) or with
``python -m simulacra.simulation.twenty_questions``.

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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulacra.analysis.collapse import bootstrap_ci

__all__ = [
    "NO",
    "YES",
    "TwentyQuestionsResult",
    "consistency_share",
    "entropy",
    "reveal_entropy",
    "summarize",
    "summarize_games",
]

YES, NO = "yes", "no"
"""The answers a game records."""


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


def entropy(p: np.ndarray) -> float:
    """Entropy (nats) of a probability vector (zeros ignored)."""
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
                "reveal_distribution_entropy": entropy(final["reveal_probability"].to_numpy(float))
                / log_n,
                "posterior_entropy": entropy(final["posterior"].to_numpy(float)) / log_n,
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
