"""One progress display over a whole dataset: done, failed, running, and the time left.

In a terminal it is a single line rewritten in place; elsewhere (a log file, a pipe) one line per finished input.
"""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    """Seconds as "45s", "12m 05s" or "3h 02m"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class Progress:
    """Counts of a dataset's jobs as they finish.

    Args:
        total: jobs in the dataset.
        slots: jobs that run at once (workers); the estimate of time left divides by it.
        stream: where the display goes (default stderr); None shows nothing.
        clock: seconds, for tests.
    """

    def __init__(self, total: int, slots: int, stream=sys.stderr, clock=time.perf_counter):
        self.total, self.slots, self.stream, self.clock = total, slots, stream, clock
        self.done = self.failed = self.skipped = 0
        self.started = clock()
        self.live = stream is not None and hasattr(stream, "isatty") and stream.isatty()
        self._show()

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    @property
    def running(self) -> int:
        return min(self.slots, self.total - self.finished)

    def eta(self) -> float | None:
        """Seconds left: the wall time so far per fitted job (skipped ones cost nothing) times the jobs left; None
        before the first fit ends."""
        fitted = self.done + self.failed
        if fitted == 0:
            return None
        return (self.clock() - self.started) / fitted * (self.total - self.finished)

    def line(self) -> str:
        """The status line, e.g. "12/40 finished (1 failed, 3 skipped), 2 running, 4m 10s left"."""
        eta = self.eta()
        left = "time left unknown" if eta is None else f"{format_duration(eta)} left"
        if self.finished == self.total:
            left = f"took {format_duration(self.clock() - self.started)}"
        return (
            f"{self.finished}/{self.total} finished ({self.failed} failed, {self.skipped} skipped), "
            f"{self.running} running, {left}"
        )

    def _show(self, finished_line: str | None = None) -> None:
        if self.stream is None:
            return
        if self.live:
            if finished_line is not None and finished_line.startswith("failed"):
                self.stream.write("\r\x1b[K" + finished_line + "\n")  # failures stay on screen
            self.stream.write("\r\x1b[K" + self.line())
        elif finished_line is not None:
            self.stream.write(f"[{self.finished}/{self.total}] {finished_line}\n")
        self.stream.flush()

    def update(self, outcome) -> None:
        """Count one finished job (an :class:`~rbfield.datasets.runner.Outcome`) and show it."""
        if outcome.status == "failed":
            self.failed += 1
            text = f"failed {outcome.name}: {outcome.error}"
        elif outcome.status == "skipped":
            self.skipped += 1
            text = f"skipped {outcome.name} (complete)"
        else:
            self.done += 1
            text = f"done {outcome.name} in {format_duration(outcome.seconds)}"
        if not self.live:
            eta = self.eta()
            text += "" if eta is None or self.finished == self.total else f"; {format_duration(eta)} left"
        self._show(text)

    def close(self) -> None:
        """End the display (a terminal's line is kept)."""
        if self.stream is not None and self.live:
            self.stream.write("\n")
            self.stream.flush()
