"""`python -m demo.verify`: bad settings exit 2 naming the variables; deadlines exit 2; the last
line is always the parseable report."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

from demo.verify.__main__ import main
from demo.verify.report import CheckResult, parse_report
from demo.verify.runner import Check, run_checks

REPO = Path(__file__).resolve().parents[2]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "OPENLINEAGE_", "OTEL_"))}
    return subprocess.run([sys.executable, "-m", "demo.verify", *args], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_unset_settings_exit_2_naming_every_variable() -> None:
    result = run_cli({})
    assert result.returncode == 2, result.stderr
    report = parse_report(result.stdout)
    assert [c.name for c in report.checks] == ["settings"] and report.checks[0].status == "fail"
    hint = report.checks[0].hint
    for variable in ("FLOE_CATALOG_URI", "FLOE_S3_ENDPOINT", "FLOE_DAGSTER_URL", "FLOE_DAGSTER_LOCATION", "FLOE_CUBE_API_URL",
                     "FLOE_CUBE_API_SECRET", "FLOE_CUBE_SQL_HOST", "FLOE_CUBE_SQL_USER", "FLOE_CUBE_SQL_PASSWORD",
                     "FLOE_READER_CLIENT_ID", "FLOE_READER_CLIENT_SECRET"):
        assert f"{variable}: not set" in hint
    assert "FLOE_MARQUEZ_URL" not in hint and "FLOE_JAEGER_URL" not in hint  # optional: unset = off


def test_invalid_values_name_the_variable_and_never_print_secrets() -> None:
    env = {
        "FLOE_CATALOG_URI": "http://127.0.0.1:1", "FLOE_CATALOG_WAREHOUSE": "warehouse",
        "FLOE_CATALOG_OAUTH2_URI": "http://127.0.0.1:1/v1/oauth/tokens", "FLOE_CATALOG_CLIENT_ID": "w",
        "FLOE_CATALOG_CLIENT_SECRET": "very-secret-writer", "FLOE_S3_ENDPOINT": "http://127.0.0.1:1",
        "FLOE_S3_ACCESS_KEY_ID": "k", "FLOE_S3_SECRET_ACCESS_KEY": "very-secret-s3",
        "FLOE_DAGSTER_URL": "floe-dagster-webserver:80", "FLOE_DAGSTER_LOCATION": "floe-demo",
        "FLOE_CUBE_API_URL": "http://127.0.0.1:1", "FLOE_CUBE_API_SECRET": "very-secret-cube",
        "FLOE_CUBE_SQL_HOST": "127.0.0.1", "FLOE_CUBE_SQL_PORT": "abc", "FLOE_CUBE_SQL_USER": "floe",
        "FLOE_CUBE_SQL_PASSWORD": "very-secret-sql", "FLOE_READER_CLIENT_ID": "r", "FLOE_READER_CLIENT_SECRET": "very-secret-reader",
        "FLOE_MARQUEZ_URL": "", "FLOE_VERIFY_LATENCY_QUERIES": "5",
    }
    result = run_cli(env)
    assert result.returncode == 2
    hint = parse_report(result.stdout).checks[0].hint
    assert "FLOE_DAGSTER_URL: Value error, expected an http(s)://host[:port] URL" in hint
    assert "FLOE_CUBE_SQL_PORT: Input should be a valid integer" in hint
    assert "FLOE_VERIFY_LATENCY_QUERIES: Input should be greater than or equal to 30" in hint
    assert "very-secret" not in result.stdout + result.stderr


def test_a_stuck_check_times_out_and_exits_2() -> None:
    release = threading.Event()
    try:
        def stuck(ctx: object) -> CheckResult:
            release.wait(60)
            return CheckResult("stuck", "pass", "late")

        def fine(ctx: object) -> CheckResult:
            return CheckResult("fine", "pass", "ok")

        out = io.StringIO()
        report = run_checks([Check("stuck", stuck), Check("fine", fine)], None, timeout=60, check_timeout=0.3, out=out)
        assert report.timed_out and report.exit_code == 2 and not report.ok
        assert report.checks[0] == CheckResult("stuck", "fail", "timed out after 0s", report.checks[0].hint)
        assert report.checks[1].status == "pass"
        # The overall --timeout: what is left is "not run".
        report = run_checks([Check("stuck", stuck), Check("fine", fine)], None, timeout=0.3, check_timeout=30, out=out)
        assert [c.figure for c in report.checks] == ["timed out after 0s", "not run"] and report.exit_code == 2
    finally:
        release.set()


def test_main_prints_the_report_last(monkeypatch, stack) -> None:  # noqa: ANN001
    """A half-up stack: the lakehouse is up, nothing else listens. Every check reports, none crashes."""
    from tests.pipeline.conftest import settings_env

    from demo.lakehouse.local import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    env = {**settings_env(stack.settings), "FLOE_DAGSTER_URL": dead, "FLOE_DAGSTER_LOCATION": "floe-demo",
           "FLOE_CUBE_API_URL": dead, "FLOE_CUBE_API_SECRET": "s", "FLOE_CUBE_SQL_HOST": "127.0.0.1",
           "FLOE_CUBE_SQL_PORT": str(free_port()), "FLOE_CUBE_SQL_USER": "u", "FLOE_CUBE_SQL_PASSWORD": "p",
           "FLOE_READER_CLIENT_ID": "floe-reader", "FLOE_READER_CLIENT_SECRET": "floe-reader-secret",
           "FLOE_JAEGER_URL": dead}
    for key in [k for k in os.environ if k.startswith("FLOE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = io.StringIO()
    code = main(["--timeout", "300"], out=out)
    lines = out.getvalue().splitlines()
    report = parse_report(out.getvalue())
    assert code == 1 and not report.timed_out
    assert len(lines) == len(report.checks) + 1 and all(line.startswith("[verify] ") for line in lines[:-1])
    status = {c.name: c.status for c in report.checks}
    assert status["catalog.namespaces"] == status["catalog.reader"] == status["catalog.writer"] == "pass"
    assert status["storage.buckets"] == status["data.marts_match_raw"] == "pass"
    assert status["dagster.trigger"] == status["cube.freshness"] == status["marquez.lineage"] == "skip"
    for name in ("dagster.location", "dagster.automation", "dagster.seed_run", "cube.rest", "cube.preaggregation",
                 "cube.graphql", "cube.sql", "cube.latency", "jaeger.traces"):
        assert status[name] == "fail", name
    failed = {c.name: c for c in report.checks if c.status == "fail"}
    assert failed["cube.rest"].figure.startswith(f"cannot connect to {dead}/cubejs-api/v1/load")
