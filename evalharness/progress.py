"""A live progress line on a terminal: done/total, errors, request rate, elapsed and ETA.

It reads live counts (``Counts``: the runner's state is one) and knows nothing else of the run.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Protocol, TextIO


class Counts(Protocol):
    """What the line shows of a run, read again at each redraw."""

    @property
    def done(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def errors(self) -> int: ...


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def progress_line(done: int, total: int, errors: int, elapsed: float) -> str:
    """``[ 120/400] 30% · 2 errors · 3.1 req/s · 0:39 elapsed · ETA 1:30``."""
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = _clock((total - done) / rate) if rate > 0 else "?"
    width = len(str(total))
    pct = 100 * done // total if total else 100
    return (f"[{done:>{width}}/{total}] {pct:3d}% · {errors} error{'s' if errors != 1 else ''} · "
            f"{rate:.1f} req/s · {_clock(elapsed)} elapsed · ETA {eta}")


class Progress:
    """Redraws the progress line a few times a second when the stream is a terminal; else stays quiet.

    ``enabled`` forces the line on or off; ``announce`` is where the run's one-line start message goes (the
    command line's stdout; None: nowhere, as for a quiet run from Python).
    """

    def __init__(self, stream: TextIO | None = None, interval_s: float = 0.25, *, enabled: bool | None = None,
                 announce: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.announce_to = announce
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._t0 = time.monotonic()

    def announce(self, text: str) -> None:
        """Say what is about to run (one line, before the first request), where ``announce`` points."""
        if self.announce_to is not None:
            print(text, file=self.announce_to, flush=True)

    def start(self, state: Counts) -> None:
        self._t0 = time.monotonic()
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._redraw(state))

    async def _redraw(self, state: Counts) -> None:
        while True:
            self._draw(state)
            await asyncio.sleep(self.interval_s)

    def _draw(self, state: Counts) -> None:
        line = progress_line(state.done, state.total, state.errors, time.monotonic() - self._t0)
        self.stream.write("\r\033[K" + line)
        self.stream.flush()

    def finish(self, state: Counts) -> None:
        if self._task:
            self._task.cancel()
        if self.enabled:
            self._draw(state)
            self.stream.write("\n")
            self.stream.flush()
