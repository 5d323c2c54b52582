"""Benchmark of the demo data path: ``.venv/bin/python -m bench.pipeline [--json]``.

Measures, on a fresh embedded SeaweedFS lakehouse in a temporary folder:

* **empty lakehouse → queryable marts**: create raw tables + write the seed (pyiceberg) + ``dbt build``
  (real CLI, all data tests) + first query on ``marts.fct_orders`` — the target is under 60 s;
* **generation throughput**: orders (+ lines) generated per second, in memory;
* **append throughput**: an append of new orders through the REST catalog, end to end;
* **Cube-shaped queries**: p50/p95 latency of the DuckDB SQL the Cube model issues against the marts
  (through the REST catalog, one long-lived connection, as Cube's DuckDB driver keeps one).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from demo.generator import GeneratorState, generate_orders, generate_seed
from demo.ingest import append_orders, seed_raw_tables, wait_for_catalog
from demo.lakehouse.duckdb import connect
from demo.lakehouse.local import local_lakehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "demo" / "dbt"

#: What Cube's Orders/Customers/Products cubes send (measures count, sum, avg; dimensions status,
#: category, region, created_at by day/week/month). `{m}` is the marts schema.
CUBE_QUERIES: dict[str, str] = {
    "orders_by_status": "SELECT status, count(*), sum(amount), avg(amount) FROM {m}.fct_orders "
    "GROUP BY 1 ORDER BY 2 DESC",
    "orders_by_category_week": "SELECT date_trunc('week', created_at) AS week, category, count(*), sum(amount) "
    "FROM {m}.fct_orders GROUP BY 1, 2 ORDER BY 1, 2",
    "orders_by_region_month": "SELECT date_trunc('month', created_at) AS month, region, count(*), sum(amount), "
    "avg(amount) FROM {m}.fct_orders WHERE created_at >= TIMESTAMP '2025-10-01' GROUP BY 1, 2 ORDER BY 1, 2",
    "orders_by_day_filtered": "SELECT date_trunc('day', created_at) AS day, count(*), sum(amount) "
    "FROM {m}.fct_orders WHERE status IN ('paid', 'shipped', 'delivered') AND category = 'electronics' "
    "GROUP BY 1 ORDER BY 1",
    "daily_revenue_30d": "SELECT order_date, category, revenue FROM {m}.daily_revenue_by_category "
    "WHERE order_date >= DATE '2025-12-01' ORDER BY 1, 2",
    "top_customers": "SELECT customer_name, region, lifetime_value FROM {m}.dim_customers "
    "ORDER BY lifetime_value DESC LIMIT 10",
    "products_by_category": "SELECT category, sum(units_sold), sum(revenue) FROM {m}.dim_products GROUP BY 1",
    "status_funnel": "SELECT status, orders, orders_reached FROM {m}.order_status_funnel ORDER BY funnel_step",
}


def _percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def run(iterations: int = 30, append_size: int = 5000, generate_size: int = 20000) -> dict[str, object]:
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="floe-bench-") as tmp, local_lakehouse(Path(tmp) / "lake") as lake:
        settings = lake.settings.model_copy(update={"duckdb_extension_directory": str(Path(tmp) / "ext")})
        env = {
            **os.environ,
            **lake.env(),
            "FLOE_DUCKDB_EXTENSION_DIRECTORY": str(Path(tmp) / "ext"),
            "FLOE_DBT_DUCKDB_PATH": str(Path(tmp) / "dbt.duckdb"),
            "DBT_TARGET_PATH": str(Path(tmp) / "target"),
            "DBT_LOG_PATH": str(Path(tmp) / "logs"),
        }

        started = time.perf_counter()
        wait_for_catalog(settings)
        seeded = seed_raw_tables(settings, seed=42, run_key="seed")
        after_seed = time.perf_counter()
        build = subprocess.run(
            [
                str(Path(sys.executable).parent / "dbt"),
                "build",
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target",
                "local",
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if build.returncode != 0:
            raise RuntimeError("dbt build failed:\n" + build.stdout[-3000:] + build.stderr[-2000:])
        after_dbt = time.perf_counter()
        con = connect(settings)
        marts = f"lake.{settings.namespace_marts}"
        (orders_in_marts,) = con.sql(f"SELECT count(*) FROM {marts}.fct_orders").fetchone()  # type: ignore[misc]
        queryable = time.perf_counter()
        figures["empty_to_marts_s"] = round(queryable - started, 2)
        figures["seed_write_s"] = round(after_seed - started, 2)
        figures["dbt_build_s"] = round(after_dbt - after_seed, 2)
        figures["first_query_s"] = round(queryable - after_dbt, 2)
        figures["seed_rows"] = seeded.rows_written
        figures["orders_in_marts"] = orders_in_marts

        t = time.perf_counter()
        seed_tables = generate_seed(42)
        seed_s = time.perf_counter() - t
        state = GeneratorState.from_tables(seed_tables)
        t = time.perf_counter()
        batch = generate_orders(state, generate_size, run_key="bench")
        gen_s = time.perf_counter() - t
        figures["generate_orders_per_s"] = round(generate_size / gen_s)
        figures["generate_rows_per_s"] = round((batch["orders"].num_rows + batch["order_lines"].num_rows) / gen_s)
        figures["generate_seed_s"] = round(seed_s, 3)

        t = time.perf_counter()
        appended = append_orders(settings, run_key="bench-append", n_orders=append_size)
        append_s = time.perf_counter() - t
        figures["append_orders"] = appended.rows_written
        figures["append_s"] = round(append_s, 2)
        figures["append_orders_per_s"] = round(append_size / append_s)

        latencies: dict[str, list[float]] = {name: [] for name in CUBE_QUERIES}
        for _ in range(iterations):
            for name, sql in CUBE_QUERIES.items():
                t = time.perf_counter()
                con.sql(sql.format(m=marts)).fetchall()
                latencies[name].append((time.perf_counter() - t) * 1000)
        everything = [ms for samples in latencies.values() for ms in samples]
        figures["query_iterations"] = iterations
        figures["query_ms"] = {
            name: {"p50": round(_percentile(s, 50), 1), "p95": round(_percentile(s, 95), 1)}
            for name, s in latencies.items()
        }
        figures["query_ms_all"] = {
            "p50": round(_percentile(everything, 50), 1),
            "p95": round(_percentile(everything, 95), 1),
        }
        con.close()
    return figures


def main(
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
    iterations: int = typer.Option(30, help="runs of each Cube-shaped query"),
    append_size: int = typer.Option(5000, help="orders in the timed append"),
) -> None:
    """Run the benchmark on a fresh local lakehouse and print the figures."""
    figures = run(iterations=iterations, append_size=append_size)
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    console = Console()
    summary = Table("figure", "value", title="floe pipeline benchmark")
    for key, value in figures.items():
        if key != "query_ms":
            summary.add_row(key, str(value))
    console.print(summary)
    queries = Table("Cube-shaped query", "p50 ms", "p95 ms", title=f"{iterations} runs each, via the REST catalog")
    for name, q in figures["query_ms"].items():  # type: ignore[union-attr]
        queries.add_row(name, str(q["p50"]), str(q["p95"]))
    console.print(queries)


if __name__ == "__main__":
    typer.run(main)
