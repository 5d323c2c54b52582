"""Cube (REST, GraphQL, SQL), Marquez and Jaeger checks against local stand-ins answering in the
shapes upstream documents (tests/verify/fakes.py names each source), with the marts' totals read
from the real lakehouse through DuckDB. Each check passes on right answers and FAILS on: wrong
totals, no pre-aggregation, a missing lineage edge or job, no traces or no dbt spans, a wrong
secret, and the service down (connection refused: a failed check with a hint, never a crash)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re
import threading
import time
from collections.abc import Iterator

import psycopg2
import pytest

from demo.lakehouse.local import free_port
from demo.verify.checks import (
    CUBE_GRAPHQL_DOCUMENTS,
    CUBE_SQL,
    Context,
    check_cube_freshness,
    check_cube_graphql,
    check_cube_latency,
    check_cube_preaggregation,
    check_cube_rest,
    check_cube_sql,
    check_jaeger,
    check_marquez,
    cube_headers,
    marts_totals,
)
from demo.verify.runner import Check, CheckFailed, run_checks
from demo.verify.settings import lineage_dataset_namespace
from tests.support.cube_graphql import cube_graphql
from tests.support.postgres import PostgresServer, postgres_server
from tests.verify.conftest import Stack, verify_settings
from tests.verify.fakes import FakeCube, FakeJaeger, FakeMarquez, serve, traced

SECRET = "floe-test-cube-secret"


@pytest.fixture(scope="session")
def cube_sdl() -> str:
    """The GraphQL schema Cube 1.7.43's own makeSchema builds from demo/cube."""
    return cube_graphql().sdl


@contextlib.contextmanager
def cube(ctx: Context, sdl: str, **knobs: object) -> Iterator[tuple[Context, FakeCube]]:
    fake = FakeCube(totals=marts_totals(ctx), secret=SECRET, graphql_sdl=sdl, **knobs)
    with serve(fake) as url:
        settings = verify_settings(cube_api_url=url, verify_cube_wait_seconds=3, verify_freshness_target_seconds=1)
        yield Context(lake=ctx.lake, settings=settings, state=ctx.state, poll_seconds=0.05), fake


def run(check, ctx: Context):  # noqa: ANN001, ANN201 - the way the CLI runs it (exceptions -> failed results)
    report = run_checks([Check("c", check)], ctx, timeout=60, check_timeout=30, out=io.StringIO())
    return report.checks[0]


def test_cube_rest_graphql_preaggregation_and_latency_pass(ctx: Context, cube_sdl: str) -> None:
    # Right after a deploy: one 400 "not built yet" (the refresh worker's first build), then
    # "Continue wait" twice; both waited out, on REST and on GraphQL (there as HTTP 500).
    with cube(ctx, cube_sdl, not_built_first=1, continue_wait_first=2) as (c, fake):
        assert check_cube_rest(c).figure == "3 cubes, 3 rows, totals equal the marts"
        assert fake.requests[:4] == ["/cubejs-api/v1/load"] * 4  # asked again after the 400 and both "Continue wait"
        fake.not_built_first, fake.continue_wait_first = 1, 2
        assert check_cube_graphql(c).status == "pass"
        assert fake.requests[-4:] == ["/cubejs-api/graphql"] * 4
        result = check_cube_preaggregation(c)
        assert result.figure == "served from orders.orders_by_day in Cube Store (external), 2 rows, totals equal the marts"
        latency = check_cube_latency(c)
        assert latency.status == "pass" and "over 30 warm queries (budget 100 ms)" in latency.figure
        assert len(fake.tokens) == 1  # one signed token for the whole run


def test_graphql_continue_wait_comes_back_as_http_500(ctx: Context, cube_sdl: str) -> None:
    """The stand-in answers as express-graphql does for Cube's schema (a resolver error with the
    non-null root field: data null, HTTP 500); the old check read the body only on 200."""
    with cube(ctx, cube_sdl, continue_wait_first=1) as (c, _):
        response = c.http.post(f"{c.settings.cube_api_url}/cubejs-api/graphql", json={"query": CUBE_GRAPHQL_DOCUMENTS["orders"]},
                               headers=cube_headers(c))
        assert response.status_code == 500 and response.json() == {
            "data": None, "errors": [{"message": "Continue wait", "locations": [{"line": 1, "column": 9}], "path": ["cube"]}]}


