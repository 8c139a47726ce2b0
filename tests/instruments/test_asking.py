"""Asking many items at once, on the real model: batching and per-item seeding."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from simulacra.errors import SimulacraWarning
from simulacra.instruments import (
    Choice,
    FreeText,
    Likert,
    Numeric,
    Respondent,
    answers_frame,
    ask,
    asking,
    item_seed,
    option_frame,
    redraw,
)
from simulacra.instruments.grouping import trie_cells
from simulacra.llm.chat import Message
from simulacra.llm.engine import Engine

DRINK = Choice("drink", "Would you rather drink tea or coffee?", ("tea", "coffee"))
SEASON = Choice("season", "Which season do you like best?", ("summer", "winter", "autumn"))
MOOD = Likert("mood", "How cheerful do you feel today?", 7, "gloomy", "elated")
AGE = Numeric("age", "How old are you?", unit="years")
CREW = Numeric("crew", "How many people live in your house?", max_tokens=12, temperature=0.7)
STORY = FreeText("story", "Tell me about your day in one sentence.", max_tokens=24)
INSTRUMENTS = (DRINK, SEASON, MOOD, AGE, CREW, STORY)


def test_item_seed_is_a_stable_hash():
    # A fixed value: the seed must not depend on the process, the platform or the run.
    assert item_seed(3, "p1", "drink") == 993701704820159336
    assert item_seed(0, "p1", "drink") != item_seed(1, "p1", "drink")
    assert item_seed(0, "p1", "drink") != item_seed(0, "p2", "drink")
    assert item_seed(0, "p1", "drink") != item_seed(0, "p1", "drinks")
    assert 0 <= item_seed(-1, "p1", "drink") < 2**64


def test_one_scoring_call_and_one_generation_call_per_setting(engine, respondents, monkeypatch):
    calls: list[tuple[str, int]] = []
    score, generate = engine.option_logprobs, engine.generate

    def counted_score(questions):
        calls.append(("score", len(questions)))
        return score(questions)

    def counted_generate(prompts, **kwargs):
        calls.append(("generate", len(prompts)))
        return generate(prompts, **kwargs)

    monkeypatch.setattr(engine, "option_logprobs", counted_score)
    monkeypatch.setattr(engine, "generate", counted_generate)
    items = [(r, i) for r in respondents for i in INSTRUMENTS]
    answers = ask(engine, items, seed=2)
    n = len(respondents)
    # Orders: 2 for the drink, 3 for the season; one scale.
    assert calls[0] == ("score", n * (2 + 3 + 1))
    assert sorted(calls[1:]) == [("generate", n)] * 3
    assert [(a.respondent, a.instrument) for a in answers] == [(r.key, i.name) for r, i in items]
    kinds = {a.instrument: a.kind for a in answers}
    assert kinds == {
        "drink": "choice",
        "season": "choice",
        "mood": "likert",
        "age": "numeric",
        "crew": "numeric",
        "story": "free_text",
    }
    frame = answers_frame(answers)
    assert len(frame) == len(items)
    options = option_frame(answers)
    assert len(options) == n * ((2 + 2 * 2) + (3 + 3 * 3) + 7)


def test_an_answer_does_not_change_when_other_items_share_the_call(engine, respondents):
    target = respondents[1]
    alone = {a.instrument: a for a in ask(engine, [(target, i) for i in INSTRUMENTS], seed=5)}
    crowd = [(r, i) for i in INSTRUMENTS[::-1] for r in respondents[::-1]]
    crowd.append((Respondent("extra", "You are a grumpy old librarian."), DRINK))
    together = ask(engine, crowd, seed=5)
    shared = {a.instrument: a for a in together if a.respondent == target.key}
    for name, a in alone.items():
        b = shared[name]
        assert a.text == b.text, name
        assert a.value == b.value, name
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-4), name
        if a.expected is not None:
            assert a.expected == pytest.approx(b.expected, abs=1e-4), name


def test_free_text_is_a_sampled_reply(engine, respondents):
    answer = ask(engine, [(respondents[0], STORY)], seed=1)[0]
    assert answer.kind == "free_text"
    assert answer.text and answer.value is None and answer.parsed is None


def test_redraw_is_what_ask_answers_under_another_seed(engine, respondents):
    items = [(r, i) for r in respondents for i in (DRINK, SEASON, MOOD)]
    engine.reset()
    first = ask(engine, items, seed=1)
    again = ask(engine, items, seed=2)
    redrawn = [redraw(a, r, i, 2) for a, (r, i) in zip(first, items, strict=True)]
    assert redrawn == again  # every field, the scores bit for bit
    assert [a.text for a in redrawn] != [a.text for a in first]  # a new draw somewhere
    with pytest.raises(ValueError, match="not a scored answer"):
        redraw(first[0], respondents[0], SEASON, 2)


def test_bad_items_are_clear_errors(engine, respondents):
    with pytest.raises(TypeError, match="item 0 must be a"):
        ask(engine, [DRINK])
    with pytest.raises(TypeError, match="item 1: expected a Respondent"):
        ask(engine, [(respondents[0], DRINK), ("p1", DRINK)])
    with pytest.raises(TypeError, match="expected a Choice, Likert, Numeric or FreeText"):
        ask(engine, [(respondents[0], "How are you?")])
    assert ask(engine, []) == []


def test_ask_turns_a_small_cache_over_quietly_and_counts_it(respondents):
    # Three option orders per item, three respondents, a pool of two: the cache turns over.
    engine = Engine.load(n_ctx=1024, n_threads=2, n_seq_max=2)
    try:
        items = [(r, SEASON) for r in respondents]
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            answers = ask(engine, items, seed=2)
        assert engine.stats.evictions > 0
        assert not [w for w in record if issubclass(w.category, SimulacraWarning)]
        assert all(sum(a.probabilities) == pytest.approx(1.0) for a in answers)
        # The scenario warning is only silenced inside ask, not afterwards.
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            engine.loglik([r.system for r in respondents], " Ahoy!")
        assert [w for w in record if issubclass(w.category, SimulacraWarning)]
    finally:
        engine.close()


GOLDEN = Path(__file__).with_name("golden_ask.json")


def golden_items() -> list[tuple[Respondent, object]]:
    """Four respondents x two choices, a scale and a numeric estimate."""
    personas = {
        "pirate": "You are a boisterous pirate captain who loves the sea, rum and treasure.",
        "chemist": "You are a meticulous chemistry professor who values precision above all.",
        "toddler": "You are a sleepy toddler who only wants snacks and naps.",
        "librarian": "You are a grumpy old librarian who hates noise.",
    }
    history = (
        Message("Bob", "Good evening! Long day?"),
        Message("Assistant", "Aye, a long day at sea."),
    )
    asked = [Respondent(k, v, history if k == "pirate" else ()) for k, v in personas.items()]
    return [(r, i) for r in asked for i in (DRINK, SEASON, MOOD, AGE)]


def test_ask_in_groups_answers_exactly_as_one_call_did(monkeypatch):
    """A call that overflows a small cache is asked in groups.

    ``golden_ask.json`` holds the answers of ``ask`` before it formed groups (one
    scoring call over every item, one generation call, on a large cache): the
    grouped answers are the same: labels, text and values bit for bit, probabilities
    to 1e-12 relative.
    """
    monkeypatch.setattr(asking, "GROUP_CELLS", 300)
    with Engine.load(n_ctx=512, n_threads=2) as small:
        calls: list[int] = []
        score = small.option_logprobs

        def counted(questions):
            calls.append(len(questions))
            return score(questions)

        monkeypatch.setattr(small, "option_logprobs", counted)
        small.loglik(["You are a lighthouse keeper."], " Hello.")  # the caller's sequence
        own = max(small.pool.sequences, key=lambda s: s.last_used)
        own_id, own_tokens = own.seq_id, own.tokens.tolist()
        answers = ask(small, golden_items(), seed=4)
        assert len(calls) > 1  # the respondents did not fit one call
        golden = json.loads(GOLDEN.read_text())
        got = [[a.respondent, a.instrument, a.text, a.value] for a in answers]
        assert got == [[r, i, t, v] for r, i, _, t, v in golden]  # labels and text exact
        # Probabilities to 1e-12 relative: on a fresh install on 2026-12-02 one value came
        # out one ulp from the golden file with no change to the decode or instrument code
        # (the golden quickstart test met the same on numpy's side).
        for answer, (*_, probabilities, _text, _value) in zip(answers, golden, strict=True):
            np.testing.assert_allclose(answer.probabilities, probabilities, rtol=1e-12, atol=0)
        # The groups' sequences were cleared in between; the caller's was not touched.
        assert small.pool.sequences[own_id].tokens.tolist() == own_tokens


def test_a_call_the_cache_holds_is_one_call(engine, monkeypatch):
    """Below the cache's size nothing changes: one scoring call, however many cells."""
    monkeypatch.setattr(asking, "GROUP_CELLS", 300)
    calls: list[int] = []
    score = engine.option_logprobs
    monkeypatch.setattr(engine, "option_logprobs", lambda q: calls.append(len(q)) or score(q))
    engine.reset()
    ask(engine, [item for item in golden_items() if item[1] is not AGE], seed=4)
    assert calls == [4 * (2 + 3 + 1)]


