"""Turn-taking policies, on stand-in models (pure logic, no language model)."""

from __future__ import annotations

import itertools
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from simulacra.llm.chat import Message
from simulacra.simulation.scheduling import (
    Addressed,
    RandomOrder,
    RoundRobin,
    addressed_agent,
    make_scheduler,
    register_scheduler,
    scheduler_names,
)


def fake_model(names=("ada", "bram", "cass"), seed=0):
    agents = [SimpleNamespace(name=n) for n in names]
    return SimpleNamespace(
        persona_agents=agents,
        turn=0,
        last_speaker=None,
        history=[],
        rng=np.random.default_rng(seed),
    )


def play(scheduler, model, turns, texts=None):
    order = []
    for t in range(turns):
        speaker = scheduler.next_speaker(model)
        order.append(speaker.name)
        model.last_speaker = speaker
        model.history.append(Message(speaker.name, texts[t] if texts else "hello"))
        model.turn += 1
    return order


def test_round_robin_cycles_in_scenario_order():
    assert play(RoundRobin(), fake_model(), 7) == ["ada", "bram", "cass"] * 2 + ["ada"]


def test_random_is_seeded_uniform_and_never_repeats_a_speaker():
    order = play(RandomOrder(), fake_model(seed=1), 3000)
    assert all(a != b for a, b in itertools.pairwise(order))
    counts = Counter(order)
    assert all(abs(c / 3000 - 1 / 3) < 0.03 for c in counts.values())
    assert play(RandomOrder(), fake_model(seed=1), 50) == order[:50]
    assert play(RandomOrder(), fake_model(seed=2), 50) != order[:50]


def test_addressed_follows_names_else_round_robin():
    texts = ["Cass, what do you think?", "I agree with @ada.", "Nice weather.", "hm"]
    order = play(Addressed(), fake_model(), 4, texts)
    # turn 0: no history -> round robin (ada); then the named agent speaks next;
    # "Nice weather." names nobody -> round robin by turn index (turn 3 -> ada)
    assert order == ["ada", "cass", "ada", "ada"]


def test_addressed_agent_matching_rules():
    names = ["ada", "bram"]
    assert addressed_agent("hey BRAM!", names, "ada") == "bram"
    assert addressed_agent("adam is here", names, None) is None
    assert addressed_agent("ada said", names, "ada") is None
    assert addressed_agent("bram and ada", names, None) == "bram"


def test_registry(monkeypatch):
    # a registered name stays for the process: restore both registries afterwards
    from simulacra.scenario import schema
    from simulacra.simulation import scheduling

    monkeypatch.setattr(scheduling, "_SCHEDULERS", dict(scheduling._SCHEDULERS))
    monkeypatch.setattr(schema, "_scheduler_names", list(schema._scheduler_names))
    assert set(scheduler_names()) >= {"round_robin", "random", "addressed"}
    register_scheduler(
        "always_first",
        lambda: SimpleNamespace(name="always_first", next_speaker=lambda m: m.persona_agents[0]),
    )
    assert make_scheduler("always_first").next_speaker(fake_model()).name == "ada"
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_scheduler("nope")
