"""The progress displays: a step announced at once, re-announced while it runs long."""

from __future__ import annotations

import io
import time

from simulacra.sweep.progress import Heartbeat


def test_heartbeat_announces_steps_and_reminds_of_long_ones():
    stream = io.StringIO()
    with Heartbeat(stream, every=0.2) as beat:
        beat.step("turn 0: asking 2 probe(s)")
        time.sleep(0.75)
        beat.step("turn 1: generating and scoring", False)
        time.sleep(0.05)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "  turn 0: asking 2 probe(s)"
    reminders = [line for line in lines if line.startswith("  ... turn 0: asking")]
    assert len(reminders) >= 2 and "still running" in reminders[0]
    assert not any("turn 1" in line for line in lines)  # quiet and short: never shown


def test_a_disabled_heartbeat_writes_nothing():
    stream = io.StringIO()
    with Heartbeat(stream, every=0.05, enabled=False) as beat:
        beat.step("x")
        time.sleep(0.2)
    assert stream.getvalue() == ""
