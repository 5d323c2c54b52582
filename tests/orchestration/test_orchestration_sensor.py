"""The seed sensor's decisions on missing, empty, partial and full raw tables (real SeaweedFS)."""

from __future__ import annotations

import json

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context

from demo.ingest import catalog, ensure_raw_tables, seed_raw_tables
from demo.orchestration.raw import RAW_OP, decide_seed
from tests.orchestration.conftest import PipelineEnv


@pytest.fixture
def sensor():  # imported lazily: definitions parse the dbt project at import
    from demo.orchestration.definitions import seed_sensor

    return seed_sensor


def evaluate(sensor, cursor: str | None, instance: DagsterInstance) -> tuple[RunRequest | SkipReason, str | None]:
    context = build_sensor_context(cursor=cursor, instance=instance)
    result = sensor(context)
    return result, context.cursor


def test_missing_tables_request_one_seed_then_skip(pipeline_env: PipelineEnv, sensor) -> None:
    with DagsterInstance.ephemeral() as instance:
        first, cursor = evaluate(sensor, None, instance)
        assert isinstance(first, RunRequest)
        assert first.run_key and first.run_key.startswith("seed-1-")
        config = first.run_config["ops"][RAW_OP]["config"]
        assert config == {"mode": "seed", "run_key": first.run_key, "n_orders": 0}
        assert "customers=missing" in json.loads(cursor)["state"]

        # Same state (the seed has not landed yet): no second request.
        second, cursor_after = evaluate(sensor, cursor, instance)
        assert isinstance(second, SkipReason)
        assert "already requested" in (second.skip_message or "")
        assert cursor_after == cursor


def test_empty_tables_differ_from_missing(pipeline_env: PipelineEnv, sensor) -> None:
    with DagsterInstance.ephemeral() as instance:
        missing, cursor = evaluate(sensor, None, instance)
        assert isinstance(missing, RunRequest)
        ensure_raw_tables(pipeline_env.settings)  # tables exist now, with no rows
        empty, cursor_empty = evaluate(sensor, cursor, instance)
        assert isinstance(empty, RunRequest), "a new state (empty instead of missing) asks again"
        assert empty.run_key != missing.run_key and empty.run_key.startswith("seed-2-")
        assert "customers=0" in json.loads(cursor_empty)["state"]


def test_partial_then_full(pipeline_env: PipelineEnv, sensor) -> None:
    settings = pipeline_env.settings
    seed_raw_tables(settings, seed=7, run_key="partial-setup", n_customers=20, n_products=10, n_orders=30)
    catalog(settings).drop_table((settings.namespace_raw, "order_lines"))
    with DagsterInstance.ephemeral() as instance:
        partial, cursor = evaluate(sensor, None, instance)
        assert isinstance(partial, RunRequest)
        assert json.loads(cursor)["state"] == "order_lines=missing"

        # The seed run re-creates the missing table and leaves the full ones alone.
        result = seed_raw_tables(settings, seed=7, run_key=partial.run_key, n_customers=20, n_products=10, n_orders=30)
        assert result.rows_written["order_lines"] > 0
        assert set(result.skipped) == {"customers", "products", "orders"}

        full, cursor_full = evaluate(sensor, cursor, instance)
        assert isinstance(full, SkipReason)
        assert "all raw tables have rows" in (full.skip_message or "")
        assert json.loads(cursor_full) == {"state": "", "seeds": 1}


@pytest.mark.parametrize(
    ("counts", "cursor", "seed"),
    [
        ({"a": None, "b": None}, None, True),
        ({"a": 3, "b": 0}, None, True),
        ({"a": 3, "b": 4}, None, False),
        ({"a": 3, "b": 0}, json.dumps({"state": "b=0", "seeds": 1}), False),
        # Tables emptied again after a full state: a new decision with a new run key.
        ({"a": 3, "b": 0}, json.dumps({"state": "", "seeds": 1}), True),
    ],
)
def test_decide_seed(counts: dict, cursor: str | None, seed: bool) -> None:
    decision = decide_seed(counts, cursor)
    assert decision.seed is seed
    if seed:
        seeds = json.loads(cursor)["seeds"] + 1 if cursor else 1
        assert decision.run_key and decision.run_key.startswith(f"seed-{seeds}-")
