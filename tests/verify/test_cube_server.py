"""The verifier's Cube REST and GraphQL checks against Cube 1.7.43's own server code from npm
(server-core + api-gateway on express, tests/semantic/node/cube_server.js) serving demo/cube over real
marts that the demo pipeline built on SeaweedFS, with Cube's own refresh scheduler rebuilding the
rollups on our refresh keys.

What runs is Cube's: option handling of our cube.js, the schema compiler, query normalisation and
planning (JS planner), pre-aggregation matching, building and refreshing (RefreshScheduler, refresh keys
from demo/cube/model), the DuckDB driver with our lakehouse attach, the REST handlers, the GraphQL
schema and resolvers (express-graphql), JWT checking. What is replaced (cube_server.js says why): the
native result transform (alias -> member names), the native logger and Jinja hooks, Cube Store
(rollups are built in the source DuckDB: ``external: false``), the Tesseract planner.

Shown: the deploy's data phase reads the rollup's and the marts' totals from it as it would on a
cluster; cube.rest and cube.graphql pass with totals equal to the marts; they fail on a wrong total (a
model whose measure is off); a rollup behind the marts fails when it outlives the freshness target
and passes once Cube's refresh scheduler rebuilt it (measured lag within 60 s); cube.preaggregation
fails on a rollup that is not in Cube Store (``external: false`` — the only kind that can be built
here), though Cube names it in ``usedPreAggregations``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.generator.marts import MARTS
from demo.ingest import append_orders, catalog
from demo.lakehouse.duckdb import install_extensions
from demo.lakehouse.maintenance import Compaction, compact_tables
from demo.lakehouse.settings import LakehouseSettings
from demo.processes import stop_process_group
from demo.verify.checks import (
    Context,
    check_cube_graphql,
    check_cube_preaggregation,
    check_cube_rest,
    cube_get,
    cube_headers,
    marts_totals,
    ROLLUP_QUERY,
)
from demo.verify.runner import CheckFailed
from floe.deploy import data as deploy_data
from tests.pipeline.conftest import marts_lakehouse, run_dbt, settings_env
from tests.support.cube_graphql import CUBE_DIR, NODE_DIR, unavailable
from tests.verify.conftest import verify_settings

SECRET = "floe-test-cube-secret"
#: A copy of demo/cube for Cube's server leaves out the OpenTelemetry SDK's packages (370 MB): Cube
#: reads its config and model; the SDK is preloaded in the pods only (tests/semantic/test_cube_tracing.py).
NOT_READ_BY_CUBE = shutil.ignore_patterns("node_modules")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LakehouseSettings]:
    """Its own lakehouse: the stale-rollup test appends a generation run."""
    extensions = install_extensions(str(tmp_path_factory.mktemp("cube-server-extensions")))
    with marts_lakehouse(tmp_path_factory, "cube-server", extensions,
                         seed=21, n_customers=30, n_products=10, n_orders=150) as settings:
        yield settings


@contextlib.contextmanager
def cube_server(lake: LakehouseSettings, log: Path, conf_dir: Path = CUBE_DIR) -> Iterator[str]:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "@cubejs-backend" / "server-core").exists():
        unavailable("node or Cube's npm packages are missing")
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(log.parent), "NODE_PATH": str(NODE_DIR / "node_modules"),
        **settings_env(lake),
        # As constructs/cube.py sets them for the pods ...
        "NODE_ENV": "production", "CUBEJS_DB_TYPE": "duckdb", "CUBEJS_API_SECRET": SECRET, "CUBEJS_TELEMETRY": "false",
        # ... one process being API and refresh worker, and what cannot run here (see cube_server.js).
        "CUBEJS_REFRESH_WORKER": "true", "CUBEJS_EXTERNAL_DEFAULT": "false", "CUBEJS_CACHE_AND_QUEUE_DRIVER": "memory",
        "CUBEJS_TESSERACT_SQL_PLANNER": "false",
    }
    with log.open("w") as out:
        process = subprocess.Popen([node, str(NODE_DIR / "cube_server.js")], cwd=conf_dir, env=env, stdout=subprocess.PIPE,
                                   stderr=out, text=True, start_new_session=True)
        try:
            line = process.stdout.readline() if process.stdout else ""
            assert line.startswith("PORT "), f"Cube's server did not start: {line!r}\n{log.read_text()[-3000:]}"
            yield f"http://127.0.0.1:{int(line.split()[1])}"
        finally:
            # Cube waits for its refresh work to drain on SIGTERM (10 s seen); nothing here needs that.
            stop_process_group(process, timeout=2)


def context(lake: LakehouseSettings, url: str, **settings: object) -> Context:
    values = {"cube_api_url": url, "cube_api_secret": SECRET, "verify_cube_wait_seconds": 120, "verify_freshness_target_seconds": 60, **settings}
    return Context(lake=lake, settings=verify_settings(**values), settle_seconds=0, poll_seconds=0.5)


def test_cube_checks_on_cubes_own_server(lake: LakehouseSettings, tmp_path: Path) -> None:
    with cube_server(lake, tmp_path / "cube.log") as url:
        ctx = context(lake, url)
        try:
            rest = check_cube_rest(ctx)
            assert rest.figure.startswith("3 cubes") and rest.figure.endswith("totals equal the marts"), rest
            assert check_cube_graphql(ctx).status == "pass"
            # The previous verifier's camelCase document, as the real server answers it.
            refused = ctx.http.post(f"{url}/cubejs-api/graphql", json={"query": "{ cube { orders { count totalAmount } } }"},
                                    headers=cube_headers(ctx))
            assert refused.status_code == 400 and refused.json()["errors"][0]["message"] == (
                'Cannot query field "totalAmount" on type "OrdersMembers". Did you mean "total_amount"?')
            # The rollup serves the query, but from DuckDB, not Cube Store: Cube says so, the check refuses it.
            answer = cube_get(ctx, "load", ROLLUP_QUERY)
            used = [u.get("preAggregationId") for u in (answer.get("usedPreAggregations") or {}).values()]
            assert answer["external"] is False and used == ["orders.orders_by_day"], answer.get("usedPreAggregations")
            with pytest.raises(CheckFailed, match=r"used \['orders.orders_by_day'\], external=False") as failed:
                check_cube_preaggregation(ctx)
            assert "in Cube Store (external: true)" in failed.value.hint
            # The deploy's data phase asks Cube the same way (floe/deploy/data.py): its rollup query is served
            # by the rollup, its marts query (a member no rollup holds) is not, and both give the marts' totals.
            t = marts_totals(ctx)
            source = deploy_data.HttpSource(ctx.http, "http://127.0.0.1:9", url, cube_headers(ctx)["Authorization"], launcher=str)
            assert source.cube_totals() == ((t.orders, t.amount), (t.orders, t.amount))
            assert "usedPreAggregations" not in cube_get(ctx, "load", deploy_data.MARTS_QUERY)
            assert cube_get(ctx, "load", deploy_data.ROLLUP_QUERY).get("usedPreAggregations")
        finally:
            ctx.http.close()


def test_a_wrong_total_fails(lake: LakehouseSettings, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CUBE_DIR, conf, ignore=NOT_READ_BY_CUBE)
    orders = conf / "model" / "orders.yml"
    orders.write_text(orders.read_text().replace("        sql: amount\n", "        sql: amount + 1\n", 1))
    with cube_server(lake, tmp_path / "cube.log", conf) as url:
        ctx = context(lake, url, verify_freshness_target_seconds=2)
        try:
            t = marts_totals(ctx)
            with pytest.raises(CheckFailed, match=rf"orders.total_amount {t.amount + t.orders}(\.00)? ≠ marts {t.amount}"):
                check_cube_rest(ctx)
            with pytest.raises(CheckFailed, match=rf"≠ marts {t.amount}"):
                check_cube_graphql(ctx)
        finally:
            ctx.http.close()


def test_a_stale_rollup_fails(lake: LakehouseSettings, tmp_path: Path) -> None:
    """A rollup behind the marts fails once it outlives the freshness target. Deterministic: in this copy
    of the model the orders rollup's refresh key never changes, so Cube keeps the old rollup (with the
    real keys, Cube may already have rebuilt it while dbt was still running its tests)."""
    conf = tmp_path / "conf"
    shutil.copytree(CUBE_DIR, conf, ignore=NOT_READ_BY_CUBE)
    orders = conf / "model" / "orders.yml"
    key = "sql: SELECT max_by(snapshot_id, sequence_number) FROM iceberg_snapshots(lake.marts.fct_orders)"
    assert key in orders.read_text()
    orders.write_text(orders.read_text().replace(key, "sql: SELECT 1"))
    with cube_server(lake, tmp_path / "cube.log", conf) as url:
        ctx = context(lake, url)
        try:
            assert check_cube_rest(ctx).status == "pass"  # rollups built for the current marts
            append_orders(lake, run_key="tick-stale", n_orders=20, seed=22)
            build = run_dbt(lake, tmp_path / "dbt", "build")
            assert build.returncode == 0, build.output[-3000:]
            stale = Context(lake=lake, settings=ctx.settings.model_copy(update={"verify_freshness_target_seconds": 1.0}),
                            settle_seconds=0, poll_seconds=0.5)
            try:
                with pytest.raises(CheckFailed, match="≠ marts") as failed:
                    check_cube_rest(stale)
                assert "stale rollup" in failed.value.hint
            finally:
                stale.http.close()
        finally:
            ctx.http.close()


def test_cubes_refresh_serves_new_marts_within_the_target(lake: LakehouseSettings, tmp_path: Path) -> None:
    """With the model's own refresh keys, Cube's refresh scheduler serves a new marts snapshot within 60 s
    of dbt and the compaction finishing (it may do so before dbt has finished its tests: lag 0)."""
    with cube_server(lake, tmp_path / "cube.log") as url:
        ctx = context(lake, url)
        try:
            assert check_cube_rest(ctx).status == "pass"  # rollups built for the current marts
            append_orders(lake, run_key="tick-fresh", n_orders=20, seed=23)
            build = run_dbt(lake, tmp_path / "dbt", "build")
            assert build.returncode == 0, build.output[-3000:]
            # As the Dagster step does after the build: the marts' history becomes one new snapshot.
            marts = [(lake.namespace_marts, name) for name in MARTS]
            compacted = compact_tables(catalog(lake), marts, retain=lake.marts_snapshot_retention)
            assert all(isinstance(c, Compaction) and c.rewritten for c in compacted.values()), compacted
            finished = time.monotonic()
            fresh = context(lake, url)  # reads the new marts; retries up to the 60 s target
            try:
                result = check_cube_rest(fresh)
            finally:
                fresh.http.close()
            lag = time.monotonic() - finished
            assert result.status == "pass" and lag <= 60, lag
            print(f"freshness lag on Cube's own refresh scheduler: {lag:.1f}s (target 60 s)")
        finally:
            ctx.http.close()
