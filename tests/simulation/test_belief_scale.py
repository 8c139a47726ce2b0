"""What β means under ``normalize = "per_token"`` and ``"none"``: pure superposition maths.

Per-token normalisation divides an utterance's log-likelihood by its token count n,
so per_token with β is exactly none with β / n. The numbers of the table in
``docs/reading-the-report.md`` (a 40-token utterance, a gap of 0.1 nat per token
between two personas) are recomputed here.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulacra.simulation.superposition import Superposition

N_TOKENS = 40
GAP_PER_TOKEN = 0.1
LOGLIKS = [-1.0 * N_TOKENS, -(1.0 + GAP_PER_TOKEN) * N_TOKENS]


def _entropies(beta: float, normalize: str, utterances: int = 4) -> list[float]:
    belief = Superposition(["a", "b"], beta=beta, normalize=normalize)
    out = []
    for _ in range(utterances):
        belief.update(LOGLIKS, n_tokens=N_TOKENS)
        out.append(belief.normalized_entropy())
    return out


@pytest.mark.parametrize("beta_none", [0.05, 0.2, 1.0])
@pytest.mark.parametrize("n_tokens", [1, 7, 40])
def test_per_token_beta_is_none_beta_times_the_utterance_length(beta_none, n_tokens):
    rng = np.random.default_rng(n_tokens)
    per_token = Superposition(["a", "b", "c"], beta=beta_none * n_tokens, normalize="per_token")
    summed = Superposition(["a", "b", "c"], beta=beta_none, normalize="none")
    for _ in range(5):
        logliks = rng.normal(-3.0, 1.0, size=3) * n_tokens
        per_token.update(logliks, n_tokens=n_tokens)
        summed.update(logliks, n_tokens=n_tokens)
    np.testing.assert_allclose(per_token.probs, summed.probs, rtol=1e-12, atol=1e-15)


def test_the_documented_table():
    assert _entropies(1.0, "none")[0] == pytest.approx(0.13, abs=0.005)
    assert _entropies(1.0, "none")[-1] < 0.005
    assert _entropies(0.2, "none")[0] == pytest.approx(0.89, abs=0.005)
    assert _entropies(0.2, "none")[-1] == pytest.approx(0.24, abs=0.005)
    assert _entropies(1.0, "per_token")[0] > 0.995
    assert _entropies(1.0, "per_token")[-1] == pytest.approx(0.97, abs=0.005)
    assert _entropies(10.0, "per_token")[0] == pytest.approx(0.84, abs=0.005)
    assert _entropies(10.0, "per_token")[-1] == pytest.approx(0.13, abs=0.005)


def test_per_token_beta_one_barely_moves_where_none_commits():
    # the observation: 1.00 -> 0.99 against 1.00 -> 0.01 on the same evidence
    assert _entropies(1.0, "per_token", 2)[-1] > 0.99
    assert _entropies(1.0, "none", 2)[-1] < 0.01
