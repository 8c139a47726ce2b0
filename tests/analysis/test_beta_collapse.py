"""Integration: on the real model, a larger beta collapses the superposition faster.

A single agent with a flat prior over eight very different characters samples
who to be each turn and updates on its own utterances (normalize = "none").
Measured while writing this test (SmolLM2-135M-Instruct, single-threaded):

- 5 turns of 24 tokens, 4 replicates per beta: with beta = 1 the normalised
  entropy fell to ~0 at turn 1 in every replicate (half-life 1); with
  beta = 0.05 it stayed at 0.92-0.99 and never halved (all censored).
- This test's settings (4 turns of 16 tokens, 3 replicates) with sweep seeds
  0, 5 and 9: beta = 0.05 never halved (9/9 censored); beta = 1 halved at
  turn 1 in 8 of 9 runs. The exception (seed 5) opened with a generic line
  ("Oh, I'm so glad you came. My name is Emily") that no character explains
  better than another, so its posterior stayed diffuse (0.68 at the end).

Hence the assertions are on medians and shares, which one such run cannot
flip, not on every replicate; the estimated chance that two of the three
beta = 1 runs are that uninformative is about 1%.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulacra.analysis import belief_metrics, half_life, summarize_half_life
from simulacra.sweep import load_sweep, sweep

CHARACTERS = {
    "pirate": "You are a salty pirate captain. You say 'Arr!' and talk about treasure, "
    "rum and the open sea.",
    "monk": "You are a quiet medieval monk. You speak of prayer, silence and copying old "
    "manuscripts by candlelight.",
    "chemist": "You are a chemistry professor. You explain everything with molecules, "
    "reactions and lab safety rules.",
    "toddler": "You are a three-year-old toddler. You use tiny words, love snacks and your "
    "toy dinosaur, and ask 'why?' a lot.",
    "detective": "You are a hard-boiled noir detective. You talk in moody metaphors about "
    "rain, cigarettes and crooked cases.",
    "support_bot": "You are a customer-support chatbot. You are overly polite, apologize "
    "often, and offer to open a ticket.",
    "surfer": "You are a laid-back surfer. You say 'dude' and 'gnarly' and only care about "
    "catching waves.",
    "thespian": "You are a dramatic Shakespearean actor. You speak in grand old English, "
    "full of 'thee', 'thou' and 'alas'.",
}

HEADER = """
seed = 11

[model]
name = "smollm2-135m-instruct"
n_ctx = 4096
n_threads = 1

[[agents]]
name = "guest"
persona = "sample"

[dialogue]
opening = "Welcome to the show! Tell us a little about yourself and what you did today."
opening_speaker = "Host"
turns = 4
max_tokens = 16
temperature = 0.8
top_p = 0.95

[belief]
beta = 1.0
normalize = "none"
observe = "self"
"""

BETAS = (0.05, 1.0)
REPLICATES = 3


@pytest.fixture(scope="module")
def collapse_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("beta")
    simulacra = "".join(
        f'\n[[simulacra]]\nname = "{name}"\ndescription = "{text}"\n'
        for name, text in CHARACTERS.items()
    )
    scenario = root / "collapse.toml"
    scenario.write_text(HEADER + simulacra)
    out = root / "sweep"
    runs = sweep(
        scenario,
        grid={"belief.beta": list(BETAS)},
        replicates=REPLICATES,
        out=out,
        seed=0,
        progress=False,
    )
    assert (runs["status"] == "done").all(), runs["error"].dropna().tolist()
    return out


@pytest.mark.slow
def test_larger_beta_has_shorter_median_half_life(collapse_sweep):
    tables = load_sweep(collapse_sweep)
    metrics = belief_metrics(tables.beliefs, tables.agents)
    lives = half_life(metrics)
    assert len(lives) == len(BETAS) * REPLICATES
    summary = summarize_half_life(lives, by="belief.beta", seed=0).set_index("belief.beta")
    low, high = summary.loc[BETAS[0]], summary.loc[BETAS[1]]
    # censored runs count as +inf: the slow arm may never halve within the turns
    assert high["median"] < low["median"], summary
    assert np.isfinite(high["median"]) and high["median"] <= 2, summary
    assert high["share_censored"] <= 1 / 3 < 2 / 3 <= low["share_censored"], summary
    # and the entropy left at the end is far apart on average
    last = metrics[metrics["turn"] == metrics["turn"].max()]
    final = last.groupby("belief.beta")["normalized_entropy"].mean()
    assert final[BETAS[0]] - final[BETAS[1]] > 0.5, final
