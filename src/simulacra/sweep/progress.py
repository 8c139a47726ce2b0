"""A one-line progress display over many tasks: done, failed, remaining, ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "duration"]


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
    """

    def __init__(
        self,
        total: int,
        skipped: int,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        label: str = "sweep",
    ) -> None:
        self.label = label
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
        if ran and remaining:
            eta = (time.perf_counter() - self.started) / ran * remaining
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


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
