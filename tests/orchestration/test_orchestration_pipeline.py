"""Seed → schedule ticks → marts, through Dagster on real SeaweedFS + DuckDB + dbt, with the lineage
and traces of the runs captured on local receivers.

dbt builds are the slow part (tens of seconds each on a shared 2-core machine), so one test covers a
seed and two ticks and asserts the data, the OpenLineage events and the spans of those runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_schedule_context, execute_job, reconstructable

from demo.generator.marts import MARTS
from demo.ingest import catalog, raw_table_counts
from demo.lakehouse.maintenance import table_files
from demo.lakehouse.duckdb import connect
from demo.orchestration.raw import raw_run_config
from tests.orchestration.conftest import PipelineEnv, Receiver

TICK_ORDERS = 25  # FLOE_PIPELINE_ORDERS_PER_TICK in the pipeline_env fixture


def marts_figures(env: PipelineEnv) -> dict[str, object]:
    con = connect(env.settings)
    try:
        m = f"lake.{env.marts}"
        orders, amount = con.execute(f"SELECT count(*), sum(amount) FROM {m}.fct_orders").fetchone()
        revenue = con.execute(f"SELECT sum(revenue) FROM {m}.daily_revenue_by_category").fetchone()[0]
        revenue_orders = con.execute(f"SELECT sum(amount) FROM {m}.fct_orders WHERE counts_as_revenue").fetchone()[0]
        funnel = con.execute(f"SELECT sum(orders) FROM {m}.order_status_funnel").fetchone()[0]
        new_lines = {
            key: value
            for key, value in con.execute(
                f"SELECT _run_key, sum(line_amount) FROM lake.{env.raw}.order_lines GROUP BY 1"
            ).fetchall()
        }
        return {
            "orders": orders,
            "amount": amount,
            "revenue": revenue,
            "revenue_orders": revenue_orders,
            "funnel_orders": funnel,
            "line_amount_by_run_key": new_lines,
        }
    finally:
        con.close()


def tick_request(schedule, instance: DagsterInstance, at: datetime) -> RunRequest | SkipReason:
    return schedule(build_schedule_context(instance=instance, scheduled_execution_time=at))


def test_seed_then_schedule_ticks_change_the_marts(
    pipeline_env: PipelineEnv, observed_env: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from demo.orchestration.definitions import seed_job_def, tick_job_def, tick_schedule

    # Expire every older snapshot at once, so the step's compaction leaves exactly one per mart.
    monkeypatch.setenv("FLOE_MARTS_SNAPSHOT_RETENTION_S", "0")
    settings = pipeline_env.settings
    with DagsterInstance.get() as instance:
        before_seed = tick_request(tick_schedule, instance, datetime(2026, 11, 25, 11, 55, tzinfo=UTC))
        assert isinstance(before_seed, SkipReason), "no appends before the seed"

        seeded = execute_job(
            reconstructable(seed_job_def), instance, run_config=raw_run_config("seed", run_key="seed-test")
        )
        assert seeded.success
        raw0 = raw_table_counts(settings)
        assert all(raw0.values())

        first = tick_request(tick_schedule, instance, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
        assert isinstance(first, RunRequest) and first.run_key == "tick-20261125T120000Z"
        assert tick_request(tick_schedule, instance, datetime(2026, 11, 25, 12, 0, tzinfo=UTC)).run_key == first.run_key
        tick1 = execute_job(reconstructable(tick_job_def), instance, run_config=first.run_config, tags=first.tags)
        assert tick1.success
        raw1 = raw_table_counts(settings)
        marts1 = marts_figures(pipeline_env)

        second = tick_request(tick_schedule, instance, datetime(2026, 11, 25, 12, 5, tzinfo=UTC))
        assert isinstance(second, RunRequest) and second.run_key == "tick-20261125T120500Z"
        tick2 = execute_job(reconstructable(tick_job_def), instance, run_config=second.run_config, tags=second.tags)
        assert tick2.success
        raw2 = raw_table_counts(settings)
        marts2 = marts_figures(pipeline_env)

    # Each tick appended the configured number of orders, and customers/products did not move.
    assert raw1["orders"] == raw0["orders"] + TICK_ORDERS
    assert raw2["orders"] == raw1["orders"] + TICK_ORDERS
    assert raw2["order_lines"] > raw1["order_lines"] > raw0["order_lines"]
    assert (raw2["customers"], raw2["products"]) == (raw0["customers"], raw0["products"])

    # The marts follow: one fct_orders row per raw order, amounts grow by exactly the new lines.
    assert marts1["orders"] == raw1["orders"] and marts2["orders"] == raw2["orders"]
    assert marts1["funnel_orders"] == marts1["orders"] and marts2["funnel_orders"] == marts2["orders"]
    added = marts2["line_amount_by_run_key"][second.run_key]
    assert added > 0
    assert marts2["amount"] - marts1["amount"] == added
    assert marts2["revenue"] == marts2["revenue_orders"]
    assert marts2["revenue"] >= marts1["revenue"]

    # The second tick's step compacted what its rebuild left: one data file, no delete file, one snapshot.
    cat = catalog(settings)
    for name in MARTS:
        files = table_files(cat.load_table((pipeline_env.marts, name)))
        assert (files.data_files, files.delete_files, files.snapshots) == (1, 0, 1), (name, files)

    assert_lineage(observed_env, pipeline_env, tick2.run_id)
    assert_spans(observed_env, pipeline_env, seeded.run_id, tick2.run_id)


def _names(datasets: list[dict]) -> set[str]:
    return {d["name"] for d in datasets}


def assert_lineage(receiver: Receiver, env: PipelineEnv, run_id: str) -> None:
    events = receiver.lineage_events()
    assert {e["job"]["namespace"] for e in events} == {"floe-test"}

    run_events = [e for e in events if e["run"]["runId"] == run_id]
    assert [e["eventType"] for e in run_events] == ["START", "COMPLETE"]
    assert {e["job"]["name"] for e in run_events} == {"dagster.generate_and_build"}

    def children(job: str) -> list[dict]:
        found = [
            e for e in events
            if e["job"]["name"] == job and e["run"]["facets"].get("parent", {}).get("run", {}).get("runId") == run_id
        ]
        for e in found:
            parent_job = e["run"]["facets"]["parent"]["job"]
            assert (parent_job["namespace"], parent_job["name"]) == ("floe-test", "dagster.generate_and_build")
        return found

    ingest = children("ingest.raw_tables")
    assert [e["eventType"] for e in ingest] == ["START", "COMPLETE"]
    assert _names(ingest[-1]["outputs"]) == {f"warehouse.{env.raw}.orders", f"warehouse.{env.raw}.order_lines"}
    catalog_ns = f"iceberg://{env.settings.catalog_uri.split('://', 1)[1]}"
    assert {d["namespace"] for d in ingest[-1]["outputs"]} == {catalog_ns}

    fct = children("dbt.fct_orders")
    assert [e["eventType"] for e in fct] == ["START", "COMPLETE"]
    assert _names(fct[-1]["outputs"]) == {f"warehouse.{env.marts}.fct_orders"}
    assert {n.rsplit(".", 1)[-1] for n in _names(fct[-1]["inputs"])} == {"stg_orders", "stg_customers", "stg_order_lines", "stg_products"}
    stg_orders = children("dbt.stg_orders")
    assert _names(stg_orders[-1]["inputs"]) == {f"warehouse.{env.raw}.orders"}
    # stg_orders' output is the very dataset fct_orders reads: the graph is connected.
    produced = stg_orders[-1]["outputs"][0]
    assert (produced["namespace"], produced["name"]) in {(d["namespace"], d["name"]) for d in fct[-1]["inputs"]}
    for model in ("daily_revenue_by_category", "dim_customers", "dim_products", "order_status_funnel"):
        assert [e["eventType"] for e in children(f"dbt.{model}")] == ["START", "COMPLETE"]


def assert_spans(receiver: Receiver, env: PipelineEnv, seed_run_id: str, tick_run_id: str) -> None:
    spans = receiver.span_list()
    assert {s["service"] for s in spans} == {"floe-test-pipeline"}
    by_id = {s["span_id"]: s for s in spans}

    def one(name: str, **attributes: object) -> dict:
        found = [s for s in spans if s["name"] == name and all(s["attributes"].get(k) == v for k, v in attributes.items())]
        assert len(found) == 1, (name, attributes, [s["name"] for s in spans])
        return found[0]

    def parent_of(span: dict) -> dict:
        return by_id[span["parent_span_id"]]

    seed_run = one("dagster.run seed_raw_tables", **{"dagster.run_id": seed_run_id})
    assert seed_run["parent_span_id"] == ""
    seed_step = one("dagster.step raw_tables", **{"dagster.run_id": seed_run_id})
    assert parent_of(seed_step) is seed_run
    seed_write = [s for s in spans if s["name"] == f"iceberg.write {env.raw}" and s["trace_id"] == seed_run["trace_id"]]
    assert len(seed_write) == 1 and parent_of(seed_write[0]) is seed_step
    assert seed_write[0]["attributes"]["iceberg.rows_written.customers"] > 0

    tick_run = one("dagster.run generate_and_build", **{"dagster.run_id": tick_run_id})
    dbt_step = one("dagster.step dbt_models", **{"dagster.run_id": tick_run_id})
    raw_step = one("dagster.step raw_tables", **{"dagster.run_id": tick_run_id})
    assert parent_of(dbt_step) is tick_run and parent_of(raw_step) is tick_run
    assert raw_step["end"] <= dbt_step["start"]
    dbt_build = [s for s in spans if s["name"] == "dbt build" and s["parent_span_id"] == dbt_step["span_id"]]
    assert len(dbt_build) == 1 and dbt_build[0]["attributes"]["dbt.success"] is True
    model = [s for s in spans if s["name"] == "dbt.model fct_orders" and s["trace_id"] == tick_run["trace_id"]]
    assert len(model) == 1 and parent_of(model[0]) is dbt_build[0]
    assert model[0]["attributes"]["db.namespace"] == env.marts
    assert dbt_build[0]["start"] <= model[0]["start"] <= model[0]["end"] <= dbt_build[0]["end"]
    assert all(s["status"] != 2 for s in spans if s["trace_id"] == tick_run["trace_id"]), "no error spans"
    compactions = [s for s in spans if s["name"].startswith(f"iceberg.compact {env.marts}.") and s["trace_id"] == tick_run["trace_id"]]
    assert sorted(s["name"].rsplit(".", 1)[-1] for s in compactions) == sorted(MARTS)
    for compaction in compactions:
        assert parent_of(compaction) is dbt_step
        assert compaction["attributes"]["iceberg.rewritten"] is True
        assert compaction["attributes"]["iceberg.delete_files_before"] >= 1
        assert compaction["attributes"]["iceberg.delete_files_after"] == 0
