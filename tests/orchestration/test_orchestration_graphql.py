"""The manual trigger path: GraphQL against a running dagster-webserver whose instance stores runs,
events and schedules in a real PostgreSQL (dagster-postgres), the way the cluster runs it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest

from demo.ingest import raw_table_counts
from demo.orchestration.raw import raw_run_config
from demo.orchestration.trigger import (
    DEFAULT_LOCATION,
    LAUNCH_RUN,
    RUN_STATUS,
    TriggerError,
    graphql,
    launch_run,
    launch_variables,
    wait_for_run,
)
from tests.orchestration.conftest import PipelineEnv, Receiver
from tests.support.dagster import definitions_webserver
from tests.support.postgres import PostgresServer, postgres_server

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs" / "pipeline.md"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def dagster_yaml(pg: PostgresServer) -> str:
    # dagster_postgres storage with the password from the environment, as the cluster's dagster.yaml.
    # `scheme: postgresql+psycopg2`: SQLAlchemy 2.1 (installed with dagster 1.13) maps a bare
    # `postgresql://` to the psycopg 3 driver, which dagster-postgres does not install (it brings
    # psycopg2-binary); without it the instance fails with "No module named 'psycopg'".
    return f"""storage:
  postgres:
    postgres_db:
      username: {pg.user}
      password:
        env: FLOE_TEST_DAGSTER_PG_PASSWORD
      hostname: {pg.host}
      db_name: {pg.database}
      port: {pg.port}
      scheme: postgresql+psycopg2
# The instance default is the QueuedRunCoordinator (dagster/_core/instance/ref.py), which needs a
# dagster-daemon to dequeue runs; here the webserver launches them itself.
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""


@pytest.fixture
def webserver(pipeline_env: PipelineEnv, postgres: PostgresServer, observed_env: Receiver) -> Iterator[str]:
    """dagster-webserver on this test's lakehouse namespaces, lineage and traces to ``observed_env``."""
    (pipeline_env.dagster_home / "dagster.yaml").write_text(dagster_yaml(postgres))
    env = {**os.environ, "FLOE_TEST_DAGSTER_PG_PASSWORD": postgres.password}
    with definitions_webserver(env, pipeline_env.dagster_home / "webserver.log") as (url, _):
        yield url


def test_docs_show_the_tested_graphql_documents() -> None:
    text = DOCS.read_text()
    assert LAUNCH_RUN in text
    assert RUN_STATUS in text
    variables = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    assert variables == launch_variables(
        "generate_and_build", DEFAULT_LOCATION, raw_run_config("append", n_orders=100)
    )


def test_graphql_trigger_seeds_through_a_running_webserver(
    pipeline_env: PipelineEnv, postgres: PostgresServer, webserver: str, observed_env: Receiver
) -> None:
    assert raw_table_counts(pipeline_env.settings)["orders"] is None
    with httpx.Client(timeout=30) as client:
        # A config error comes back as a typed GraphQL result, not a run.
        bad = graphql(
            client, webserver, LAUNCH_RUN,
            launch_variables("seed_raw_tables", DEFAULT_LOCATION, {"ops": {"raw_tables": {"config": {"mode": "bogus"}}}}),
        )["launchRun"]
        assert bad["__typename"] == "RunConfigValidationInvalid"
        with pytest.raises(TriggerError, match="PipelineNotFoundError"):
            launch_run(client, webserver, "no_such_job", DEFAULT_LOCATION)

        run_id = launch_run(client, webserver, "seed_raw_tables", DEFAULT_LOCATION, raw_run_config("seed"))
        assert wait_for_run(client, webserver, run_id, timeout=300) == "SUCCESS"

    counts = raw_table_counts(pipeline_env.settings)
    assert all(counts.values()), counts
    # The run and its events live in PostgreSQL (dagster-postgres), not in a sqlite file.
    with psycopg2.connect(postgres.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchone() == ("seed_raw_tables", "SUCCESS")
        cur.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        assert cur.fetchone()[0] == 4
    assert not list(pipeline_env.dagster_home.glob("**/*.db")), "no sqlite storage next to PostgreSQL"

    # The run worker (a separate process launched by the webserver's code server) reported the run.
    run_events = [e for e in observed_env.lineage_events("dagster.") if e["run"]["runId"] == run_id]
    assert [(e["eventType"], e["job"]["name"]) for e in run_events] == [
        ("START", "dagster.seed_raw_tables"), ("COMPLETE", "dagster.seed_raw_tables")
    ]
    run_spans = [s for s in observed_env.span_list() if s["attributes"].get("dagster.run_id") == run_id]
    assert {s["name"] for s in run_spans} == {"dagster.run seed_raw_tables", "dagster.step raw_tables"}