def test_cube_wrong_totals_fail_every_cube_check(ctx: Context, cube_sdl: str) -> None:
    with cube(ctx, cube_sdl, offset=1) as (c, _):
        t = marts_totals(c)
        for check in (check_cube_rest, check_cube_graphql, check_cube_preaggregation):
            with pytest.raises(CheckFailed) as failed:
                check(c)
            assert str(t.orders + 1) in str(failed.value) and str(t.orders) in str(failed.value)
            assert "(for 1s)" in failed.value.figure and "stale rollup" in failed.value.hint


def test_stale_rollups_fail_and_a_rollup_catching_up_passes(ctx: Context, cube_sdl: str) -> None:
    t = marts_totals(ctx)
    older = dataclasses.replace(t, orders=t.orders - 25, amount=t.amount - 1000, customers=t.customers, revenue=t.revenue - 900)
    with cube(ctx, cube_sdl, stale=older) as (c, fake):
        for check in (check_cube_rest, check_cube_graphql, check_cube_preaggregation):
            with pytest.raises(CheckFailed, match=rf"{t.orders - 25}.*≠ marts {t.orders}") as failed:
                check(c)
            assert "floe-cube-refresh-worker" in failed.value.hint
        # The rollup catches up within the freshness target: compared again, it passes.
        threading.Timer(0.3, lambda: setattr(fake, "stale", None)).start()
        assert check_cube_rest(c).status == "pass"


def test_cube_without_the_pre_aggregation_fails(ctx: Context, cube_sdl: str) -> None:
    with cube(ctx, cube_sdl, pre_aggregation=False) as (c, _):
        with pytest.raises(CheckFailed, match=r"planned none, used none, external=False") as failed:
            check_cube_preaggregation(c)
        assert "not served from orders.orders_by_day in Cube Store" in failed.value.hint
    # The rollup served, but not from Cube Store (an `external: false` rollup): not enough.
    with cube(ctx, cube_sdl, external=False) as (c, _):
        with pytest.raises(CheckFailed, match=r"used \['orders.orders_by_day'\], external=False"):
            check_cube_preaggregation(c)


def test_cube_never_built_fails_naming_the_refresh_worker(ctx: Context, cube_sdl: str) -> None:
    with cube(ctx, cube_sdl, not_built_first=10_000) as (c, fake):
        c.state = {}
        with pytest.raises(CheckFailed, match=r"no pre-aggregation built yet after 3s \(HTTP 400\)") as failed:
            check_cube_rest(c)
        assert "floe-cube-refresh-worker" in failed.value.hint
        # Waited out once per run: the next check fails at once instead of waiting again.
        asked = len(fake.requests)
        started = time.monotonic()
        with pytest.raises(CheckFailed, match=r"no pre-aggregation built yet after 0s \(HTTP 500\)"):
            check_cube_graphql(c)
        assert time.monotonic() - started < 1 and len(fake.requests) == asked + 1


def test_cube_slower_than_the_plan_fails(ctx: Context, cube_sdl: str) -> None:
    with cube(ctx, cube_sdl, delay=0.12) as (c, _):
        with pytest.raises(CheckFailed, match=r"p95 1\d\d ms over 30 warm queries \(budget 100 ms\)"):
            check_cube_latency(c)
        # A CI budget (FLOE_VERIFY_LATENCY_BUDGET_MS) set higher: the same service passes, figures reported.
        ci = Context(lake=c.lake, settings=c.settings.model_copy(update={"verify_latency_budget_ms": 500.0}), state=c.state)
        assert re.fullmatch(r"p50 1\d\d ms, p95 1\d\d ms over 30 warm queries \(budget 500 ms\)", check_cube_latency(ci).figure)


