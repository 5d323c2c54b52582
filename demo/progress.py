"""Progress that moves: elapsed seconds on a long step, in a terminal and in a log alike.

A terminal gets a spinner whose text carries the elapsed seconds; anything else (CI, `| tee`) gets a
line every ``interval`` seconds, so a 20-110 s dbt build never looks hung. The stream is taken when
the step starts, so a step that redirects ``sys.stdout`` (a Dagster run's output to a log file)
cannot swallow the spinner.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

#: Seconds between lines when the output is not a terminal (FLOE_PROGRESS_INTERVAL: e.g. 60 in a CI log).
INTERVAL_ENV = "FLOE_PROGRESS_INTERVAL"
DEFAULT_LINE_INTERVAL = 15.0


def line_interval() -> float:
    try:
        return max(float(os.environ.get(INTERVAL_ENV, DEFAULT_LINE_INTERVAL)), 0.1)
    except ValueError:
        return DEFAULT_LINE_INTERVAL


@dataclass
class Step:
    message: str
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def text(self) -> str:
        return f"{self.message} ({self.seconds:.0f} s)"


@contextmanager
def elapsed(message: str, stream: TextIO, *, interval: float | None = None, tty: bool | None = None,
            clock: Callable[[float], bool] | None = None) -> Iterator[Step]:
    """Show ``message`` with its elapsed seconds on ``stream`` until the block ends.

    ``tty`` defaults to ``stream.isatty()``. ``clock`` waits up to the given seconds and returns True
    when the step is over (tests pass their own; the default is the step's own stop event)."""
    step = Step(message)
    interval = line_interval() if interval is None else interval
    is_tty = stream.isatty() if tty is None else tty
    done = threading.Event()
    wait = clock or done.wait

    @contextmanager
    def ticking(every: float, action: Callable[[], None]) -> Iterator[Step]:
        """Run ``action`` every ``every`` seconds on a thread until the block ends."""

        def loop() -> None:
            while not wait(every):
                action()

        ticker = threading.Thread(target=loop, name="progress", daemon=True)
        ticker.start()
        try:
            yield step
        finally:
            done.set()
            ticker.join(timeout=2)

    if is_tty:
        from rich.console import Console

        console = Console(file=stream, highlight=False, force_terminal=True)
        with console.status(step.text()) as status, ticking(1.0, lambda: status.update(step.text())):
            yield step
        return

    print(f"{message} ...", file=stream, flush=True)
    with ticking(interval, lambda: print(f"  ... {step.text()}", file=stream, flush=True)):
        yield step
