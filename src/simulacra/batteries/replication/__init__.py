"""The replication battery kind: populations of personas answer Many Labs-style studies.

A battery directory holds ``battery.toml`` (``kind = "replication"``), a population
file (attribute distributions and a backstory template) and one TOML file per study
(conditions with their stimuli, the measure as instruments, declared scoring steps,
the contrast and the targets). Writing a file adds a study, with no code change.

M participants (Mesa agents holding their persona as a simulacrum) each do every
study, in their own seeded random order and in one random condition per study; the
answers are scored the way Many Labs 1 scored them, and the report compares each
simulated d with ML1's (:mod:`simulacra.analysis.replication` holds the statistics).

Rooms:

- :mod:`~simulacra.batteries.replication.effects`: one study as data, and its file kind;
- :mod:`~simulacra.batteries.replication.tables`: the tables of an effect file;
- :mod:`~simulacra.batteries.replication.population`: participants, their personas, the file;
- :mod:`~simulacra.batteries.replication.battery`: the battery, ``battery.toml``, its units
  (``load``);
- :mod:`~simulacra.batteries.replication.interview`: asking the participants, batched;
- :mod:`~simulacra.batteries.replication.scoring`: answers to d, criteria and variance;
- :mod:`~simulacra.plots.replication` and
  :mod:`~simulacra.batteries.replication.report`: the report (``write_report``).
"""

from simulacra.batteries.replication.battery import ReplicationBattery, build, load
from simulacra.batteries.replication.effects import Effect, Target
from simulacra.batteries.replication.interview import MODES
from simulacra.batteries.replication.population import (
    Participant,
    Population,
    PopulationSpec,
    composition,
)
from simulacra.batteries.replication.report import battery_of, write_report
from simulacra.batteries.replication.scoring import SUMMARY_COLUMNS, score_frame, summarize

__all__ = [
    "MODES",
    "SUMMARY_COLUMNS",
    "Effect",
    "Participant",
    "Population",
    "PopulationSpec",
    "ReplicationBattery",
    "Target",
    "battery_of",
    "build",
    "composition",
    "load",
    "score_frame",
    "summarize",
    "write_report",
]
