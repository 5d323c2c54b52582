"""cube.js on a real lakehouse whose marts the pipeline built (seed + dbt build):

* the statements cube.js computes attach the catalog in Python's DuckDB 1.5.5 and every measure,
  dimension, join and pre-aggregation of the data model runs on the marts with sane results;
* Cube 1.7.43's own schema compiler compiles the model; the SQL Cube's DuckDB dialect generates for
  queries over every member, and the rollup build SQL the refresh worker sends, run through
  cube.js's driver (Cube's real DuckDBDriver on @duckdb/node-api 1.5.5-r.5);
* through that driver, a query made while the catalog is down fails, and the next query -- on the
  SAME driver instance -- attaches the catalog and succeeds (Cube's initSql would have stayed broken
  until a restart);
* Python's and Cube's DuckDB are the same version and platform, so the shipped extension files fit.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit


import duckdb
import pytest

from demo.lakehouse.settings import LakehouseSettings

from .conftest import NodeCube, TcpForwarder, floe_env, free_port
from .model import GRANULARITIES, dimension_sql, from_clause, load_cubes, measure_sql, render
from .test_cube_js import js_statements

pytestmark = pytest.mark.usefixtures("node_duckdb")


@pytest.fixture(scope="module")
def con(marts_settings: LakehouseSettings, node: str, node_duckdb) -> duckdb.DuckDBPyConnection:  # noqa: ANN001
    """Python DuckDB 1.5.5 running exactly the statements cube.js sends."""
    connection = duckdb.connect()
    for statement in js_statements(node, floe_env(marts_settings)):
        connection.execute(statement)
    return connection


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchone()[0]


def test_every_dimension_runs_on_the_marts(con: duckdb.DuckDBPyConnection) -> None:
    cubes = load_cubes()
    for cube in cubes.values():
        rows = scalar(con, f"SELECT count(*) FROM {from_clause(cube)}")
        assert rows > 0, f"{cube['sql_table']} is empty"
        for dimension in cube["dimensions"]:
            sql = dimension_sql(cube, dimension, cubes)
            if dimension["type"] == "time":
                for granularity in GRANULARITIES:
                    assert scalar(con, f"SELECT count(DISTINCT date_trunc('{granularity}', {sql})) FROM {from_clause(cube)}") > 0
            else:
                non_null = scalar(con, f"SELECT count({sql}) FROM {from_clause(cube)}")
                assert non_null > 0, f"{cube['name']}.{dimension['name']} is always null"
            if dimension.get("primary_key"):
                assert scalar(con, f"SELECT count(DISTINCT {sql}) FROM {from_clause(cube)}") == rows


def test_every_measure_runs_on_the_marts(con: duckdb.DuckDBPyConnection) -> None:
    cubes = load_cubes()
    for cube in cubes.values():
        for measure in cube["measures"]:
            value = scalar(con, f"SELECT {measure_sql(cube, measure, cubes)} FROM {from_clause(cube)}")
            assert value is not None and value > 0, f"{cube['name']}.{measure['name']} = {value}"


def test_orders_measures_match_the_mart(con: duckdb.DuckDBPyConnection, marts_settings: LakehouseSettings) -> None:
    cubes = load_cubes()
    orders = cubes["orders"]
    measures = {m["name"]: measure_sql(orders, m, cubes) for m in orders["measures"]}
    count, total, aov = con.execute(
        f"SELECT {measures['count']}, {measures['total_amount']}, {measures['average_order_value']} FROM {from_clause(orders)}"
    ).fetchone()
    table = f"lake.{marts_settings.namespace_marts}.fct_orders"
    assert count == scalar(con, f"SELECT count(*) FROM {table}") == 200
    assert total == scalar(con, f"SELECT sum(amount) FROM {table}")
    assert Decimal(str(aov)).quantize(Decimal("0.01")) == (total / count).quantize(Decimal("0.01"))


def test_joins_match_every_row(con: duckdb.DuckDBPyConnection) -> None:
    cubes = load_cubes()
    joined = 0
    for cube in cubes.values():
        for join in cube.get("joins", []):
            target = cubes[join["name"]]
            on = render(cube, join["sql"], cubes)
            inner = scalar(con, f"SELECT count(*) FROM {from_clause(cube)} JOIN {from_clause(target)} ON {on}")
            assert inner == scalar(con, f"SELECT count(*) FROM {from_clause(cube)}"), f"{cube['name']} -> {join['name']}"
            joined += 1
    assert joined


def test_pre_aggregations_run_and_roll_up_to_the_totals(con: duckdb.DuckDBPyConnection) -> None:
    cubes = load_cubes()
    for cube in cubes.values():
        measures = {m["name"]: m for m in cube["measures"]}
        dimensions = {d["name"]: d for d in cube["dimensions"]}
        for p in cube.get("pre_aggregations", []):
            columns = [dimension_sql(cube, dimensions[d], cubes) for d in p.get("dimensions", [])]
            if "time_dimension" in p:
                columns.append(f"date_trunc('{p['granularity']}', {dimension_sql(cube, dimensions[p['time_dimension']], cubes)})")
            aggregates = [f"{measure_sql(cube, measures[m], cubes)} AS m{i}" for i, m in enumerate(p["measures"])]
            group_by = f" GROUP BY {', '.join(columns)}" if columns else ""
            rollup = f"SELECT {', '.join([*columns, *aggregates])} FROM {from_clause(cube)}{group_by}"
            assert con.execute(rollup).fetchall(), p["name"]
            # Additive measures: the rollup's rows sum back to the unaggregated total.
            for i, name in enumerate(p["measures"]):
                assert measures[name]["type"] in ("count", "sum"), f"{p['name']}: {name} is not additive"
                total = scalar(con, f"SELECT {measure_sql(cube, measures[name], cubes)} FROM {from_clause(cube)}")
                assert scalar(con, f"SELECT sum(m{i}) FROM ({rollup})") == total


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def test_driver_fails_while_catalog_is_down_then_recovers_without_restart(
    marts_settings: LakehouseSettings, node: str
) -> None:
    catalog = urlsplit(marts_settings.catalog_uri)
    port = free_port()
    forwarder = TcpForwarder(port, (catalog.hostname, catalog.port))
    # The catalog (and its OAuth2 endpoint) reachable only through a port nobody listens on yet.
    settings = marts_settings.model_copy(
        update={"catalog_uri": _via(marts_settings.catalog_uri, port), "catalog_oauth2_uri": _via(marts_settings.catalog_oauth2_uri, port)}
    )
    cube = NodeCube(node, {**floe_env(settings), "CUBEJS_DB_DUCKDB_MEMORY_LIMIT": "512MB"})
    table = f"lake.{settings.namespace_marts}.fct_orders"
    try:
        first = cube.call("query", sql=f"SELECT count(*) AS n FROM {table}")
        assert not first["ok"]
        assert "lakehouse catalog not attached" in first["error"] and "the next query retries" in first["error"]
        assert settings.catalog_client_secret.get_secret_value() not in first["error"]
        again = cube.call("query", sql="SELECT 1 AS one")  # still down: still fails, never a half-initialised success
        assert not again["ok"]

        forwarder.start()  # "Polaris is ready now"
        recovered = cube.call("query", sql=f"SELECT count(*) AS n FROM {table}")
        assert recovered["ok"], recovered
        assert [int(r["n"]) for r in recovered["rows"]] == [200]
        # stream() opens a new DuckDB connection: the attached catalog and secrets are instance-wide.
        streamed = cube.call("stream", sql=f"SELECT count(DISTINCT status) AS n FROM {table}")
        assert streamed["ok"] and int(streamed["rows"][0]["n"]) > 1
        limit = cube.call("query", sql="SELECT current_setting('memory_limit') AS m")
        assert limit["ok"] and limit["rows"][0]["m"].startswith("488")  # 512MB as MiB, set by the driver
    finally:
        cube.close()
        forwarder.close()


def test_cube_duckdb_is_pythons_version_and_platform(node: str, marts_settings: LakehouseSettings) -> None:
    """The extension files shipped from the project image (built by Python's DuckDB) load in Cube's."""
    cube = NodeCube(node, floe_env(marts_settings))
    try:
        node_side = cube.call("query", sql="SELECT version() AS v, (SELECT platform FROM pragma_platform()) AS p")
        assert node_side["ok"], node_side
        loaded = cube.call("query", sql="SELECT extension_name FROM duckdb_extensions() WHERE loaded ORDER BY 1")
        assert {"avro", "httpfs", "iceberg"} <= {r["extension_name"] for r in loaded["rows"]}
    finally:
        cube.close()
    python_side = duckdb.connect().execute("SELECT version(), (SELECT platform FROM pragma_platform())").fetchone()
    assert (node_side["rows"][0]["v"], node_side["rows"][0]["p"]) == python_side


@pytest.fixture(scope="module")
def cube(marts_settings: LakehouseSettings, node: str) -> NodeCube:
    """cube.js + the data model, loaded once for the module (Cube's compiler, Cube's driver)."""
    process = NodeCube(node, floe_env(marts_settings))
    yield process
    process.close()


def test_cube_compiles_the_model_with_rollups_in_cube_store(cube: NodeCube) -> None:
    model = cube.call("model")
    assert model["ok"], model
    assert model["cubes"] == ["customers", "orders", "products"]
    assert {p["id"] for p in model["pre_aggregations"]} == {
        "orders.orders_by_day", "customers.customers_by_region", "products.products_by_category"
    }
    for p in model["pre_aggregations"]:
        # Checked every 10 s; the compiled `sql` is a function (not in JSON): the rollup build test
        # below runs it on the marts.
        assert p["refresh_key"] == {"every": "10 second"} and p["external"] is True, p


def test_cube_generated_sql_for_every_member_runs_on_the_marts(cube: NodeCube) -> None:
    cubes = load_cubes()
    for name, definition in cubes.items():
        measures = [f"{name}.{m['name']}" for m in definition["measures"]]
        total = cube.call("cube", query={"measures": measures})
        assert total["ok"], total
        assert all(v is not None and float(v) > 0 for v in total["rows"][0].values()), total
        for dimension in definition["dimensions"]:
            member = f"{name}.{dimension['name']}"
            if dimension["type"] == "time":
                for granularity in GRANULARITIES:
                    answer = cube.call("cube", query={"measures": measures, "timeDimensions": [{"dimension": member, "granularity": granularity}]})
                    assert answer["ok"] and answer["rows"], (member, granularity, answer)
            else:
                answer = cube.call("cube", query={"measures": measures[:1], "dimensions": [member]})
                assert answer["ok"] and answer["rows"], (member, answer)
                # count by any dimension sums back to the total count
                assert sum(int(r[measures[0].replace(".", "__")]) for r in answer["rows"]) == int(total["rows"][0][measures[0].replace(".", "__")])
    joined = cube.call("cube", query={"measures": ["orders.count", "orders.average_order_value"], "dimensions": ["customers.segment"]})
    assert joined["ok"], joined
    assert 'JOIN lake.marts.dim_customers AS "customers"' in joined["sql"]
    assert sum(int(r["orders__count"]) for r in joined["rows"]) == 200


def test_rollup_build_sql_of_the_refresh_worker_runs_on_the_marts(cube: NodeCube) -> None:
    queries = {
        "orders": {"measures": ["orders.count", "orders.total_amount"], "dimensions": ["orders.status"],
                   "timeDimensions": [{"dimension": "orders.created_at", "granularity": "month", "dateRange": ["2000-01-01", "2100-01-01"]}]},
        "customers": {"measures": ["customers.count"], "dimensions": ["customers.region"]},
        "products": {"measures": ["products.revenue"], "dimensions": ["products.category"]},
    }
    for name, query in queries.items():
        answer = cube.call("pre_aggregations", query=query)
        assert answer["ok"], answer
        [rollup] = answer["pre_aggregations"]
        assert rollup["external"] is True  # built into Cube Store
        assert rollup["rows"], rollup["table"]
        # The data-driven refresh key runs on the marts and names their current snapshot.
        mart = {"orders": "fct_orders", "customers": "dim_customers", "products": "dim_products"}[name]
        assert f"iceberg_snapshots(lake.marts.{mart})" in rollup["refresh_key_sql"], rollup["refresh_key_sql"]
        assert rollup["refresh_key_options"]["renewalThreshold"] == 10, rollup["refresh_key_options"]
        [[snapshot]] = [list(row.values()) for row in rollup["refresh_key"]]
        assert snapshot is not None, rollup["refresh_key"]
        count_column = next((k for k in rollup["rows"][0] if k.endswith("__count")), None)
        if name == "orders":
            assert sum(int(r[count_column]) for r in rollup["rows"]) == 200
