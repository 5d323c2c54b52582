"""Dagster checks against a real dagster-webserver (PostgreSQL run storage, as in the cluster) on the
demo definitions and the SeaweedFS lakehouse; with --trigger the verifier launches a real
generate_and_build run (ingest + dbt build) and the data check then proves the new marts agree with
raw. Own namespaces, so the other tests' figures do not move."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from demo.orchestration.raw import raw_run_config
from demo.orchestration.trigger import DEFAULT_LOCATION, launch_run, wait_for_run
from demo.verify.checks import (
    Context,
    check_dagster_automation,
    check_dagster_location,
    check_dagster_seed,
    check_dagster_trigger,
    check_data,
)
from demo.verify.runner import CheckFailed
from tests.orchestration.test_orchestration_graphql import dagster_yaml
from tests.pipeline.conftest import settings_env
from tests.support.dagster import definitions_webserver
from tests.support.postgres import PostgresServer, postgres_server
from tests.verify.conftest import Stack, verify_settings


@pytest.fixture(scope="module")
def dagster(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Context]]:
    home = tmp_path_factory.mktemp("verify-dagster")
    lake = stack.settings.model_copy(update={"namespace_raw": "raw_dagster", "namespace_marts": "marts_dagster"})
    with postgres_server() as pg:
        (home / "dagster.yaml").write_text(dagster_yaml(pg))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "OPENLINEAGE_", "OTEL_"))}
        env.update(settings_env(lake))
        env.update({
            "DAGSTER_HOME": str(home), "FLOE_TEST_DAGSTER_PG_PASSWORD": pg.password,
            "FLOE_DBT_DUCKDB_PATH": str(home / "dbt.duckdb"), "DBT_TARGET_PATH": str(home / "dbt-target"),
            "FLOE_PIPELINE_ORDERS_PER_TICK": "25",
        })
        with definitions_webserver(env, home / "webserver.log") as (url, _):
            ctx = Context(lake=lake, settings=verify_settings(dagster_url=url, dagster_location=DEFAULT_LOCATION,
                                                              verify_trigger_timeout_seconds=600), settle_seconds=0)
            yield url, ctx
            ctx.http.close()


def test_dagster_checks_on_a_real_webserver(dagster: tuple[str, Context]) -> None:
    url, ctx = dagster
    assert check_dagster_location(ctx).figure.startswith(f"location {DEFAULT_LOCATION} loaded")
    assert check_dagster_automation(ctx).figure == (
        "seed_when_raw_tables_empty RUNNING, generate_orders_every_5_minutes RUNNING")
    # Nothing seeded yet: a fresh stack whose sensor has not run fails clearly.
    with pytest.raises(CheckFailed, match="no seed_raw_tables run yet"):
        check_dagster_seed(ctx)
    # Without --trigger nothing is launched.
    assert check_dagster_trigger(ctx).status == "skip"
    # Wrong location name: a clear failure naming what exists.
    wrong = Context(lake=ctx.lake, settings=verify_settings(dagster_url=url, dagster_location="floe-demo"))
    with pytest.raises(CheckFailed, match=rf"no code location 'floe-demo' \(have: {DEFAULT_LOCATION}\)"):
        check_dagster_location(wrong)

    # What the sensor does on a fresh cluster: one seed run.
    with httpx.Client(timeout=30) as client:
        run_id = launch_run(client, url, "seed_raw_tables", DEFAULT_LOCATION, raw_run_config("seed"))
        assert wait_for_run(client, url, run_id, timeout=300) == "SUCCESS"
    assert check_dagster_seed(ctx).figure == f"last seed_raw_tables run {run_id[:8]} SUCCESS"

    # --trigger: a real generate_and_build run through GraphQL, then the marts agree with raw.
    triggered = Context(lake=ctx.lake, settings=ctx.settings, trigger=True, settle_seconds=0)
    result = check_dagster_trigger(triggered)
    assert result.status == "pass" and " SUCCESS in " in result.figure, result
    assert triggered.state["triggered_run"].startswith(result.figure.split()[1])
    data = check_data(triggered)
    assert data.status == "pass", data
