"""The goal-guarding benchmark's bookkeeping on the real model (``benchmarks/goal_guarding.py``).

Its full run takes minutes; these check the parts a new unit kind can break: the
steered unit asks free-text questions through the same ``ask`` (no choice to record)
and is a kind of its own in the full design's estimate.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from goal_guarding import Recorder, kind_of

from simulacra.batteries.goal_guarding import run as run_module
from simulacra.batteries.goal_guarding.design import STEER_UNIT
from simulacra.instruments import Choice, FreeText, Respondent


def test_the_recorder_times_free_text_items_and_records_only_choices(engine):
    respondent = Respondent("r0", "You are a careful assistant.")
    items = [
        (respondent, Choice("pick", "Do you keep the log?", ("Yes", "No"))),
        (respondent, FreeText("why", "Why?", max_tokens=2, temperature=0.0)),
    ]
    original = run_module.ask
    with Recorder(engine) as recorder:
        answers = run_module.ask(engine, items, seed=0)
    assert [a.kind for a in answers] == ["choice", "free_text"]
    assert len(recorder.questions) == 2  # the choice in both option orders, nothing else
    assert all(len(options) == 2 for _, options in recorder.questions)
    assert recorder.ask_s > 0
    assert run_module.ask is original  # restored on exit


def test_the_steered_unit_is_a_kind_of_its_own():
    assert [kind_of(c) for c in ("none", "dialogue", STEER_UNIT, "memory", "file")] == [
        "none",
        "dialogue",
        STEER_UNIT,
        "channel",
        "channel",
    ]
