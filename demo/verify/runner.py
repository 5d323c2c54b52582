"""Runs the checks one after another, each under a deadline, and prints the progress lines.

A check is a function ``(ctx) -> CheckResult``. It may raise :class:`CheckFailed` (figure + hint);
any other exception becomes a failure with a hint (connection refused names the URL). A check that
does not return within its deadline — ``min(per-check timeout, what is left of --timeout)`` — is
reported as failed with "timed out", the report's ``timed_out`` is set, and the run goes on (its
thread is a daemon and dies with the process). Checks left when ``--timeout`` is used up are failed
as "not run".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from demo.verify.report import FAIL, CheckResult, Report


class CheckFailed(Exception):
    def __init__(self, figure: str, hint: str) -> None:
        super().__init__(f"{figure}: {hint}")
        self.figure, self.hint = figure, hint


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Any], CheckResult]
    #: Own deadline (seconds) instead of the per-check default (the --trigger run is long).
    timeout: float | None = None


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(figure, hint) for an unexpected exception."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        url = getattr(getattr(exc, "request", None), "url", "?")
        return (f"cannot connect to {url}", "the service is down or not reachable: check its pod (make status) and its Service")
    if isinstance(exc, httpx.TimeoutException):
        return ("request timed out", "the service accepted the connection but did not answer in time: check its logs")
    if isinstance(exc, httpx.HTTPStatusError):
        body = exc.response.text[:200].replace("\n", " ")
        return (f"HTTP {exc.response.status_code} from {exc.request.url}", f"unexpected answer: {body}")
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return (text[:300], "unexpected error; see the message")


def _run_one(check: Check, ctx: Any, deadline: float) -> tuple[CheckResult, bool]:
    holder: dict[str, CheckResult] = {}
    done = threading.Event()

    def target() -> None:
        try:
            holder["result"] = check.run(ctx)
        except CheckFailed as exc:
            holder["result"] = CheckResult(check.name, FAIL, exc.figure, exc.hint)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a report line, never a crash
            figure, hint = describe_error(exc)
            holder["result"] = CheckResult(check.name, FAIL, figure, hint)
        finally:
            done.set()

    threading.Thread(target=target, name=f"verify-{check.name}", daemon=True).start()
    if not done.wait(timeout=max(deadline, 0.0)):
        return (
            CheckResult(check.name, FAIL, f"timed out after {deadline:.0f}s",
                        "the service is too slow or stuck; raise the deadline or look at its logs"),
            True,
        )
    return holder["result"], False


def run_checks(
    checks: Sequence[Check], ctx: Any, *, timeout: float, check_timeout: float, out: TextIO
) -> Report:
    started = time.monotonic()
    results: list[CheckResult] = []
    timed_out = False
    for check in checks:
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            result = CheckResult(check.name, FAIL, "not run", f"the overall --timeout ({timeout:.0f}s) was used up")
            timed_out = True
        else:
            result, late = _run_one(check, ctx, min(check.timeout or check_timeout, left))
            timed_out = timed_out or late
        # One line per check, whatever the services answered (psycopg2's messages hold newlines).
        result = CheckResult(result.name, result.status, " ".join(result.figure.split()), " ".join(result.hint.split()))
        results.append(result)
        print(result.progress_line(), file=out, flush=True)
    return Report(checks=results, timed_out=timed_out)
