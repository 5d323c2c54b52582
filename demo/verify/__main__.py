"""``python -m demo.verify [--trigger] [--timeout S]``: run every check, print progress lines and
the final ``floe-verify <json>`` line (demo/verify/report.py), exit 0 / 1 / 2."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from demo.verify.report import FAIL, CheckResult, Report


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m demo.verify", description=__doc__)
    parser.add_argument("--trigger", action="store_true", help="launch a generate_and_build run and wait for it (the only check that changes data)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="overall deadline in seconds (exit 2 when reached)")
    args = parser.parse_args(argv)

    from demo.verify.settings import load_settings

    try:
        lake, settings = load_settings()
    except ValueError as exc:
        report = Report(checks=[CheckResult("settings", FAIL, "invalid or missing settings", str(exc))], timed_out=False)
        print(report.checks[0].progress_line(), file=out, flush=True)
        print(report.report_line(), file=out, flush=True)
        return 2

    from demo.verify.checks import Context, all_checks
    from demo.verify.runner import run_checks

    ctx = Context(lake=lake, settings=settings, trigger=args.trigger)
    try:
        report = run_checks(all_checks(settings), ctx, timeout=args.timeout,
                            check_timeout=settings.verify_check_timeout_seconds, out=out)
    finally:
        ctx.http.close()
    print(report.report_line(), file=out, flush=True)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
