"""Batteries: directories of data files that put many questions to many personas.

A battery is run by one command, ``simulacra battery run DIR --out OUT``, and read
by ``simulacra report OUT``. :mod:`simulacra.batteries.base` states what a kind of
battery provides; :mod:`simulacra.batteries.runner` runs any of them, resumably;
``goal_guarding`` and ``replication`` are the two kinds shipped.
"""

from simulacra.batteries.base import KINDS, Battery, RunOptions, Unit
from simulacra.batteries.runner import (
    BatteryResult,
    load_battery_result,
    run_battery,
    validate_battery,
)

__all__ = [
    "KINDS",
    "Battery",
    "BatteryResult",
    "RunOptions",
    "Unit",
    "load_battery_result",
    "run_battery",
    "validate_battery",
]
