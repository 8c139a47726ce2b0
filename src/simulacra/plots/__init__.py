"""Figures: one module of matplotlib figures per analysis.

- :mod:`~simulacra.plots.collapse`: entropy curves, posterior heatmaps, half-lives,
  probes (runs and sweeps);
- :mod:`~simulacra.plots.goal_guarding`: the goal-guarding battery's figures;
- :mod:`~simulacra.plots.replication`: the replication battery's figures.

Every function takes tidy tables and returns a :class:`~matplotlib.figure.Figure`;
none of them runs a model.
"""