def test_cube_wrong_secret_and_cube_down_fail_with_hints(ctx: Context, cube_sdl: str) -> None:
    with cube(ctx, cube_sdl) as (c, _):
        bad = Context(lake=c.lake, settings=c.settings.model_copy(update={"cube_api_secret": verify_settings(cube_api_secret="x").cube_api_secret}), state=c.state)
        result = run(check_cube_rest, bad)
        assert result.status == "fail" and "CUBEJS_API_SECRET" in result.hint
        assert run(check_cube_graphql, bad).hint == result.hint
    down = Context(lake=ctx.lake, settings=verify_settings(cube_api_url=f"http://127.0.0.1:{free_port()}"), state=ctx.state)
    for check in (check_cube_rest, check_cube_graphql, check_cube_preaggregation, check_cube_latency):
        result = run(check, down)
        assert result.status == "fail" and result.figure.startswith("cannot connect"), result


def reported_lag(message: str, c: Context, *, at_least: float) -> int:
    """The lag a freshness result names: from the run's end (the state's ``triggered_finished``) to
    the check's answer, in whole seconds. Exact about what it measures, not about machine speed: at
    least ``at_least`` (the run ended that long before the check began), at most the time from the
    run's end until now."""
    match = re.search(r"(\d+)s after dbt finished", message)
    assert match, message
    lag = int(match.group(1))
    assert at_least <= lag <= math.ceil(time.time() - c.state["triggered_finished"]), message
    return lag


def test_cube_freshness_is_measured_with_trigger(ctx: Context, cube_sdl: str) -> None:
    t = marts_totals(ctx)
    older = dataclasses.replace(t, orders=t.orders - 25, amount=t.amount - 1000)

    def triggered(c: Context, *, finished_ago: float, target: float) -> Context:
        return Context(lake=c.lake, settings=c.settings.model_copy(update={"verify_freshness_target_seconds": target}),
                       state={**c.state, "triggered_finished": time.time() - finished_ago}, trigger=True, poll_seconds=0.05)

    with cube(ctx, cube_sdl, stale=older) as (c, fake):
        assert check_cube_freshness(c).status == "skip"  # without --trigger nothing is measured
        # Still the old totals past the target: a failure that names the refresh worker.
        late = triggered(c, finished_ago=12, target=1)
        with pytest.raises(CheckFailed, match=r"Cube still serves 175 orders .* \d+s after dbt finished \(target 1s\)") as failed:
            check_cube_freshness(late)
        reported_lag(str(failed.value), late, at_least=12)
        assert "floe-cube-refresh-worker" in failed.value.hint
        # The rollup catches up while the check polls (within its 60 s target): the lag is measured.
        catching_up = triggered(c, finished_ago=0, target=60)
        threading.Timer(0.5, lambda: setattr(fake, "stale", None)).start()
        figure = check_cube_freshness(catching_up).figure
        assert re.fullmatch(r"Cube served the new marts \d+s after dbt finished \(target 60s\)", figure), figure
        reported_lag(figure, catching_up, at_least=0)
        # Served, but later than the target: a failure with the figure.
        late = triggered(c, finished_ago=12, target=1)
        with pytest.raises(CheckFailed, match=r"Cube served the new marts \d+s after dbt finished \(target 1s\)") as failed:
            check_cube_freshness(late)
        reported_lag(str(failed.value), late, at_least=12)
        in_time = triggered(c, finished_ago=12, target=60)
        figure = check_cube_freshness(in_time).figure
        assert re.fullmatch(r"Cube served the new marts \d+s after dbt finished \(target 60s\)", figure), figure
        reported_lag(figure, in_time, at_least=12)


# --- Cube SQL API: real PostgreSQL serving a table of the same shape ----------------------------


@pytest.fixture(scope="module")
def cube_sql() -> Iterator[PostgresServer]:
    """PostgreSQL standing in for Cube's SQL API: a table `orders` with the cube's measures as
    columns (one row per order: count 1, total_amount = amount) and an aggregate MEASURE(numeric)
    that sums, so the verifier's exact statement — Cube SQL's MEASURE() — runs unchanged."""
    with postgres_server(database="floe") as pg:
        yield pg


