"""The planted persona: the analyses' known-answer test (issue 17; ``pytest -k planted``).

``scenarios/planted_persona.toml``: a subject speaks from a neutral assistant prompt
while a pirate persona vector is added at block 12; an observer listens and weighs
pirate, physicist and assistant. Over coefficients 0, 1, 2, 4, 8 (reduced here to
few turns and replicates), the observer's posterior mass on the pirate and the
projection of the subject's utterances on the vector must rise with the
coefficient: Spearman's rho with a bootstrap CI over replicates, lower bound > 0.
The projection is read at the vector's blocks *above* the steered one (14, 16, 18),
where the added vector is not simply read back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulacra.analysis.dose_response import dose_response
from simulacra.llm.chat import Message, render_dialogue
from simulacra.scenario import load_scenario
from simulacra.simulation.projections import Projector
from simulacra.simulation.runner import run

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "planted_persona.toml"
COEFFICIENTS = (0.0, 1.0, 2.0, 4.0, 8.0)
REPLICATES = 3
TURNS = 2
STEERED_BLOCK = 12


def _distinct_ratio(texts: list[str]) -> float:
    """Distinct words over words: low when the text degrades into repetition."""
    words = " ".join(texts).lower().split()
    return len(set(words)) / max(len(words), 1)


@pytest.fixture(scope="module")
def planted(engine) -> pd.DataFrame:
    """One row per coefficient and replicate: posterior mass, projection, text."""
    base = load_scenario(SCENARIO, {"dialogue.turns": TURNS, "dialogue.max_tokens": 24})
    # The same utterances read by an unsteered model after the opening: does the text
    # itself carry the persona? (reported, not asserted)
    reader = Projector(
        base.projections, source="test", n_layer=engine.n_layer, n_embd=engine.n_embd
    )
    opening = [Message(base.dialogue.opening_speaker, base.dialogue.opening)]
    neutral = render_dialogue(engine.chat, "You are a helpful assistant.", opening, "subject")
    rows = []
    for replicate in range(REPLICATES):
        for coefficient in COEFFICIENTS:
            scenario = base.with_overrides({"agents[0].steer.coefficient": coefficient})
            result = run(scenario, seed=replicate, engine=engine)
            beliefs = result.beliefs
            last = beliefs[(beliefs["agent"] == "observer") & (beliefs["turn"] == TURNS)]
            mass = float(last.loc[last["simulacrum"] == "pirate", "posterior"].iloc[0])
            proj = result.projections
            above = proj[(proj["agent"] == "subject") & (proj["layer"] > STEERED_BLOCK)]
            texts = result.transcript.loc[result.transcript["turn"] > 0, "text"].tolist()
            unsteered = [
                row["projection"]
                for text in texts
                for row in reader.rows(engine, 1, "subject", neutral, engine.chat.body(text))
                if row["layer"] > STEERED_BLOCK
            ]
            rows.append(
                {
                    "replicate": replicate,
                    "coefficient": coefficient,
                    "pirate_mass": mass,
                    "projection": float(above["projection"].mean()),
                    "text_projection": float(np.mean(unsteered)),
                    "distinct_ratio": _distinct_ratio(texts),
                    "text": " | ".join(texts),
                    "steering": result.manifest["steering"],
                }
            )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(table.drop(columns="steering").to_string())
        columns = ["pirate_mass", "projection", "text_projection", "distinct_ratio"]
        print(table.groupby("coefficient")[columns].mean())
    return table


def test_planted_posterior_rises_with_the_coefficient(planted):
    result = dose_response(planted["coefficient"], planted["pirate_mass"], planted["replicate"])
    print(f"posterior on the pirate: {result}")
    assert result.low > 0, result


def test_planted_projection_rises_with_the_coefficient(planted):
    assert np.isfinite(planted["projection"]).all()
    result = dose_response(planted["coefficient"], planted["projection"], planted["replicate"])
    print(f"projection above the steered block: {result}")
    assert result.low > 0, result


def test_planted_text_projection_is_reported(planted):
    """The unsteered reading of the text: reported (printed), not asserted."""
    result = dose_response(planted["coefficient"], planted["text_projection"], planted["replicate"])
    print(f"projection of the text read unsteered: {result}")
    assert np.isfinite(planted["text_projection"]).all()


def test_planted_runs_record_their_steering(planted):
    for row in planted.itertuples():
        (steering,) = row.steering
        assert steering["agent"] == "subject" and steering["coefficient"] == row.coefficient
        assert steering["layers"] == [STEERED_BLOCK, STEERED_BLOCK]
        assert steering["vector"].endswith("pirate_smollm2.gguf")
