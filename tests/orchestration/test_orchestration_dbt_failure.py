"""A failing dbt test surfaces in Dagster as a failed asset check, a failed step and run, downstream
assets not materialized — and as FAIL/error in lineage and traces."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pyarrow as pa
from dagster import AssetKey, DagsterEventType, DagsterInstance, execute_job, reconstructable

from demo.generator.schemas import ARROW_SCHEMAS
from demo.ingest import catalog
from demo.orchestration.raw import raw_run_config
from tests.orchestration.conftest import PipelineEnv, Receiver


def add_order_without_lines(env: PipelineEnv) -> None:
    """A valid order (known customer, valid status) with no order lines: every source test passes,
    but fct_orders gets a null amount, which its not_null test rejects."""
    settings = env.settings
    table = catalog(settings).load_table((settings.namespace_raw, "orders"))
    row = {
        "order_id": 999_999,
        "customer_id": 1,
        "status": "placed",
        "channel": "web",
        "created_at": datetime(2026, 1, 1, 12, 0),
        "_run_key": "test-broken-order",
    }
    table.append(pa.Table.from_pylist([row], schema=ARROW_SCHEMAS["orders"]))


def test_failing_dbt_test_fails_the_asset(pipeline_env: PipelineEnv, observed_env: Receiver) -> None:
    from demo.orchestration.definitions import marts_job_def, seed_job_def

    with DagsterInstance.get() as instance:
        seeded = execute_job(reconstructable(seed_job_def), instance, run_config=raw_run_config("seed", run_key="s"))
        assert seeded.success
        add_order_without_lines(pipeline_env)
        # Earlier failed builds' folders (oldest first) and one that is not dagster-dbt's.
        target_root = Path(pipeline_env.env["DBT_TARGET_PATH"])
        earlier = [target_root / f"dbt_models-0ld000{n}-abcdef{n}" for n in range(6)]
        for n, folder in enumerate(earlier):
            folder.mkdir(parents=True)
            (folder / "dbt.log").write_text("failed\n")
            os.utime(folder, (1_700_000_000 + n, 1_700_000_000 + n))
        (target_root / "notes").mkdir()
        result = execute_job(reconstructable(marts_job_def), instance)

    assert not result.success
    # This build's folder is kept for a look, with the 4 newest earlier ones (5 in all); older ones are
    # deleted so a schedule that keeps failing cannot fill the pod's /tmp.
    [this_build] = [f for f in target_root.glob(f"dbt_models-{result.run_id[:7]}-*")]
    assert (this_build / "run_results.json").exists()
    assert sorted(f.name for f in target_root.iterdir()) == sorted([this_build.name, "notes", "partial_parse.msgpack", *(f.name for f in earlier[2:])])
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["dbt_models"]

    checks = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = {(c.asset_key, c.check_name) for c in checks if not c.passed}
    fct_orders = AssetKey(["marts", "fct_orders"])
    assert (fct_orders, "not_null_fct_orders_amount") in failed
    assert any(c.passed for c in checks), "the other tests ran and passed"

    materialized = {e.asset_key for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION}
    assert fct_orders in materialized  # the model ran; its test failed after
    for downstream in ("dim_customers", "order_status_funnel"):  # both select from fct_orders
        assert AssetKey(["marts", downstream]) not in materialized, f"{downstream} must not be built on bad data"

    # Lineage: the Dagster run FAILs with the reason, the model that ran COMPLETEs, skipped ones emit nothing.
    events = observed_env.lineage_events()
    run_events = [e for e in events if e["run"]["runId"] == result.run_id]
    assert [e["eventType"] for e in run_events] == ["START", "FAIL"]
    assert "dbt_models" in run_events[-1]["run"]["facets"]["errorMessage"]["message"]
    by_job = {e["job"]["name"]: e["eventType"] for e in events}
    assert by_job["dbt.fct_orders"] == "COMPLETE"
    assert "dbt.dim_customers" not in by_job

    # Traces: run span and the dbt test span are errors, the dbt build span says it failed.
    spans = observed_env.span_list()
    run_span = next(s for s in spans if s["name"] == "dagster.run build_marts")
    assert run_span["status"] == 2  # STATUS_CODE_ERROR
    test_span = next(s for s in spans if s["name"] == "dbt.test not_null_fct_orders_amount")
    assert test_span["status"] == 2 and test_span["trace_id"] == run_span["trace_id"]
    build_span = next(s for s in spans if s["name"] == "dbt build" and s["trace_id"] == run_span["trace_id"])
    assert build_span["attributes"]["dbt.success"] is False