def fill_orders(pg: PostgresServer, amounts: list) -> None:  # noqa: ANN001
    with psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname=pg.database) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS orders")
        cur.execute("CREATE TABLE orders (count bigint, total_amount numeric(18, 2))")
        cur.execute("CREATE OR REPLACE AGGREGATE measure(numeric) (SFUNC = numeric_add, STYPE = numeric)")
        cur.executemany("INSERT INTO orders VALUES (1, %s)", [(a,) for a in amounts])


def test_cube_sql_api_through_psycopg2(ctx: Context, stack: Stack, cube_sql: PostgresServer) -> None:
    con = __import__("demo.lakehouse.duckdb", fromlist=["connect"]).connect(stack.settings)
    amounts = [row[0] for row in con.execute(f'SELECT amount FROM lake."{stack.settings.namespace_marts}".fct_orders').fetchall()]
    con.close()
    # The freshness target bounds how long a wrong answer is read again (until_fresh): 1 s, as for the
    # REST/GraphQL checks above, instead of the default 60 s of polling before the failure asserted below.
    settings = verify_settings(cube_sql_port=cube_sql.port, cube_sql_user=cube_sql.user, cube_sql_password=cube_sql.password,
                               verify_freshness_target_seconds=1)
    c = Context(lake=ctx.lake, settings=settings, state=ctx.state)
    fill_orders(cube_sql, amounts)
    assert "MEASURE(count)" in CUBE_SQL
    result = check_cube_sql(c)
    assert result.status == "pass" and result.figure.startswith(f"{len(amounts)} orders"), result
    fill_orders(cube_sql, [*amounts, 5])  # one order too many
    with pytest.raises(CheckFailed, match=f"{len(amounts) + 1} orders"):
        check_cube_sql(c)
    wrong = Context(lake=ctx.lake, settings=verify_settings(cube_sql_port=cube_sql.port, cube_sql_password="wrong"), state=ctx.state)
    with pytest.raises(CheckFailed, match="cannot connect") as failed:
        check_cube_sql(wrong)
    assert "CUBEJS_SQL_PASSWORD" in failed.value.hint
    down = Context(lake=ctx.lake, settings=verify_settings(cube_sql_port=free_port()), state=ctx.state)
    assert run(check_cube_sql, down).status == "fail"


# --- Marquez ------------------------------------------------------------------------------------


def marquez(ctx: Context, **knobs: object):  # noqa: ANN201
    fake = FakeMarquez(job_namespace="floe", dataset_namespace=lineage_dataset_namespace(ctx.lake),
                       warehouse=ctx.lake.catalog_warehouse, **knobs)
    return serve(fake)


def test_marquez_lineage(ctx: Context) -> None:
    with marquez(ctx) as url:
        c = Context(lake=ctx.lake, settings=verify_settings(marquez_url=url))
        assert check_marquez(c).figure == "5 jobs, 3 iceberg datasets, raw.orders → marts.fct_orders linked"
    with marquez(ctx, drop_edge_to_marts=True) as url:
        c = Context(lake=ctx.lake, settings=verify_settings(marquez_url=url))
        with pytest.raises(CheckFailed, match=r"no lineage path warehouse\.raw\.orders → warehouse\.marts\.fct_orders"):
            check_marquez(c)
    with marquez(ctx, missing_job="dbt.fct_orders") as url:
        c = Context(lake=ctx.lake, settings=verify_settings(marquez_url=url))
        with pytest.raises(CheckFailed, match="missing job dbt.fct_orders"):
            check_marquez(c)
    off = Context(lake=ctx.lake, settings=verify_settings(marquez_url=""))
    assert (check_marquez(off).status, check_marquez(off).figure) == ("skip", "Marquez is off (FLOE_MARQUEZ_URL unset)")
    down = Context(lake=ctx.lake, settings=verify_settings(marquez_url=f"http://127.0.0.1:{free_port()}"))
    result = run(check_marquez, down)
    assert result.status == "fail" and result.figure.startswith("cannot connect")


