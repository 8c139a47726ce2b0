"""Tidy tables of answers (pure: answers built by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulacra.instruments import Answer, answers_frame, option_frame

CHOICE = Answer(
    "p1",
    "drink",
    "choice",
    options=("tea", "coffee", "water"),
    probabilities=(0.5, 0.3, 0.2),
    per_order=((0.6, 0.2, 0.2), (0.4, 0.4, 0.2), (0.5, 0.3, 0.2)),
    text="tea",
    value=0.0,
)
LIKERT = Answer(
    "p1",
    "mood",
    "likert",
    options=("1", "2", "3"),
    probabilities=(0.2, 0.3, 0.5),
    expected=2.3,
    text="3",
    value=3.0,
)
NUMERIC = Answer("p2", "distance", "numeric", text="about 300 miles", value=300.0, parsed=True)
UNPARSED = Answer("p2", "height", "numeric", text="I don't know", parsed=False)
FREE = Answer("p2", "story", "free_text", text="Once upon a time.")


def test_answers_frame_has_one_typed_row_per_answer():
    frame = answers_frame([CHOICE, LIKERT, NUMERIC, UNPARSED, FREE])
    assert list(frame.columns) == [
        "respondent",
        "instrument",
        "kind",
        "text",
        "value",
        "parsed",
        "expected",
    ]
    assert len(frame) == 5
    assert frame["value"].dtype == np.float64
    assert np.isnan(frame.loc[3, "value"])
    assert frame.loc[3, "text"] == "I don't know"
    assert frame.loc[3, "parsed"] is False or not frame.loc[3, "parsed"]
    assert pd.isna(frame.loc[0, "parsed"])
    assert frame.loc[1, "expected"] == 2.3


def test_option_frame_keeps_mean_and_per_order_rows_with_positions():
    frame = option_frame([CHOICE, LIKERT, NUMERIC])
    choice = frame[frame["instrument"] == "drink"]
    assert len(choice) == 3 + 3 * 3
    mean = choice[choice["order"] == "mean"]
    assert mean["probability"].tolist() == [0.5, 0.3, 0.2]
    assert mean["position"].isna().all()
    # Order 1 lists coffee, water, tea: tea was listed last.
    tea = choice[(choice["order"] == "1") & (choice["option"] == "tea")]
    assert tea["position"].tolist() == [2]
    assert tea["probability"].tolist() == [0.4]
    first_listed = choice[choice["position"] == 0]
    assert sorted(first_listed["option"]) == ["coffee", "tea", "water"]
    likert = frame[frame["instrument"] == "mood"]
    assert likert["order"].unique().tolist() == ["mean"]
    assert likert["option"].tolist() == ["1", "2", "3"]
    assert frame["option_index"].dtype == np.int64


def test_frames_of_no_answers_are_empty_with_their_columns():
    assert len(answers_frame([])) == 0
    assert "probability" in option_frame([]).columns
