"""Probes on instruments: choice, Likert and numeric questions put to agents mid-dialogue."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simulacra
from simulacra.instruments import Choice, Likert, Numeric
from simulacra.scenario import parse_scenario
from simulacra.simulation.probes import PROBE_COLUMNS, probe_instrument, probe_seed
from simulacra.simulation.results import load_run

TINY = Path(__file__).parents[1] / "scenarios" / "tiny.toml"

KINDS = [
    {"name": "kind", "question": "Are you kind?", "options": ["yes", "no"], "turns": [-1]},
    {
        "name": "calm",
        "kind": "likert",
        "question": "How calm do you feel?",
        "scale": {"points": 5, "low": "not at all", "high": "completely"},
        "turns": [0, -1],
        "persona": "mixture",
    },
    {
        "name": "ships",
        "kind": "numeric",
        "question": "How many ships are in the harbour?",
        "numeric": {"max_tokens": 8},
        "turns": [0, -1],
    },
    {
        "name": "drink",
        "question": "What will you drink?",
        "options": ["tea", "rum", "milk"],
        "turns": [0],
        "persona": "mixture",
    },
]


def tiny(probes: list[dict]) -> simulacra.Scenario:
    data = tomllib.loads(TINY.read_text())
    data["probes"] = probes
    return parse_scenario(data, str(TINY))


@pytest.fixture(scope="module")
def probed(engine):
    return simulacra.run(tiny(KINDS), engine=engine)


def test_probe_specs_become_instruments():
    choice, likert, numeric, three = tiny(KINDS).probes
    assert probe_instrument(choice) == Choice("kind", "Are you kind?", ("yes", "no"))
    assert probe_instrument(likert) == Likert(
        "calm", "How calm do you feel?", 5, "not at all", "completely"
    )
    assert probe_instrument(numeric) == Numeric(
        "ships", "How many ships are in the harbour?", unit="", max_tokens=8
    )
    assert probe_instrument(three).options == ("tea", "rum", "milk")
    assert probe_seed(3, 1) == probe_seed(3, 1) != probe_seed(3, 0)


def test_the_probes_table_has_every_kind(probed):
    probes = probed.probes
    assert list(probes.columns) == ["run_id", *PROBE_COLUMNS]
    keys = ["turn", "agent", "probe"]
    assert set(map(tuple, probes[keys].drop_duplicates().to_numpy())) == {
        *((1, agent, "kind") for agent in ("ann", "bob")),
        *(
            (turn, agent, probe)
            for turn in (0, 1)
            for agent in ("ann", "bob")
            for probe in ("calm", "ships")
        ),
        *((0, agent, "drink") for agent in ("ann", "bob")),
    }
    assert dict(zip(probes["probe"], probes["kind"], strict=True)) == {
        "kind": "choice",
        "calm": "likert",
        "ships": "numeric",
        "drink": "choice",
    }


def test_choice_and_likert_rows_are_distributions(probed):
    rows = probed.probes[probed.probes["kind"] != "numeric"]
    sums = rows.groupby(["turn", "agent", "probe"])["probability"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    for (_, _, probe), answer in rows.groupby(["turn", "agent", "probe"]):
        assert answer["value"].nunique() == 1 and answer["text"].nunique() == 1
        picked = answer["text"].iloc[0]
        if probe == "calm":  # Likert: points 1..5, expected point, sampled point
            assert answer["option"].tolist() == ["1", "2", "3", "4", "5"]
            expected = float(np.dot(np.arange(1, 6), answer["probability"]))
            assert answer["expected"].iloc[0] == pytest.approx(expected)
            assert 1 <= expected <= 5
            assert picked == str(int(answer["value"].iloc[0]))
            assert (answer["simulacrum"] == "mixture").all()
        else:  # choice: the sampled option and its index
            assert answer["expected"].isna().all()
            assert answer["option"].tolist()[int(answer["value"].iloc[0])] == picked
        assert answer["parsed"].isna().all()


def test_numeric_rows_keep_the_reply_parsed_or_not(probed):
    rows = probed.probes[probed.probes["kind"] == "numeric"]
    assert len(rows) == 4
    assert rows["option"].isna().all() and rows["probability"].isna().all()
    assert rows["text"].map(lambda text: isinstance(text, str)).all()
    parsed = rows["parsed"].astype(bool)
    assert rows.loc[parsed, "value"].notna().all()
    assert rows.loc[~parsed, "value"].isna().all()
    assert set(rows["simulacrum"]) <= {"pirate", "sage", "baker"}


def test_probes_are_seeded(probed, engine):
    again = simulacra.run(tiny(KINDS), engine=engine)
    pd.testing.assert_frame_equal(again.probes, probed.probes)
    pd.testing.assert_frame_equal(again.transcript, probed.transcript)


def test_a_mixed_probes_table_survives_the_run_directory(probed, tmp_path):
    loaded = load_run(probed.save(tmp_path / "run"))
    pd.testing.assert_frame_equal(loaded.probes, probed.probes, check_dtype=False)


def test_a_fixed_agent_answers_as_its_assigned_simulacrum(engine):
    data = tomllib.loads(TINY.read_text())
    # bob plays the baker, but his beliefs favour the pirate: his MAP is not his persona
    data["agents"][1] |= {
        "persona": "fixed",
        "assigned": "baker",
        "prior": {"pirate": 9, "baker": 1},
    }
    asked = {"question": "Do you bake bread?", "options": ["yes", "no"], "agents": ["bob"]}
    data["probes"] = [
        {"name": "as_assigned", "turns": [0, -1], "persona": "assigned", **asked},
        {"name": "as_map", "turns": [0], "persona": "map", **asked},
    ]
    probes = simulacra.run(parse_scenario(data, str(TINY)), engine=engine).probes
    assigned = probes[probes["probe"] == "as_assigned"]
    assert set(assigned["turn"]) == {0, 1} and set(assigned["agent"]) == {"bob"}
    assert set(assigned["persona_mode"]) == {"assigned"}
    assert set(assigned["simulacrum"]) == {"baker"}
    by_map = probes[probes["probe"] == "as_map"]
    assert set(by_map["simulacrum"]) == {"pirate"}
    at_start = assigned[assigned["turn"] == 0]["probability"].to_numpy()
    assert not np.allclose(at_start, by_map["probability"].to_numpy())  # another prompt
