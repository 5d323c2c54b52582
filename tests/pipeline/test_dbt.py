"""Seed → dbt build → marts, end to end on the real lakehouse; values checked against the
generated data. Also: a failing dbt test fails the build; bad credentials fail clearly."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pydantic import SecretStr

from demo.generator import GeneratorState, generate_orders, generate_seed
from demo.generator.marts import MARTS
from demo.generator.schemas import ARROW_SCHEMAS
from demo.ingest import append_orders, catalog, seed_raw_tables
from demo.lakehouse.duckdb import connect
from demo.lakehouse.local import LocalLakehouse
from demo.lakehouse.maintenance import Compaction, TableFiles, compact_tables, table_files
from demo.lakehouse.settings import LakehouseSettings

from .conftest import DbtRun, isolated_settings, run_dbt

SIZES = {"n_customers": 60, "n_products": 18, "n_orders": 300}
SEED = 3
NOT_REVENUE = {"cancelled", "returned"}


def _expected_marts(tables: dict[str, pa.Table]) -> dict[str, object]:
    """The marts computed in plain Python from the generated rows."""
    category = {p["product_id"]: p["category"] for p in tables["products"].to_pylist()}
    region = {c["customer_id"]: c["region"] for c in tables["customers"].to_pylist()}
    lines_by_order: dict[int, list[dict]] = defaultdict(list)
    for line in tables["order_lines"].to_pylist():
        lines_by_order[line["order_id"]].append(line)
    fct, ltv, count_by_customer = {}, defaultdict(Decimal), defaultdict(int)
    daily: dict[tuple, Decimal] = defaultdict(Decimal)
    for order in tables["orders"].to_pylist():
        lines = lines_by_order[order["order_id"]]
        largest = min(lines, key=lambda line: (-line["line_amount"], line["line_number"]))
        amount = sum((line["line_amount"] for line in lines), Decimal(0))
        fct[order["order_id"]] = (
            order["customer_id"],
            region[order["customer_id"]],
            order["status"],
            category[largest["product_id"]],
            amount,
            order["created_at"],
        )
        count_by_customer[order["customer_id"]] += 1
        if order["status"] not in NOT_REVENUE:
            ltv[order["customer_id"]] += amount
            for line in lines:
                daily[(order["created_at"].date(), category[line["product_id"]])] += line["line_amount"]
    statuses = defaultdict(int)
    for order in tables["orders"].to_pylist():
        statuses[order["status"]] += 1
    return {
        "fct_orders": fct,
        "ltv": ltv,
        "orders_by_customer": count_by_customer,
        "daily": daily,
        "statuses": statuses,
    }


def _concat(*batches: dict[str, pa.Table]) -> dict[str, pa.Table]:
    names = set().union(*batches)
    return {name: pa.concat_tables([b[name] for b in batches if name in b]) for name in names}


def _check_marts(con: duckdb.DuckDBPyConnection, marts: str, tables: dict[str, pa.Table]) -> None:
    expected = _expected_marts(tables)
    rows = con.sql(
        f"SELECT order_id, customer_id, region, status, category, amount, created_at FROM {marts}.fct_orders"
    ).fetchall()
    assert {r[0]: r[1:] for r in rows} == expected["fct_orders"]
    assert len(rows) == tables["orders"].num_rows

    customers = con.sql(f"SELECT customer_id, lifetime_value, order_count FROM {marts}.dim_customers").fetchall()
    assert len(customers) == tables["customers"].num_rows
    for customer_id, lifetime_value, order_count in customers:
        assert lifetime_value == expected["ltv"].get(customer_id, Decimal("0.00")), customer_id
        assert order_count == expected["orders_by_customer"].get(customer_id, 0)

    daily = con.sql(f"SELECT order_date, category, revenue FROM {marts}.daily_revenue_by_category").fetchall()
    assert {(d, c): r for d, c, r in daily} == dict(expected["daily"])

    funnel = dict(con.sql(f"SELECT status, orders FROM {marts}.order_status_funnel").fetchall())
    assert funnel == {s: expected["statuses"].get(s, 0) for s in funnel}
    assert sum(funnel.values()) == tables["orders"].num_rows
    reached = dict(
        con.sql(f"SELECT status, orders_reached FROM {marts}.order_status_funnel WHERE is_happy_path").fetchall()
    )
    assert reached["placed"] == tables["orders"].num_rows
    assert reached["placed"] >= reached["paid"] >= reached["shipped"] >= reached["delivered"] > 0

    products = con.sql(f"SELECT count(*), sum(revenue) FROM {marts}.dim_products").fetchone()
    assert products == (tables["products"].num_rows, sum(expected["daily"].values()))


#: A DuckDB file in the module's dbt folder holding each mart's rows as the first build left them:
#: the other tests here append and rebuild, and test_seed_to_marts must not depend on running first.
FIRST_BUILD = "first_build.duckdb"


@pytest.fixture(scope="module")
def pipeline(
    lakehouse: LocalLakehouse, extension_directory: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[LakehouseSettings, Path, dict[str, pa.Table], DbtRun]:
    settings = isolated_settings(lakehouse, extension_directory)
    seed_raw_tables(settings, seed=SEED, run_key="seed", **SIZES)
    work = tmp_path_factory.mktemp("dbt")
    build = run_dbt(settings, work, "build")
    if build.returncode == 0:  # else test_seed_to_marts reports the build's output
        con = connect(settings)
        try:
            con.execute(f"ATTACH '{work / FIRST_BUILD}' AS first_build")
            for mart in MARTS:
                con.execute(f"CREATE TABLE first_build.{mart} AS FROM lake.{settings.namespace_marts}.{mart}")
        finally:
            con.close()
    return settings, work, generate_seed(SEED, run_key="seed", **SIZES), build


def test_seed_to_marts(pipeline) -> None:  # noqa: ANN001
    settings, work, seed, build = pipeline
    assert build.returncode == 0, build.output[-4000:]
    statuses = {r["unique_id"]: r["status"] for r in build.run_results["results"]}
    assert sum(1 for s in statuses.values() if s == "pass") >= 30  # the data tests ran
    assert {uid.split(".")[-1] for uid in statuses if uid.startswith("model.")} >= set(MARTS)

    # The rows as the first build wrote them, read through the catalog right after it.
    first_build = duckdb.connect(str(work / FIRST_BUILD), read_only=True)
    try:
        _check_marts(first_build, "first_build.main", seed)
    finally:
        first_build.close()

    con = connect(settings)
    marts = f"lake.{settings.namespace_marts}"

    # marts are Iceberg tables in the catalog; staging views are only in dbt's local DuckDB file
    tables_in_catalog = {t[1] for t in catalog(settings).list_tables(settings.namespace_marts)}
    assert tables_in_catalog == set(MARTS)
    for mart, columns in MARTS.items():
        described = [row[0] for row in con.sql(f"DESCRIBE {marts}.{mart}").fetchall()]
        assert described == list(columns), mart
    local = duckdb.connect(str(work / "dbt.duckdb"), read_only=True)
    views = {r[0] for r in local.sql("SELECT view_name FROM duckdb_views() WHERE schema_name = 'staging'").fetchall()}
    assert views == {"stg_customers", "stg_products", "stg_orders", "stg_order_lines"}


def test_append_then_rebuild_updates_marts_in_place(pipeline) -> None:  # noqa: ANN001
    settings, work, seed, _ = pipeline
    fct = catalog(settings).load_table((settings.namespace_marts, "fct_orders"))
    uuid_before = fct.metadata.table_uuid
    result = append_orders(settings, run_key="tick-1", n_orders=40)
    assert result.rows_written["orders"] == 40

    build = run_dbt(settings, work, "build")
    assert build.returncode == 0, build.output[-4000:]
    appended = generate_orders(GeneratorState.from_tables(seed), 40, run_key="tick-1")
    _check_marts(connect(settings), f"lake.{settings.namespace_marts}", _concat(seed, appended))
    # the steady-state rebuild replaced rows in one commit: same table, not dropped and re-created
    fct = catalog(settings).load_table((settings.namespace_marts, "fct_orders"))
    assert fct.metadata.table_uuid == uuid_before
    assert fct.current_snapshot().summary.operation.value in ("append", "overwrite")


def _mart_rows(settings: LakehouseSettings) -> dict[str, list[tuple]]:
    con = connect(settings)
    try:
        return {name: con.sql(f"FROM lake.{settings.namespace_marts}.{name} ORDER BY ALL").fetchall() for name in MARTS}
    finally:
        con.close()


def test_rebuilt_marts_compact_to_one_file_and_one_snapshot(pipeline) -> None:  # noqa: ANN001
    """What the Dagster step does after each build (demo.orchestration.dbt.compact_built_tables), over
    two rebuilds: without it fct_orders held 3 then 5 files, as many snapshots, and so on."""
    from demo.orchestration.dbt import built_iceberg_tables, dbt_artifacts

    settings, work, _, _ = pipeline
    cat = catalog(settings)
    marts = [(settings.namespace_marts, name) for name in MARTS]
    for _rebuild in range(2):
        build = run_dbt(settings, work, "build")
        assert build.returncode == 0, build.output[-4000:]
        artifacts = dbt_artifacts(work / "target")
        assert artifacts is not None
        assert sorted(built_iceberg_tables(artifacts)) == sorted(marts)
        rows = _mart_rows(settings)
        # DuckDB replaced each mart's rows with a position-delete file beside the old data file.
        left_by_dbt = {mart: table_files(cat.load_table(mart)) for mart in marts}
        assert all(files.delete_files >= 1 and files.data_files >= 2 for files in left_by_dbt.values()), left_by_dbt

        results = compact_tables(cat, marts, retain=timedelta(0))
        for mart, result in results.items():
            assert isinstance(result, Compaction), (mart, result)
            assert result.rewritten
            assert result.after == TableFiles(data_files=1, delete_files=0, snapshots=1, rows=len(rows[mart[1]]))
        assert _mart_rows(settings) == rows


def test_failing_data_test_fails_the_build(lakehouse: LocalLakehouse, extension_directory: str, tmp_path: Path) -> None:
    settings = isolated_settings(lakehouse, extension_directory)
    seed_raw_tables(settings, seed=SEED, run_key="seed", n_customers=10, n_products=6, n_orders=20)
    orders = catalog(settings).load_table((settings.namespace_raw, "orders"))
    row = generate_seed(SEED, run_key="bad", n_customers=10, n_products=6, n_orders=20)["orders"].to_pylist()[0]
    row.update(order_id=999, customer_id=424242)  # no such customer
    orders.append(pa.Table.from_pylist([row], schema=ARROW_SCHEMAS["orders"]))

    build = run_dbt(settings, tmp_path, "build")
    assert build.returncode == 1
    failed = build.failed_nodes()
    assert any("relationships_raw_orders_customer_id" in node for node in failed), failed
    assert "FAIL" in build.output
    # the marts downstream of the failing source test were skipped, not built on bad data
    statuses = {r["unique_id"]: r["status"] for r in build.run_results["results"]}
    assert statuses["model.floe.fct_orders"] == "skipped"


def test_bad_credentials_fail_the_build_clearly(
    lakehouse: LocalLakehouse, extension_directory: str, tmp_path: Path
) -> None:
    settings = isolated_settings(lakehouse, extension_directory).model_copy(
        update={"catalog_client_secret": SecretStr("wrong-secret")}
    )
    build = run_dbt(settings, tmp_path, "build")
    assert build.returncode != 0
    assert "cannot attach Iceberg catalog" in build.output
    assert settings.catalog_client_id in build.output and "wrong-secret" not in build.output
