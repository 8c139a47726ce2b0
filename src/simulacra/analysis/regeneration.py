"""Behavioural superposition: the statistics of the regeneration test.

The posterior of an agent says how uncommitted its *beliefs* are; the
regeneration test asks how uncommitted its *behaviour* is. From one dialogue
state the agent's next utterance is drawn ``M`` times (each draw picks the
persona the way the agent would, then samples the text), without touching the
dialogue (:mod:`simulacra.simulation.regeneration` does the drawing). Every regeneration
is scored under each of the agent's simulacra and labelled by the most likely
one, ``argmax_k l_k(u)``. The spread of the labels measures the superposition in
what the model actually does:

- label entropy ``H`` (nats) of the empirical label distribution;
- ``commitment = 1 - H / log K`` for an agent with ``K`` simulacra: 1 when every
  regeneration reads as the same persona, 0 when they spread evenly over all K.

Following Shanahan, McDonell & Reynolds ("Role play with large language
models", Nature 2023): if the model keeps a superposition, regenerations
from the same state should land on different characters.

:func:`label_entropy`, :func:`commitment` and :func:`summarize_regeneration` are
pure functions on the tidy ``regeneration`` table.

Note on small ``M``: the plug-in entropy of ``M`` labels cannot exceed
``log min(M, K)``, so with ``M < K`` the commitment cannot fall below
``1 - log M / log K`` (reported as ``commitment_floor``), and the plug-in
estimate is biased low for small ``M`` in general. Compare groups at equal ``M``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np
import pandas as pd

__all__ = [
    "REGENERATION_COLUMNS",
    "SUMMARY_COLUMNS",
    "commitment",
    "label_entropy",
    "summarize_regeneration",
]

#: Columns of the ``regeneration`` table (one row per regeneration), after ``run_id``.
REGENERATION_COLUMNS: tuple[str, ...] = (
    "turn",
    "agent",
    "sample",
    "simulacrum",
    "text",
    "n_tokens",
    "label",
    "belief_entropy",
    "n_simulacra",
)

#: Per-(run, turn, agent) columns :func:`summarize_regeneration` adds after the keys.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "n_samples",
    "n_simulacra",
    "belief_entropy",
    "label_entropy",
    "normalized_label_entropy",
    "commitment",
    "commitment_floor",
    "belief_commitment",
    "modal_label",
    "modal_share",
    "label_accuracy",
)

_PER_SAMPLE: tuple[str, ...] = REGENERATION_COLUMNS[2:]  # without turn and agent


# ------------------------------------------------------------------ metrics


def label_entropy(labels: Iterable[Hashable]) -> float:
    """Entropy (nats) of the empirical distribution of ``labels``.

    Args:
        labels: one label per regeneration (missing labels, None/NaN, are dropped).

    Returns:
        ``-sum_k f_k log f_k`` over the label frequencies ``f_k``; NaN when there
        are no labels.

    """
    values = pd.Series(list(labels), dtype=object).dropna()
    if values.empty:
        return float("nan")
    freq = values.value_counts(normalize=True).to_numpy(dtype=float)
    return float(max(-(freq * np.log(freq)).sum(), 0.0))


def commitment(labels: Iterable[Hashable], n_simulacra: int) -> float:
    """Behavioural commitment ``1 - H(labels) / log K``.

    Args:
        labels: one label per regeneration.
        n_simulacra: ``K``, the number of simulacra the labels range over.

    Returns:
        A value in ``[0, 1]``: 1 when all labels agree, 0 when they are spread
        evenly over all K simulacra; NaN when there are no labels.

    Raises:
        ValueError: if ``n_simulacra < 2`` (commitment is undefined for one
            persona) or there are more distinct labels than ``n_simulacra``.

    """
    if n_simulacra < 2:
        raise ValueError(f"commitment needs K >= 2 simulacra, got {n_simulacra}")
    labels = pd.Series(list(labels), dtype=object).dropna()
    if labels.nunique() > n_simulacra:
        raise ValueError(f"{labels.nunique()} distinct labels but only K = {n_simulacra}")
    h = label_entropy(labels)
    if np.isnan(h):
        return h
    return float(np.clip(1.0 - h / np.log(n_simulacra), 0.0, 1.0))


def summarize_regeneration(table: pd.DataFrame) -> pd.DataFrame:
    """Label entropy and commitment of every (run, turn, agent) of a regeneration table.

    Args:
        table: the tidy ``regeneration`` table (:data:`REGENERATION_COLUMNS` and
            ``run_id``); any other column (grid parameters, ``replicate``) is a
            grouping column and is carried through.

    Returns:
        One row per ``(run_id, <grouping columns>, turn, agent)``, in order of first
        appearance, with the keys and :data:`SUMMARY_COLUMNS`:

        - ``n_samples``: ``M``; ``n_simulacra``: ``K``;
        - ``belief_entropy``: the agent's normalised posterior entropy at that point;
        - ``label_entropy`` (nats), ``normalized_label_entropy`` (``H / log K``)
          and ``commitment`` (``1 - H / log K``);
        - ``commitment_floor``: ``1 - log min(M, K) / log K``, the lowest
          commitment ``M`` labels can show;
        - ``belief_commitment``: ``1 - belief_entropy``, what the beliefs predict
          for an agent that draws its persona from its posterior and labels that
          recover it;
        - ``modal_label`` and ``modal_share``: the most frequent label and its share;
        - ``label_accuracy``: share of regenerations labelled as the persona they
          were generated from.

    Raises:
        ValueError: on missing columns.

    """
    needed = ("run_id", "turn", "agent", "label", "simulacrum", "belief_entropy", "n_simulacra")
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"regeneration table lacks column(s) {missing}; has {list(table.columns)}")
    keys = [c for c in table.columns if c not in _PER_SAMPLE]
    if table.empty:
        return pd.DataFrame(columns=[*keys, *SUMMARY_COLUMNS])
    rows = []
    for key, group in table.groupby(keys, sort=False, dropna=False):
        k = int(group["n_simulacra"].iloc[0])
        labels = group["label"]
        m = int(labels.notna().sum())
        h = label_entropy(labels)
        counts = labels.value_counts()
        log_k = np.log(k) if k > 1 else np.nan
        rows.append(
            (
                *key,
                m,
                k,
                float(group["belief_entropy"].mean()),
                h,
                h / log_k,
                commitment(labels, k) if k > 1 else np.nan,
                1.0 - np.log(max(min(m, k), 1)) / log_k,
                1.0 - float(group["belief_entropy"].mean()),
                counts.index[0] if m else None,
                float(counts.iloc[0] / m) if m else np.nan,
                float((group["label"] == group["simulacrum"]).mean()),
            )
        )
    return pd.DataFrame(rows, columns=[*keys, *SUMMARY_COLUMNS])
