"""Paired differences between grid points, matched by replicate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulacra.analysis.collapse import bootstrap_ci
from simulacra.analysis.paired import PAIRED_COLUMNS, paired_differences


def shared_noise_table(n: int = 12) -> pd.DataFrame:
    """Replicate noise (sd 1) shared by both levels; the effect of beta is +0.2."""
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 1.0, n)
    rows = []
    for beta, effect in ((1.0, 0.0), (0.2, 0.2)):
        for r in range(n):
            rows.append({"belief.beta": beta, "replicate": r, "entropy": noise[r] + effect})
    return pd.DataFrame(rows)


def test_differences_cancel_the_shared_noise() -> None:
    table = shared_noise_table()
    out = paired_differences(table, "entropy", "belief.beta", 1.0, n_boot=500)
    assert list(out.columns) == ["belief.beta", *PAIRED_COLUMNS]
    row = out.iloc[0]
    assert row["belief.beta"] == 0.2 and row["baseline"] == 1.0 and row["n_pairs"] == 12
    assert row["difference"] == pytest.approx(0.2)
    assert row["low"] == pytest.approx(0.2) and row["high"] == pytest.approx(0.2)
    # the same comparison between independent runs cannot tell the effect from noise
    at = {b: g["entropy"].to_numpy() for b, g in table.groupby("belief.beta")}
    _, low, high = bootstrap_ci(at[0.2] - at[1.0][::-1], np.mean, 500, rng=0)
    assert low < 0.0 < high


def test_pairs_by_agent_and_within_other_grid_keys() -> None:
    rows = []
    for model in ("a", "b"):
        for beta in (1.0, 0.5, 0.1):
            for r in range(3):
                for agent, offset in (("ada", 0.0), ("bob", 10.0)):
                    value = offset + r + (1.0 - beta) * (2.0 if model == "b" else 1.0)
                    rows.append((model, beta, r, agent, value))
    table = pd.DataFrame(rows, columns=["model", "belief.beta", "replicate", "agent", "h"])
    out = paired_differences(
        table, "h", "belief.beta", 1.0, pair=["replicate", "agent"], by=["model"], n_boot=50
    )
    assert out[["model", "belief.beta"]].values.tolist() == [
        ["a", 0.5],
        ["a", 0.1],
        ["b", 0.5],
        ["b", 0.1],
    ]
    np.testing.assert_allclose(out["difference"], [0.5, 0.9, 1.0, 1.8])
    assert (out["n_pairs"] == 6).all()
    with pytest.raises(ValueError, match="by="):
        paired_differences(table, "h", "belief.beta", 1.0, pair=["replicate", "agent"])


def test_missing_partners_and_bad_input() -> None:
    table = shared_noise_table(4)
    table = table[~((table["belief.beta"] == 1.0) & (table["replicate"] == 3))]
    out = paired_differences(table, "entropy", "belief.beta", 1.0, n_boot=20)
    assert out["n_pairs"].tolist() == [3]
    with pytest.raises(ValueError, match="baseline"):
        paired_differences(table, "entropy", "belief.beta", 7.0)
    with pytest.raises(ValueError, match="nope"):
        paired_differences(table, "nope", "belief.beta", 1.0)
