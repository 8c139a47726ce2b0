"""Analysis: pure functions from the tidy run tables to metrics with bootstrap CIs.

:mod:`simulacra.analysis.collapse` measures the collapse of the superposition of
simulacra (entropy curves, half-life, commitment turn, mass on the assigned
persona) and summarises it over runs with percentile-bootstrap intervals.
"""

from simulacra.analysis.collapse import (
    belief_metrics,
    bootstrap_ci,
    collapse_curves,
    half_life,
    summarize_half_life,
)

__all__ = [
    "belief_metrics",
    "bootstrap_ci",
    "collapse_curves",
    "half_life",
    "summarize_half_life",
]
