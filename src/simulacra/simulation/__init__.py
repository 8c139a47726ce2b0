"""The simulation room: what happens in a dialogue between persona agents.

- :mod:`~simulacra.simulation.superposition`: the belief maths (tempered log-space Bayes);
- :mod:`~simulacra.simulation.simulacrum`: a candidate persona;
- :mod:`~simulacra.simulation.agent`: ``PersonaAgent(mesa.Agent)``;
- :mod:`~simulacra.simulation.scheduling`: turn-taking policies;
- :mod:`~simulacra.simulation.dialogue`: what a turn's helpers see of the dialogue;
- :mod:`~simulacra.simulation.model`: ``DialogueModel(mesa.Model)``, one turn per step;
- :mod:`~simulacra.simulation.probes`, :mod:`~simulacra.simulation.regeneration`,
  :mod:`~simulacra.simulation.twenty_questions`: measurements on a running dialogue;
- :mod:`~simulacra.simulation.runner`, :mod:`~simulacra.simulation.results`: one run,
  scenario + seed -> tables -> a run directory.

The package imports none of its modules eagerly: the scenario room imports the data
leaves (``simulacrum``, ``scheduling``) without pulling in the Mesa model.
"""