def many_questions() -> list[tuple[Respondent, object]]:
    """One respondent, many questions: a context larger than a small cache."""
    pirate = Respondent(
        "pirate",
        "You are a boisterous pirate captain who loves the sea, rum and treasure.",
        (Message("Bob", "Good evening! Long day?"), Message("Assistant", "Aye, at sea.")),
    )
    stems = (
        "Which would you take on a long voyage, {} or {}?",
        "If the crew could only have one, would it be {} or {}?",
        "Pick one for the captain's table tonight: {} or {}.",
    )
    pairs = (("rum", "water"), ("a map", "a compass"), ("bread", "fish"), ("a parrot", "a cat"))
    items: list[tuple[Respondent, object]] = [
        (pirate, Choice(f"q{s}{p}", stem.format(*pair), pair))
        for s, stem in enumerate(stems)
        for p, pair in enumerate(pairs)
    ]
    return [*items, (pirate, MOOD), (pirate, AGE)]


def test_one_context_too_large_for_the_cache_is_asked_item_by_item(monkeypatch):
    """A respondent with more questions than the cache holds is cut into groups.

    Each group starts on a cleared cache but for the prefix all its prompts share,
    so every sequence's cells lie in the order of its positions: every answer is
    the one that item gets asked alone on an empty cache, bit for bit, and the
    shared prefix is not decoded again group after group.
    """
    monkeypatch.setattr(asking, "GROUP_CELLS", 300)
    items = many_questions()
    with Engine.load(n_ctx=512, n_threads=2) as small:
        calls: list[int] = []
        score = small.option_logprobs
        monkeypatch.setattr(small, "option_logprobs", lambda q: calls.append(len(q)) or score(q))
        grouped = ask(small, items, seed=5)
        decoded = small.stats.tokens_decoded
        assert len(calls) > 2  # the one context was cut into groups
        monkeypatch.undo()
        alone = []
        for item in items:
            small.reset()
            alone += ask(small, [item], seed=5)
    for got, expected in zip(grouped, alone, strict=True):
        assert (got.instrument, got.text, got.value) == (
            expected.instrument,
            expected.text,
            expected.value,
        )
        assert got.probabilities == expected.probabilities
    with Engine.load(n_ctx=4096, n_threads=2) as large:
        ask(large, items, seed=5)  # one call: every shared prefix decoded once
        assert decoded <= 1.1 * large.stats.tokens_decoded


