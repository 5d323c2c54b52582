"""Wait for a dependency with bounded retries, one progress line per attempt."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

Reporter = Callable[[str], None]


class BootstrapError(Exception):
    """A failure the Job cannot fix by itself; the message says what to do."""


class NotReady(Exception):
    """The dependency is not answering (yet); worth another attempt."""


def wait_until_ready(
    what: str,
    probe: Callable[[], T],
    *,
    timeout: float,
    interval: float,
    report: Reporter,
    hint: str,
) -> T:
    """Call ``probe`` until it returns, retrying while it raises :class:`NotReady`.

    A :class:`BootstrapError` from ``probe`` ends the wait at once (e.g. a wrong password will not
    heal). After ``timeout`` seconds, raises :class:`BootstrapError` with the last reason and ``hint``.
    """
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            result = probe()
        except NotReady as exc:
            reason = str(exc)
        else:
            if attempt > 1:
                report(f"{what} is up after {attempt} attempts ({time.monotonic() - start:.0f}s)")
            return result
        elapsed = time.monotonic() - start
        report(f"waiting for {what}: attempt {attempt}, {elapsed:.0f}s of {timeout:.0f}s: {reason}")
        if elapsed + interval > timeout:
            raise BootstrapError(
                f"{what} did not become ready within {timeout:.0f}s ({attempt} attempts); "
                f"last error: {reason}. {hint}"
            )
        time.sleep(interval)
