"""The numeric instrument on the real model: seeded, reproducible, nothing dropped."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from simulacra.instruments import Numeric, Respondent, ask
from simulacra.instruments.numeric import numeric_text

DISTANCE = Numeric("distance", "How many miles is it from London to Paris?", unit="miles")


def test_question_asks_for_a_number_in_the_unit():
    assert numeric_text("How far?", "miles") == "How far? Answer with a single number, in miles."
    assert numeric_text("How many?") == "How many? Answer with a single number."
    with pytest.raises(ValueError, match="max_tokens"):
        Numeric("n", "q", max_tokens=0)


def test_every_numeric_answer_is_kept_with_its_text(engine, respondents):
    answers = ask(engine, [(r, DISTANCE) for r in respondents], seed=0)
    for answer in answers:
        assert answer.kind == "numeric"
        assert isinstance(answer.text, str)
        assert "\n" not in answer.text
        assert answer.parsed is (answer.value is not None)


def test_seeded_numeric_answer_is_identical_in_a_new_process(engine):
    respondent = Respondent("chemist", "You are a meticulous chemistry professor.")
    engine.reset()
    here = ask(engine, [(respondent, DISTANCE)], seed=7)[0]
    code = textwrap.dedent(
        """
        from simulacra.instruments import Numeric, Respondent, ask
        from simulacra.llm.engine import Engine
        engine = Engine.load(n_ctx=4096)
        answer = ask(engine, [(RESPONDENT, DISTANCE)], seed=7)[0]
        print(repr((answer.text, answer.value, answer.parsed)))
        """
    )
    code = code.replace("RESPONDENT", repr(respondent)).replace("DISTANCE", repr(DISTANCE))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == repr((here.text, here.value, here.parsed))
