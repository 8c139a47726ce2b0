"""Respondents shared by the instrument tests."""

from __future__ import annotations

import pytest

from simulacra.instruments import Respondent
from simulacra.llm.chat import Message

PERSONAS = {
    "pirate": "You are a boisterous pirate captain who loves the sea, rum and treasure.",
    "chemist": "You are a meticulous chemistry professor who values precision above all.",
    "toddler": "You are a sleepy toddler who only wants snacks and naps.",
}


@pytest.fixture(scope="session")
def respondents() -> list[Respondent]:
    """Three personas, one with a short history."""
    pirate, chemist, toddler = PERSONAS.values()
    history = (
        Message("Bob", "Good evening! Long day?"),
        Message("Assistant", "Aye, a long day at sea."),
    )
    return [
        Respondent("pirate", pirate, history),
        Respondent("chemist", chemist),
        Respondent("toddler", toddler),
    ]
