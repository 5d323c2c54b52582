"""The output contract the host-side `floe.deploy verify` parses (demo/verify/report.py)."""

from __future__ import annotations

import json

import pytest

from demo.verify.report import CheckResult, Report, ReportParseError, parse_report


def test_round_trip_and_exit_codes() -> None:
    checks = [CheckResult("a", "pass", "3 rows"), CheckResult("b", "skip", "off"), CheckResult("c", "fail", "0 rows", "seed it")]
    report = Report(checks=checks)
    output = "\n".join([*(c.progress_line() for c in checks), report.report_line()]) + "\n"
    assert output.splitlines()[0] == "[verify] a: pass 3 rows"
    assert output.splitlines()[2] == "[verify] c: fail 0 rows — seed it"
    parsed = parse_report(output)
    assert parsed == report and parsed.exit_code == 1 and not parsed.ok
    assert json.loads(report.report_line().split(" ", 1)[1]) == {
        "ok": False, "timed_out": False,
        "checks": [{"name": "a", "status": "pass", "figure": "3 rows", "hint": ""},
                   {"name": "b", "status": "skip", "figure": "off", "hint": ""},
                   {"name": "c", "status": "fail", "figure": "0 rows", "hint": "seed it"}],
    }
    assert Report(checks=checks[:2]).exit_code == 0
    assert Report(checks=checks[:2], timed_out=True).exit_code == 2


@pytest.mark.parametrize(
    "output",
    [
        "",
        "[verify] a: pass\n",  # died before the last line
        'floe-verify {"ok": true}\n',
        'floe-verify {"ok": true, "timed_out": false, "checks": [{"name": "a", "status": "maybe", "figure": "", "hint": ""}]}',
        'floe-verify {"ok": true, "timed_out": false, "checks": [{"name": "a", "status": "fail", "figure": "", "hint": ""}]}',
        'floe-verify {"ok": true, "timed_out": false, "checks": []}\nsomething after',
    ],
)
def test_parse_rejects_anything_but_a_valid_last_line(output: str) -> None:
    with pytest.raises(ReportParseError):
        parse_report(output)
