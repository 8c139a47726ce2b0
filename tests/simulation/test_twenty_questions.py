"""Twenty questions: the object bank, the metrics, and games on the real model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulacra.analysis.twenty_questions import (
    consistency_share,
    reveal_entropy,
    summarize,
    summarize_games,
)
from simulacra.llm.cache import get_engine
from simulacra.simulation.twenty_questions import OBJECTS, QUESTIONS, main, play, play_games


@pytest.fixture(scope="module")
def engine():
    return get_engine("smollm2-135m-instruct", n_ctx=2048, n_threads=1)


@pytest.fixture(scope="module")
def games(engine):
    return play_games(engine, 2, seed=3, n_questions=2, n_reveals=12)


def test_every_object_has_a_distinct_answer_signature():
    signatures = {tuple(answers[q] for q in QUESTIONS) for answers in OBJECTS.values()}
    assert len(signatures) == len(OBJECTS)


def test_metrics_on_synthetic_reveals():
    reveals = pd.DataFrame(
        {
            "object": ["dog", "dog", "car", "apple"],
            "consistent": [True, True, False, True],
            "model_consistent": [False, False, False, True],
        }
    )
    assert consistency_share(reveals) == 0.75
    assert consistency_share(reveals, "model_consistent") == 0.25
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert reveal_entropy(reveals) == pytest.approx(h)
    assert reveal_entropy(reveals, 8) == pytest.approx(h / math.log(8))
    assert math.isnan(reveal_entropy(reveals.iloc[:0]))


def test_bad_settings_are_rejected(engine):
    with pytest.raises(ValueError, match="n_questions"):
        play(engine, n_questions=0)
    with pytest.raises(ValueError, match="n_reveals"):
        play(engine, n_reveals=0)
    with pytest.raises(ValueError, match="has no answer"):
        play(engine, objects={"a": {}, "b": {}})


def test_games_track_the_posterior_and_score_the_reveals(games):
    names = list(OBJECTS)
    assert len(games.questions) == 4
    assert set(games.questions["answer"]) <= {"yes", "no"}
    assert games.questions["p_yes"].between(0, 1).all()
    for game, asked in games.questions.groupby("game"):
        assert asked["question"].is_unique  # nothing is asked twice
        posterior = games.posterior[games.posterior["game"] == game]
        assert sorted(posterior["turn"].unique()) == [0, 1, 2]
        sums = posterior.groupby("turn")["posterior"].sum()
        np.testing.assert_allclose(sums, 1.0, atol=1e-9)
        at_end = posterior[posterior["turn"] == 2].set_index("object")
        # consistency against the bank, recomputed by hand
        for name in names:
            expected = all(
                OBJECTS[name][q] == (a == "yes")
                for q, a in zip(asked["question"], asked["answer"], strict=True)
            )
            assert at_end.loc[name, "consistent"] == expected
        final = games.final[games.final["game"] == game].set_index("object")
        assert final["reveal_probability"].sum() == pytest.approx(1.0)
        pd.testing.assert_series_equal(final["consistent"], at_end["consistent"], check_names=False)
        reveals = games.reveals[games.reveals["game"] == game]
        assert len(reveals) == 12 and set(reveals["object"]) <= set(names)
        assert (reveals["consistent"] == reveals["object"].map(final["consistent"])).all()


def test_summaries(games):
    per_game = summarize_games(games)
    assert list(per_game["game"]) == [0, 1]
    assert (per_game["chance_consistency"] == per_game["n_consistent_objects"] / 8).all()
    for column in ("consistency", "normalized_reveal_entropy", "posterior_entropy"):
        assert per_game[column].between(0, 1).all()
    overall = summarize(games).set_index("metric")
    assert overall.loc["consistency", "n"] == 2
    assert overall.loc["consistency", "mean"] == pytest.approx(per_game["consistency"].mean())


def test_games_are_seeded(engine, games):
    again = play_games(engine, 1, seed=3, n_questions=2, n_reveals=12)
    pd.testing.assert_frame_equal(again.questions, games.questions[games.questions["game"] == 0])
    pd.testing.assert_frame_equal(again.reveals, games.reveals[games.reveals["game"] == 0])


def test_command_line(tmp_path, capsys):
    out = tmp_path / "tq"
    args = ["--games", "1", "--questions", "1", "--reveals", "5", "--threads", "1"]
    code = main([*args, "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "consistency" in printed and "reveal" in printed
    for name in ("questions", "posterior", "final", "reveals"):
        assert (out / f"{name}.parquet").is_file()
    summary = pd.read_csv(out / "summary.csv")
    assert "normalized_reveal_entropy" in set(summary["metric"])
