"""The choice instrument: order counterbalancing, on the real model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulacra.instruments import Choice, ask
from simulacra.instruments.choice import choice_text, option_orders, order_probabilities

DRINK = Choice("drink", "Would you rather drink tea or coffee?", ("tea", "coffee"))
SEASON = Choice("season", "Which season do you like best?", ("summer", "winter", "autumn"))


def test_orders_are_the_cyclic_rotations():
    assert option_orders(2) == [(0, 1), (1, 0)]
    assert option_orders(3) == [(0, 1, 2), (1, 2, 0), (2, 0, 1)]


def test_question_lists_options_in_the_asked_order():
    assert choice_text("Tea?", ["tea", "coffee"]) == 'Tea? Answer with "tea" or "coffee".'
    assert choice_text("Which?", ["a", "b", "c"]) == 'Which? Answer with "a", "b" or "c".'


def test_per_order_columns_are_in_the_original_option_order():
    orders = option_orders(3)
    # In every order the option listed first gets all the mass: pure position bias.
    logprobs = [np.array([0.0, -50.0, -50.0])] * 3
    per_order = order_probabilities(orders, logprobs)
    np.testing.assert_allclose(per_order, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(per_order.mean(axis=0), [1 / 3] * 3)


def test_bad_choices_are_clear_errors():
    with pytest.raises(ValueError, match="at least two options"):
        Choice("c", "q", ("only",))
    with pytest.raises(ValueError, match="empty option"):
        Choice("c", "q", ("yes", " "))
    with pytest.raises(ValueError, match="repeats an option"):
        Choice("c", "q", ("yes", "yes"))


def by_option(answer) -> dict[str, float]:
    return dict(zip(answer.options, answer.probabilities, strict=True))


def by_first_listed(answer) -> dict[str, tuple[float, ...]]:
    """Per-order rows keyed by the option each order lists first, columns by option."""
    orders = option_orders(len(answer.options))
    return {
        answer.options[order[0]]: tuple(p for _, p in sorted(zip(answer.options, row, strict=True)))
        for order, row in zip(orders, answer.per_order, strict=True)
    }


def test_choice_sums_to_one_and_ignores_a_rotation_of_its_options(engine, respondents):
    """Giving the options rotated (for two options: reversed) asks the same orders.

    So the probability of each option, and each order's probabilities, are the same.
    """
    engine.reset()
    given = ask(engine, [(r, c) for r in respondents for c in (DRINK, SEASON)], seed=1)
    swapped = replace(DRINK, options=DRINK.options[::-1])
    rotated = replace(SEASON, options=SEASON.options[1:] + SEASON.options[:1])
    engine.reset()
    moved = ask(engine, [(r, c) for r in respondents for c in (swapped, rotated)], seed=1)
    for a, b in zip(given, moved, strict=True):
        assert a.kind == "choice" and a.respondent == b.respondent
        assert sum(a.probabilities) == pytest.approx(1.0, abs=1e-12)
        assert all(sum(row) == pytest.approx(1.0, abs=1e-12) for row in a.per_order)
        assert len(a.per_order) == len(a.options)
        p, q = by_option(a), by_option(b)
        assert p.keys() == q.keys()
        for option in p:
            assert p[option] == pytest.approx(q[option], abs=1e-6)
        rows_a, rows_b = by_first_listed(a), by_first_listed(b)
        for first in rows_a:
            np.testing.assert_allclose(rows_a[first], rows_b[first], atol=1e-6)
        assert a.text in a.options and a.options[int(a.value)] == a.text
        assert a.text == b.text, "the sampled option is drawn in a canonical order"
