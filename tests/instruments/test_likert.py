"""The Likert instrument on the real model."""

from __future__ import annotations

import pytest

from simulacra.instruments import Likert, ask
from simulacra.instruments.asking import point_continuations
from simulacra.instruments.likert import expected_point, likert_text, point_labels


def test_scale_text_and_labels():
    assert point_labels(3) == ("1", "2", "3")
    assert likert_text("Tired?", 5, "not at all", "very") == (
        "Tired? Answer with a number from 1 (not at all) to 5 (very)."
    )
    assert expected_point([0.0, 0.0, 1.0]) == 3.0
    assert expected_point([0.5, 0.0, 0.5]) == 2.0


def test_bad_scales_are_clear_errors():
    with pytest.raises(ValueError, match=r"points must be in \[2, 101\]"):
        Likert("l", "q", 1, "low", "high")
    with pytest.raises(ValueError, match="must be an integer"):
        Likert("l", "q", 4.5, "low", "high")
    with pytest.raises(ValueError, match="both ends need a label"):
        Likert("l", "q", 5, "", "high")


def test_points_up_to_nine_are_one_token_and_ten_are_not(engine):
    # Read at one position: the bare labels, one token each.
    assert point_continuations(engine, 7) == list(point_labels(7))
    assert all(len(engine.tokenize(c)) == 1 for c in point_continuations(engine, 7))
    # "10" is two tokens for SmolLM2: every label is scored up to the end of its message.
    long_scale = point_continuations(engine, 10)
    assert long_scale[0] == "1" + engine.chat.footer()
    assert long_scale[9] == "10" + engine.chat.footer()


@pytest.mark.parametrize("points", [5, 7, 10])
def test_likert_sums_to_one_and_its_expectation_lies_within_the_scale(engine, respondents, points):
    scale = Likert(
        "adventure", "How much do you enjoy adventure?", points, "not at all", "very much"
    )
    answers = ask(engine, [(r, scale) for r in respondents], seed=4)
    for answer in answers:
        assert answer.kind == "likert"
        assert answer.options == point_labels(points)
        assert sum(answer.probabilities) == pytest.approx(1.0, abs=1e-12)
        assert all(p > 0 for p in answer.probabilities)
        assert 1 <= answer.expected <= points
        assert answer.value in range(1, points + 1)
        assert answer.text == str(int(answer.value))
        assert answer.per_order == ()
