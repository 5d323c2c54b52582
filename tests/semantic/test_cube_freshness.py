"""Fresh rollups: with the rollup definitions of demo/cube, a new marts snapshot reaches Cube within
the 60 s target, with no race against the schedule's clock.

Run with Cube 1.7.43's own schema compiler and DuckDB driver (tests/semantic/node) over real marts
that the demo pipeline builds on SeaweedFS, in ONE long-lived driver instance as the refresh worker
keeps it:

1. each rollup's refresh key (the SQL and `every` Cube derives from the model) is read;
2. nothing changes -> the key is the same (no needless rebuild);
3. new orders are appended and dbt builds the marts again (a new Iceberg snapshot) -> the same driver
   reads a NEW key for every rollup (DuckDB's attached catalog does not cache the old snapshot),
   and the rollup build SQL then returns the new totals;
4. the worst case from "dbt finished" to "Cube serves the new rollup" is the refresh worker's pass
   interval (cube.js) + the key's renewal threshold + the measured build time, and it is within 60 s.

What this replaces: the refresh worker's scheduling loop and Cube Store (which cannot be installed
here). The bound in 4 is therefore computed from Cube's own settings plus measured build times,
not observed end to end; `make verify --trigger` observes it on a cluster (cube.freshness).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from demo.ingest import append_orders
from demo.lakehouse.duckdb import connect
from demo.lakehouse.settings import LakehouseSettings
from tests.pipeline.conftest import marts_lakehouse, run_dbt

from .conftest import CUBE_DIR, NodeCube, floe_env

#: The plan's target: dbt finished -> Cube serves the new marts (issue 14).
FRESHNESS_TARGET_SECONDS = 60
ROLLUP_QUERIES = {
    "orders": {"measures": ["orders.count", "orders.total_amount"], "dimensions": ["orders.status"],
               "timeDimensions": [{"dimension": "orders.created_at", "granularity": "day", "dateRange": ["2000-01-01", "2100-01-01"]}]},
    "customers": {"measures": ["customers.count", "customers.total_lifetime_value"], "dimensions": ["customers.region"]},
    "products": {"measures": ["products.count", "products.revenue"], "dimensions": ["products.category"]},
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, extension_directory: str) -> Iterator[LakehouseSettings]:
    """Its own lakehouse: this module appends data, the session's marts stay as other tests expect."""
    with marts_lakehouse(tmp_path_factory, "freshness", extension_directory,
                         seed=11, n_customers=30, n_products=10, n_orders=120) as settings:
        yield settings


def rollups(cube: NodeCube) -> dict[str, dict]:
    out = {}
    for name, query in ROLLUP_QUERIES.items():
        answer = cube.call("pre_aggregations", query=query)
        assert answer["ok"], answer
        [out[name]] = answer["pre_aggregations"]
    return out


def keys(built: dict[str, dict]) -> dict[str, str]:
    return {name: json.dumps(r["refresh_key"], sort_keys=True) for name, r in built.items()}


def orders_in_rollup(rollup: dict) -> tuple[int, Decimal]:
    count = next(k for k in rollup["rows"][0] if k.endswith("__count"))
    amount = next(k for k in rollup["rows"][0] if k.endswith("__total_amount"))
    return (sum(int(r[count]) for r in rollup["rows"]), sum((Decimal(str(r[amount])) for r in rollup["rows"]), Decimal(0)).quantize(Decimal("0.01")))


def marts_orders(settings: LakehouseSettings) -> tuple[int, Decimal]:
    con = connect(settings)
    try:
        count, amount = con.execute(f'SELECT count(*), sum(amount) FROM lake."{settings.namespace_marts}".fct_orders').fetchone()
    finally:
        con.close()
    return int(count), Decimal(str(amount)).quantize(Decimal("0.01"))


