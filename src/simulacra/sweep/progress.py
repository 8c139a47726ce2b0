"""A one-line progress display over many tasks: done, failed, remaining, ETA.

The ETA is the elapsed time per finished task times the tasks left, unless the
caller passes its own estimate (:func:`eta_by_kind`: the mean time of finished
tasks of the same kind, for batteries whose units differ in size).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TextIO

__all__ = ["Heartbeat", "Progress", "duration", "eta_by_kind"]


class Progress:
    """A one-line progress bar over tasks on stderr: done, failed, remaining, ETA.

    On a terminal the line is redrawn in place; otherwise one line is written per
    update (readable in logs).

    Args:
        total: The number of tasks, skipped ones included.
        skipped: Tasks already done before this call (resumed), counted as done.
        enabled: Draw nothing when False.
        stream: Where to draw; stderr by default.
        label: The word the line starts with (``sweep``, ``battery``).
        eta: Seconds left, estimated by the caller (None: unknown); default: the
            elapsed time per task run in this call times the tasks left.
    """

    def __init__(
        self,
        total: int,
        skipped: int,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        label: str = "sweep",
        eta: Callable[[], float | None] | None = None,
    ) -> None:
        self.label = label
        self.eta = eta
        self.total = total
        self.skipped = skipped
        self.done = 0
        self.failed = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._width = 0

    def update(self, *, failed: bool = False) -> None:
        """Count one finished task and redraw."""
        if failed:
            self.failed += 1
        else:
            self.done += 1
        self.draw()

    def draw(self) -> None:
        """Write the current line."""
        if not self.enabled:
            return
        finished = self.skipped + self.done + self.failed
        remaining = self.total - finished
        filled = round(24 * finished / max(self.total, 1))
        bar = "#" * filled + "-" * (24 - filled)
        line = (
            f"{self.label} [{bar}] {finished}/{self.total}  done {self.skipped + self.done}  "
            f"failed {self.failed}  remaining {remaining}"
        )
        ran = self.done + self.failed
        eta: float | None = None
        if self.eta is not None and remaining:
            eta = self.eta()
        elif ran and remaining:
            eta = (time.perf_counter() - self.started) / ran * remaining
        if eta is not None:
            line += f"  eta {duration(eta)}"
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class Heartbeat:
    """Status lines for a long computation: each step announced, long ones re-announced.

    :meth:`step` prints its line at once and starts the clock; while that step runs
    longer than ``every`` seconds a background thread prints ``... <line> (still
    running, 20s)`` every ``every`` seconds, so no step is silent for long. Use it as
    a context manager (the thread stops on exit).

    Args:
        stream: where to write; stderr by default.
        every: seconds between reminders of a step still running.
        enabled: print nothing when False.
    """

    def __init__(
        self, stream: TextIO | None = None, *, every: float = 10.0, enabled: bool = True
    ) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.enabled = enabled
        self._line = ""
        self._since = self._reminded = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self, line: str, announce: bool = True) -> None:
        """Start a step: print ``line`` now (unless ``announce`` is False) and time it."""
        with self._lock:
            self._line = line
            self._since = self._reminded = time.perf_counter()
        if announce:
            self._write(f"  {line}")

    def _write(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self.every / 4)):
            with self._lock:
                now = time.perf_counter()
                due = bool(self._line) and now - self._reminded >= self.every
                if due:
                    self._reminded = now
                line, elapsed = self._line, now - self._since
            if due:
                self._write(f"  ... {line} (still running, {duration(elapsed)})")

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def eta_by_kind(
    finished: Iterable[tuple[Hashable, Hashable, float]],
    remaining: Sequence[tuple[Hashable, Hashable]],
    workers: int = 1,
) -> float | None:
    """Seconds left, from the wall times of every finished task, kind by kind.

    A remaining task of (group, kind) is expected to take the mean time of the
    finished tasks of that group and kind; failing that, of that kind in any group
    (another model, say); failing that, the slowest mean of any finished kind (a
    first cheap task does not make the rest look cheap).

    Args:
        finished: ``(group, kind, wall_s)`` of each finished task, including those
            finished before a resume.
        remaining: ``(group, kind)`` of each task left.
        workers: tasks run at once.

    Returns:
        The estimate in seconds, or None when no task has finished yet.
    """
    by_key: dict[tuple[Hashable, Hashable], list[float]] = {}
    by_kind: dict[Hashable, list[float]] = {}
    for group, kind, wall_s in finished:
        by_key.setdefault((group, kind), []).append(float(wall_s))
        by_kind.setdefault(kind, []).append(float(wall_s))
    if not by_kind:
        return None
    slowest = max(sum(times) / len(times) for times in by_kind.values())
    total = 0.0
    for group, kind in remaining:
        times = by_key.get((group, kind)) or by_kind.get(kind)
        total += sum(times) / len(times) if times else slowest
    return total / max(1, workers)


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
