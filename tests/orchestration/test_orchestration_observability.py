"""Lineage and tracing when their endpoints are unset (off, said once) or unreachable (warned, the
run still succeeds). The configured case is asserted on real runs in test_orchestration_pipeline."""

from __future__ import annotations

import logging

import pytest
from dagster import DagsterInstance, execute_job, reconstructable

from demo.observability import lineage as lineage_module
from demo.observability import tracing as tracing_module
from demo.orchestration.raw import raw_run_config
from tests.orchestration.conftest import PipelineEnv, Receiver
from tests.support.postgres import free_port


@pytest.fixture(autouse=True)
def fresh_observability() -> None:
    """Forget the configuration an earlier test in this process left behind."""
    lineage_module._current = None
    tracing_module._current = None


def seed(env: PipelineEnv) -> bool:
    from demo.orchestration.definitions import seed_job_def

    with DagsterInstance.get() as instance:
        result = execute_job(reconstructable(seed_job_def), instance, run_config=raw_run_config("seed", run_key="obs"))
    return result.success


def test_unset_endpoints_send_nothing_and_say_so_once(
    pipeline_env: PipelineEnv, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="floe.observability")
    assert seed(pipeline_env)
    assert receiver.requests == []
    assert not lineage_module.lineage().enabled and not tracing_module.tracing().enabled
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("floe.observability")]
    assert messages.count("lineage is off: OPENLINEAGE_URL is not set") == 1
    assert messages.count("tracing is off: OTEL_EXPORTER_OTLP_ENDPOINT is not set") == 1


def test_unreachable_endpoints_warn_per_failure_and_the_run_succeeds(
    pipeline_env: PipelineEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("OPENLINEAGE_URL", dead)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", dead)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")  # seconds (exporter's own retry budget)
    caplog.set_level(logging.WARNING)
    assert seed(pipeline_env)

    undelivered = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    # run START, ingest START, ingest COMPLETE, run COMPLETE: each failure said, none hidden.
    assert [m.split(" event for ")[0] for m in undelivered] == [
        "OpenLineage START", "OpenLineage START", "OpenLineage COMPLETE", "OpenLineage COMPLETE"
    ]
    assert lineage_module.lineage().failures == 4
    exporter_errors = [
        r for r in caplog.records
        if r.name.startswith("opentelemetry.exporter") and r.levelno >= logging.WARNING
    ]
    assert exporter_errors, "the span exporter reports the failed export"
