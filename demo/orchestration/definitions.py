"""Dagster definitions of the demo pipeline: ``dagster api grpc -m demo.orchestration.definitions``.

Assets: the raw Iceberg tables (``raw/*``, one multi-asset) and the dbt models (dagster-dbt).
Jobs:
- ``seed_raw_tables``: create the raw tables and write the initial data (skips tables with rows);
- ``generate_and_build``: append new orders, then ``dbt build`` (models + tests) — the schedule's job;
- ``build_marts``: ``dbt build`` only.
Automation (both RUNNING by default, so a fresh cluster seeds and ticks without clicks):
- sensor ``seed_when_raw_tables_empty``: seeds when a raw table is missing or empty, once per
  observed state (:func:`demo.orchestration.raw.decide_seed`);
- schedule ``generate_orders_every_5_minutes``: cron ``FLOE_PIPELINE_SCHEDULE_CRON`` (default
  ``*/5 * * * *``, UTC), run key = the tick's time, skipped while the raw tables are not seeded.
Every job runs in-process inside a run span + run-level lineage (:mod:`demo.orchestration.observed`).
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    JobDefinition,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from demo.lakehouse.settings import LakehouseSettings
from demo.observability import tracing
from demo.orchestration.dbt import dbt_models, dbt_resource
from demo.orchestration.observed import traced_in_process_executor
from demo.orchestration.raw import APPEND_ASSET_KEYS, RAW_OP, counted_rows, decide_seed, observe_raw_tables, raw_run_config, raw_tables
from demo.orchestration.settings import PipelineSettings

SEED_JOB = "seed_raw_tables"
TICK_JOB = "generate_and_build"
MARTS_JOB = "build_marts"
SEED_SENSOR = "seed_when_raw_tables_empty"
TICK_SCHEDULE = "generate_orders_every_5_minutes"

_pipeline = PipelineSettings()

seed_job = define_asset_job(
    SEED_JOB,
    selection=AssetSelection.assets(raw_tables),
    config=raw_run_config("seed"),
    description="Create the raw Iceberg tables and write the initial data (tables with rows are left alone).",
)
tick_job = define_asset_job(
    TICK_JOB,
    selection=AssetSelection.assets(*APPEND_ASSET_KEYS) | AssetSelection.assets(dbt_models),
    config=raw_run_config("append"),
    description="Append new orders to the raw tables, then dbt build (models + tests) into the marts.",
)
marts_job = define_asset_job(
    MARTS_JOB,
    selection=AssetSelection.assets(dbt_models),
    description="dbt build only: rebuild staging and marts from the raw tables as they are.",
)


@sensor(
    name=SEED_SENSOR,
    job=seed_job,
    minimum_interval_seconds=_pipeline.sensor_interval_seconds,
    default_status=DefaultSensorStatus.RUNNING,
    description="Seeds the raw tables when any is missing or empty; never twice for the same observed state.",
)
def seed_sensor(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    with tracing.span("dagster.sensor " + SEED_SENSOR):
        counts = observe_raw_tables(LakehouseSettings())
    decision = decide_seed(counts, context.cursor)
    context.update_cursor(decision.cursor)
    if not decision.seed:
        return SkipReason(decision.reason)
    context.log.info(decision.reason)
    return RunRequest(
        run_key=decision.run_key,
        run_config=raw_run_config("seed", run_key=decision.run_key or ""),
        tags={"floe/trigger": "sensor", "floe/observed": counted_rows(counts)[:255]},
    )


@schedule(
    name=TICK_SCHEDULE,
    job=tick_job,
    cron_schedule=_pipeline.schedule_cron,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Appends FLOE_PIPELINE_ORDERS_PER_TICK new orders and rebuilds the marts.",
)
def tick_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    counts = observe_raw_tables(LakehouseSettings())
    if not all(counts.values()):
        return SkipReason(f"raw tables not seeded yet ({counted_rows(counts)}); the sensor seeds them")
    # One run key per tick: a re-evaluated tick is de-duplicated by Dagster, and the append itself
    # is idempotent per key (demo.ingest) should the run be retried.
    run_key = f"tick-{context.scheduled_execution_time:%Y%m%dT%H%M%SZ}"
    return RunRequest(
        run_key=run_key,
        run_config=raw_run_config("append", run_key=run_key, n_orders=PipelineSettings().orders_per_tick),
        tags={"floe/trigger": "schedule"},
    )


defs = Definitions(
    assets=[raw_tables, dbt_models],
    jobs=[seed_job, tick_job, marts_job],
    sensors=[seed_sensor],
    schedules=[tick_schedule],
    resources={"dbt": dbt_resource()},
    executor=traced_in_process_executor,
)


# Module-level factories so jobs can be reconstructed in other processes (dagster.reconstructable):
# the local main job and the tests run them with execute_job, which keeps our executor.
def seed_job_def() -> JobDefinition:
    return defs.resolve_job_def(SEED_JOB)


def tick_job_def() -> JobDefinition:
    return defs.resolve_job_def(TICK_JOB)


def marts_job_def() -> JobDefinition:
    return defs.resolve_job_def(MARTS_JOB)


__all__ = ["RAW_OP", "defs", "marts_job_def", "seed_job_def", "tick_job_def"]