def test_held_forks_of_one_prompt_count_its_cells_once(monkeypatch):
    """A call beside many forks of one long prompt is one call, as on an empty cache.

    The forks' summed lengths are several times the cache, their distinct cells a
    fraction of it: counted by sum, the call seemed not to fit and was cut into
    groups (a re-asked participant beside the forks of its own earlier prompts).
    """
    monkeypatch.setattr(asking, "GROUP_CELLS", 300)  # groups smaller than the call
    long = "You are a retired sea captain. " * 30
    items = [item for item in golden_items() if item[1] is not AGE]
    with Engine.load(n_ctx=2048, n_threads=2) as engine:
        engine.loglik([f"{long}Visitor {k} knocks." for k in range(24)], " Hi.")
        held = [seq.tokens for seq in engine.pool.sequences if len(seq.tokens)]
        assert len(held) == 24
        assert sum(len(t) for t in held) > 2 * engine.n_ctx > 4 * trie_cells(held)
        calls: list[int] = []
        score = engine.option_logprobs
        monkeypatch.setattr(engine, "option_logprobs", lambda q: calls.append(len(q)) or score(q))
        answers = ask(engine, items, seed=4)
        assert calls == [4 * (2 + 3 + 1)]  # one call
        assert engine.stats.evictions == 0
    with Engine.load(n_ctx=2048, n_threads=2) as empty:
        alone = ask(empty, items, seed=4)
    assert answers == alone
