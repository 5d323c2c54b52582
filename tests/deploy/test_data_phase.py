"""The deploy's data phase (floe/deploy/data.py) on recorded cluster states (fixtures/data-phase.json):
the seed still running, the first build failed, Cube not yet built, the seed failed, an older failed
build. The real HTTP client (:class:`HttpSource`) talks to a local server that answers, poll by poll,
with the recorded Dagster GraphQL and Cube REST responses; every recorded Dagster response is checked
against dagster-graphql's own schema and the document that asks for it (tests/support/graphql_shapes.py).
Time is a fake clock: the deadline is exercised without waiting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest

from floe.deploy import data
from floe.deploy.outcome import ExitCode
from tests.deploy.conftest import FakeClock
from tests.support.graphql_shapes import check_response
from tests.verify.fakes import NOT_BUILT_MESSAGE, serve

STATES = json.loads((Path(__file__).parent / "fixtures" / "data-phase.json").read_text())
LAUNCHED = "9e11e000-2222-4000-8000-000000000002"


@pytest.fixture(scope="module")
def dagster_schema() -> graphql.GraphQLSchema:
    from dagster_graphql.schema import create_schema

    return create_schema().graphql_schema


@dataclass
class Recorded:
    """Answers from one scenario; the poll advances each time the seed job's last run is asked for
    (the first question of every poll, floe.deploy.data.step)."""

    scenario: dict[str, Any]
    schema: graphql.GraphQLSchema
    poll: int = -1
    answered: list[str] = field(default_factory=list)

    def current(self) -> dict[str, Any]:
        polls = self.scenario["polls"]
        return polls[min(self.poll, len(polls) - 1)]

    def _dagster(self, body: dict[str, Any]) -> dict[str, Any]:
        query, variables = body["query"], body.get("variables") or {}
        if query == data.LAST_RUN:
            if variables["job"] == data.SEED_JOB:
                self.poll += 1
            run = self.current()[variables["job"]]
            answer = {"runsOrError": {"__typename": "Runs", "results": [run] if run else []}}
        elif query == data.RUN_LOGS:
            answer = {"logsForRun": {"__typename": "EventConnection", "events": self.scenario["logs"][variables["runId"]]}}
        else:
            raise AssertionError(f"unexpected document {query[:60]}")
        check_response(self.schema, query, answer)  # the recorded shape is the upstream schema's
        return {"data": answer}

    def _cube(self, query: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        cube = self.current()["cube"]
        if cube == "not_built":
            return 400, {"error": NOT_BUILT_MESSAGE}
        if cube == "continue_wait":
            return 200, {"error": "Continue wait"}
        if query.get("dimensions"):
            orders, amount = cube["rollup"]
            rows = [{"orders.status": "delivered", "orders.created_at.day": "2026-11-25T00:00:00.000", "orders.count": str(orders - 1),
                     "orders.total_amount": str(Decimal(amount) - 10)},
                    {"orders.status": "placed", "orders.created_at.day": "2026-11-26T00:00:00.000", "orders.count": "1", "orders.total_amount": "10.00"}]
        else:
            assert query["filters"] == [{"member": "orders.order_id", "operator": "set"}]  # no rollup holds order_id
            orders, amount = cube["marts"]
            rows = [{"orders.count": str(orders), "orders.total_amount": amount}]
        return 200, {"query": query, "data": rows, "lastRefreshTime": "2026-11-25T17:05:00.000Z", "annotation": {},
                     "dataSource": "default", "dbType": "duckdb", "extDbType": "cubestore", "external": bool(query.get("dimensions")),
                     "slowQuery": False, "total": None}

    def __call__(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self.answered.append(path)
        if path == "/graphql":
            return 200, self._dagster(json.loads(body))
        if path == "/cubejs-api/v1/load":
            assert headers.get("Authorization") == "recorded-token"
            return self._cube(json.loads(query["query"][0]))
        return 404, {"error": path}


@contextmanager
def source(name: str, schema: graphql.GraphQLSchema) -> Iterator[tuple[data.HttpSource, list[str]]]:
    recorded = Recorded(STATES[name], schema)
    launched: list[str] = []

    def launch(job: str) -> str:
        launched.append(job)
        return LAUNCHED

    with serve(recorded) as url, httpx.Client(timeout=10) as http:
        yield data.HttpSource(http, url, url, "recorded-token", launcher=launch), launched


def replay(name: str, schema: graphql.GraphQLSchema, timeout: float = 900) -> tuple[data.DataResult, list[str], list[str]]:
    lines: list[str] = []
    with source(name, schema) as (src, launched):
        result = data.wait_for_data(src, timeout=timeout, poll=5, clock=FakeClock(), on_progress=lambda _s, line: lines.append(line))
    return result, lines, launched


def test_seed_still_running_then_the_first_build_then_cube(dagster_schema: graphql.GraphQLSchema) -> None:
    result, lines, launched = replay("seed-still-running", dagster_schema)
    assert result.exit_code == ExitCode.SUCCESS, result
    assert launched == [data.GENERATE_JOB]  # launched by the deploy once the seed succeeded, not by the schedule
    assert lines == [
        "waiting for the seed run (sensor seed_when_raw_tables_empty, requested once the raw tables are empty)",
        "seed run 5eed0000 STARTED",
        "seed run 5eed0000 STARTED",
        "launched generate_and_build run 9e11e000 (new orders, then dbt build)",
        "generate_and_build run 9e11e000 STARTED (new orders, then dbt build)",
        "marts built; Cube: no rollup built yet (floe-cube-refresh-worker builds it once the marts exist)",
        "marts built; Cube: still computing (Continue wait)",
        "marts built; Cube's rollup holds 1650 orders / 104233.51, the marts 1675 / 105902.07: waiting for the refresh worker (floe-cube-refresh-worker)",
        "Cube serves the marts from its rollup: 1675 orders, amount 105902.07",
    ]
    assert result.seconds == 40  # 8 polls, 5 s apart on the fake clock


def test_the_first_build_failed_fails_with_the_runs_error_and_logs(dagster_schema: graphql.GraphQLSchema) -> None:
    result, _, launched = replay("first-build-failed", dagster_schema)
    assert result.exit_code == ExitCode.FAILURE and launched == [data.GENERATE_JOB]
    assert result.problem == ("generate_and_build run 9e11e000-2222-4000-8000-000000000002 FAILURE: dagster_dbt.errors.DagsterDbtCliRuntimeError: "
                              "The dbt CLI process with command `dbt build` failed with exit code `1`. "
                              "— the marts were not built; fix the cause, then `make generate`")
    assert any("Table with name stg_orders does not exist" in line for line in result.log_tail), result.log_tail
    assert result.log_tail[-1].startswith("ERROR -: Execution of run for \"generate_and_build\" failed.")


def test_cube_not_yet_built_times_out_naming_the_refresh_worker(dagster_schema: graphql.GraphQLSchema) -> None:
    result, lines, launched = replay("cube-not-yet-built", dagster_schema, timeout=60)
    assert result.exit_code == ExitCode.TIMEOUT and launched == []  # a build had already succeeded: none launched
    assert set(lines) == {"marts built; Cube: no rollup built yet (floe-cube-refresh-worker builds it once the marts exist)"}
    assert "no data after 60s" in (result.problem or "") and "floe-cube-refresh-worker" in (result.problem or "")
    assert result.seconds == 60


def test_a_failed_seed_fails_with_its_error(dagster_schema: graphql.GraphQLSchema) -> None:
    result, _, launched = replay("seed-failed", dagster_schema)
    assert result.exit_code == ExitCode.FAILURE and launched == []
    assert "ForbiddenError: Forbidden: Principal 'floe_writer' is not authorized for op CREATE_TABLE_DIRECT" in (result.problem or "")
    assert "`make seed`" in (result.problem or "")


def test_an_older_failed_build_is_not_ours_a_new_one_is_launched(dagster_schema: graphql.GraphQLSchema) -> None:
    result, lines, launched = replay("an-older-build-failed", dagster_schema)
    assert result.exit_code == ExitCode.SUCCESS and launched == [data.GENERATE_JOB]
    assert lines[0] == "launched generate_and_build run 9e11e000 (new orders, then dbt build)"


def test_dagster_unreachable_for_good_fails() -> None:
    from demo.lakehouse.local import free_port

    with httpx.Client(timeout=2) as http:
        url = f"http://127.0.0.1:{free_port()}"
        src = data.HttpSource(http, url, url, "t", launcher=lambda job: "x")
        result = data.wait_for_data(src, timeout=900, poll=5, clock=FakeClock())
    assert result.exit_code == ExitCode.FAILURE and "unreachable 10 times in a row" in (result.problem or "")


def test_the_shape_check_catches_a_wrong_recording(dagster_schema: graphql.GraphQLSchema) -> None:
    """The recorded-shape check is not a formality: a field Dagster does not have, a wrong enum
    value or a missing non-null field each fail it."""
    good = {"runsOrError": {"__typename": "Runs", "results": [{"runId": "r", "status": "SUCCESS", "startTime": 1.0, "endTime": 2.0}]}}
    check_response(dagster_schema, data.LAST_RUN, good)
    for bad in (
        {"runsOrError": {"__typename": "Runs", "results": [{"runId": "r", "status": "DONE", "startTime": 1.0, "endTime": 2.0}]}},
        {"runsOrError": {"__typename": "Runs", "results": [{"runId": "r", "status": "SUCCESS", "state": "x", "startTime": 1.0, "endTime": 2.0}]}},
        {"runsOrError": {"__typename": "Runs", "results": [{"status": "SUCCESS", "startTime": 1.0, "endTime": 2.0}]}},
        {"runsOrError": {"__typename": "Run", "results": []}},
    ):
        with pytest.raises(AssertionError):
            check_response(dagster_schema, data.LAST_RUN, bad)