# --- Jaeger -------------------------------------------------------------------------------------


@contextlib.contextmanager
def jaeger(ctx: Context, cube_sdl: str, **knobs: object) -> Iterator[tuple[Context, FakeJaeger]]:
    """Jaeger's query API and a Cube whose received ``traceparent`` headers become Cube spans in it."""
    fake = FakeJaeger(service="floe-pipeline", **knobs)
    with serve(fake) as jaeger_url, serve(traced(FakeCube(totals=marts_totals(ctx), secret=SECRET, graphql_sdl=cube_sdl), fake)) as cube_url:
        settings = verify_settings(jaeger_url=jaeger_url, cube_api_url=cube_url, verify_trace_wait_seconds=2)
        yield Context(lake=ctx.lake, settings=settings), fake


def test_jaeger_traces(ctx: Context, cube_sdl: str) -> None:
    with jaeger(ctx, cube_sdl) as (c, fake):
        figure = check_jaeger(c).figure
        assert figure.startswith("trace a1b2c3d4 of run 0f1e2d3c: 7 spans, 3 dbt, 1 iceberg; Cube trace "), figure
        assert figure.endswith(": 2 floe-cube spans, 'GET /cubejs-api/v1/load' continues the client's span"), figure
        # The verifier's query carried a sampled W3C traceparent, a fresh trace each time.
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", fake.received[-1]), fake.received
        check_jaeger(c)
        assert fake.received[-1] != fake.received[-2]
        # With --trigger, the trace must be the triggered run's.
        c.state["triggered_run"] = "another-run"
        with pytest.raises(CheckFailed, match="no trace of run another-run"):
            check_jaeger(c)
        other = Context(lake=ctx.lake, settings=c.settings.model_copy(update={"jaeger_service": "floe-other"}))
        with pytest.raises(CheckFailed, match="service 'floe-other' has no traces"):
            check_jaeger(other)
    with jaeger(ctx, cube_sdl, dbt_spans=False) as (c, _):
        with pytest.raises(CheckFailed, match="4 spans, 0 dbt, 1 iceberg"):
            check_jaeger(c)
    with jaeger(ctx, cube_sdl, traces=False) as (c, _):
        with pytest.raises(CheckFailed, match="has no traces"):
            check_jaeger(c)
    assert check_jaeger(Context(lake=ctx.lake, settings=verify_settings())).status == "skip"
    down = Context(lake=ctx.lake, settings=verify_settings(jaeger_url=f"http://127.0.0.1:{free_port()}"))
    assert run(check_jaeger, down).figure.startswith("cannot connect")


def test_jaeger_traces_fail_without_a_cube_span(ctx: Context, cube_sdl: str) -> None:
    """The pipeline's trace is there, but Cube sent no span for the verifier's own query."""
    with jaeger(ctx, cube_sdl, cube_spans=False) as (c, fake):
        with pytest.raises(CheckFailed, match=r"no floe-cube span in trace [0-9a-f]{32} 2s after a Cube query carrying it") as failed:
            check_jaeger(c)
        assert "NODE_OPTIONS" in failed.value.hint and len(fake.received) == 1
    # Spans under another service name are not Cube's.
    with jaeger(ctx, cube_sdl, cube_service="floe-cube-refresh-worker") as (c, _):
        with pytest.raises(CheckFailed, match="no floe-cube span"):
            check_jaeger(c)


def test_jaeger_traces_fail_when_cube_does_not_continue_the_callers_trace(ctx: Context, cube_sdl: str) -> None:
    with jaeger(ctx, cube_sdl, cube_continues=False) as (c, _):
        with pytest.raises(CheckFailed, match="2 floe-cube spans, none a child of the client's span") as failed:
            check_jaeger(c)
        assert "OTEL_PROPAGATORS" in failed.value.hint