def refresh_worker_pass_seconds(node: str) -> int:
    """cube.js's scheduledRefreshTimer as the refresh worker loads it (CUBEJS_REFRESH_WORKER=true)."""
    script = f"process.stdout.write(JSON.stringify(require({json.dumps(str(CUBE_DIR / 'cube.js'))}).scheduledRefreshTimer))"
    result = subprocess.run([node, "-e", script], env={"PATH": "", "CUBEJS_REFRESH_WORKER": "true"}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout))


def test_a_new_marts_snapshot_is_served_within_the_target(lake: LakehouseSettings, node: str, node_duckdb: Path, tmp_path: Path) -> None:
    cube = NodeCube(node, floe_env(lake))
    try:
        before = rollups(cube)
        # The marts as found (120 seeded orders, plus the other test's 5 if it ran first: both
        # append to this module's lakehouse, in either order).
        start = marts_orders(lake)
        assert start[0] in (120, 125) and orders_in_rollup(before["orders"]) == start
        # 2. Nothing new: the same key, so the refresh worker rebuilds nothing.
        assert keys(rollups(cube)) == keys(before)

        # 3. A generation run: new orders, then dbt builds the marts (a new snapshot of each mart).
        append_orders(lake, run_key="tick-1", n_orders=15, seed=12)
        build = run_dbt(lake, tmp_path / "dbt", "build")
        assert build.returncode == 0, build.output[-3000:]
        after = rollups(cube)  # the same driver instance, as the refresh worker's
        changed = {name for name in ROLLUP_QUERIES if keys(after)[name] != keys(before)[name]}
        assert changed == set(ROLLUP_QUERIES), f"refresh keys unchanged after a dbt build: {set(ROLLUP_QUERIES) - changed}"
        new = marts_orders(lake)
        assert new[0] == start[0] + 15 and orders_in_rollup(after["orders"]) == new  # the rebuilt rollup holds the new marts

        # 4. The worst case, from Cube's own settings and the measured builds.
        renewal = {name: r["refresh_key_options"]["renewalThreshold"] for name, r in after.items()}
        build_seconds = sum(r["build_ms"] for r in after.values()) / 1000
        worst = refresh_worker_pass_seconds(node) + max(renewal.values()) + build_seconds
        assert worst <= FRESHNESS_TARGET_SECONDS, (renewal, build_seconds, worst)
        print(f"worst case dbt finished -> rollup rebuilt: {refresh_worker_pass_seconds(node)} s pass + {max(renewal.values())} s key "
              f"renewal + {build_seconds:.1f} s builds = {worst:.1f} s (target {FRESHNESS_TARGET_SECONDS} s)")
    finally:
        cube.close()


def test_a_clock_refresh_key_would_miss_the_new_snapshot(lake: LakehouseSettings, node: str, node_duckdb: Path, tmp_path: Path) -> None:
    """The old model's `every: 5 minute` key is a bucket of now(): the same before and after a dbt
    build in the same 5 minutes, so the rollup kept the previous marts (what issue 14 observed)."""
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    for name in ("cube.js", "lakehouse.js"):
        (conf / name).write_text((CUBE_DIR / name).read_text())
    for path in (CUBE_DIR / "model").glob("*.yml"):
        text = path.read_text()
        start = text.index("        refresh_key:\n")
        (conf / "model" / path.name).write_text(text[:start] + "        refresh_key:\n          every: 5 minute\n")
    cube = NodeCube(node, floe_env(lake), conf_dir=conf)
    try:
        before = keys(rollups(cube))
        append_orders(lake, run_key="tick-clock", n_orders=5, seed=13)
        build = run_dbt(lake, tmp_path / "dbt", "build")
        assert build.returncode == 0, build.output[-3000:]
        after = rollups(cube)
        assert all("iceberg_snapshots" not in r["refresh_key_sql"] for r in after.values())
        # Unless the 5-minute boundary fell between the two reads, nothing tells Cube the data changed.
        if keys(after) != before:
            pytest.skip("a 5-minute boundary passed between the two reads; the point stands on the next run")
        assert orders_in_rollup(after["orders"]) == marts_orders(lake)  # the data did change...
        assert keys(after) == before  # ...and the clock key did not
    finally:
        cube.close()
