"""The verifier's output contract, shared with the host-side ``floe.deploy verify``.

``python -m demo.verify`` prints, while the checks run, one progress line per check::

    [verify] <check>: <pass|fail|skip> <figure>

and, as its LAST line, one machine-readable line::

    floe-verify {"ok": bool, "timed_out": bool, "checks": [{"name": str, "status": "pass"|"fail"|"skip",
                                                            "figure": str, "hint": str}, ...]}

Exit code: 0 when every enabled check passed (skips are fine), 1 on a failure, 2 on a timeout (the
overall ``--timeout`` or a per-check deadline) or on invalid settings (then the only check is
``settings``, failed, its hint naming the variables). The host side reads the Job's log and calls
:func:`parse_report` on it. Only the standard library is imported here, so the host can import this
module without the pipeline's dependencies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

#: Prefix of the last line.
REPORT_PREFIX = "floe-verify "
#: Prefix of the progress lines.
PROGRESS_PREFIX = "[verify] "

PASS, FAIL, SKIP = "pass", "fail", "skip"
Status = Literal["pass", "fail", "skip"]
STATUSES: tuple[str, ...] = (PASS, FAIL, SKIP)

EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 2


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    figure: str = ""
    #: What to do about a failure (empty when the check passed).
    hint: str = ""

    def progress_line(self) -> str:
        line = f"{PROGRESS_PREFIX}{self.name}: {self.status} {self.figure}".rstrip()
        if self.status == FAIL and self.hint:
            line += f" — {self.hint}"
        return line


@dataclass(frozen=True)
class Report:
    checks: list[CheckResult] = field(default_factory=list)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.timed_out and all(c.status != FAIL for c in self.checks)

    @property
    def exit_code(self) -> int:
        if self.timed_out:
            return EXIT_TIMEOUT
        return EXIT_OK if self.ok else EXIT_FAILED

    def to_json(self) -> dict:
        return {"ok": self.ok, "timed_out": self.timed_out, "checks": [asdict(c) for c in self.checks]}

    def report_line(self) -> str:
        return REPORT_PREFIX + json.dumps(self.to_json(), separators=(",", ":"))


class ReportParseError(ValueError):
    """The output holds no valid ``floe-verify`` line (the Job died early, or printed garbage)."""


def parse_report(output: str) -> Report:
    """The report from the verifier's output: its last non-empty line must be ``floe-verify <json>``.

    Validates the shape strictly (the host must never show a half-read report as a result)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines or not lines[-1].startswith(REPORT_PREFIX):
        last = lines[-1] if lines else "(no output)"
        raise ReportParseError(f"the verifier printed no final {REPORT_PREFIX.strip()!r} line; last line: {last[:200]!r}")
    try:
        data = json.loads(lines[-1][len(REPORT_PREFIX):])
    except json.JSONDecodeError as exc:
        raise ReportParseError(f"invalid JSON in the {REPORT_PREFIX.strip()!r} line: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
        raise ReportParseError("the report has no 'checks' list")
    if not isinstance(data.get("ok"), bool) or not isinstance(data.get("timed_out"), bool):
        raise ReportParseError("the report's 'ok' and 'timed_out' must be booleans")
    checks = []
    for item in data["checks"]:
        if not isinstance(item, dict) or set(item) != {"name", "status", "figure", "hint"}:
            raise ReportParseError(f"a check must have exactly name, status, figure, hint: {item!r}")
        if item["status"] not in STATUSES or not all(isinstance(item[k], str) for k in item):
            raise ReportParseError(f"invalid check: {item!r}")
        checks.append(CheckResult(**item))
    report = Report(checks=checks, timed_out=data["timed_out"])
    if report.ok != data["ok"]:
        raise ReportParseError(f"'ok' is {data['ok']} but the checks say {report.ok}")
    return report
