"""Raw Iceberg tables through the REST catalog: seed, appends, idempotency, counts CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from demo.generator import RAW_TABLES, GeneratorState, generate_orders, generate_seed
from demo.ingest import (
    RUN_KEY_PROPERTY,
    IngestError,
    append_orders,
    catalog,
    committed_run_keys,
    raw_table_counts,
    seed_raw_tables,
)
from demo.lakehouse.duckdb import connect
from demo.lakehouse.settings import LakehouseSettings

from .conftest import REPO_ROOT, settings_env

SMALL = {"n_customers": 30, "n_products": 12, "n_orders": 120}


def _table(settings: LakehouseSettings, name: str):
    return catalog(settings).load_table((settings.namespace_raw, name))


def test_counts_are_none_before_the_seed(settings: LakehouseSettings) -> None:
    assert raw_table_counts(settings) == dict.fromkeys(RAW_TABLES)


def test_seed_writes_the_generated_rows_once(settings: LakehouseSettings) -> None:
    expected = generate_seed(5, run_key="seed-1", **SMALL)
    result = seed_raw_tables(settings, seed=5, run_key="seed-1", **SMALL)
    assert result.rows_written == {name: expected[name].num_rows for name in RAW_TABLES}
    assert raw_table_counts(settings) == {name: expected[name].num_rows for name in RAW_TABLES}

    # the data read back equals the generated data (explicit schema: types survive the round trip)
    for name in RAW_TABLES:
        key = expected[name].schema.names[0]
        got = _table(settings, name).scan().to_arrow().sort_by(key)
        assert got.to_pylist() == expected[name].sort_by(key).to_pylist(), name
        assert committed_run_keys(_table(settings, name)) == {"seed-1"}

    again = seed_raw_tables(settings, seed=5, run_key="seed-1", **SMALL)
    assert again.skipped == RAW_TABLES and not again.wrote_anything
    other = seed_raw_tables(settings, seed=6, run_key="seed-2", **SMALL)
    assert other.skipped == RAW_TABLES
    assert all("already seeded" in w.skipped_reason for w in other.writes)
    assert raw_table_counts(settings)["orders"] == expected["orders"].num_rows


def test_append_is_idempotent_per_run_key(settings: LakehouseSettings) -> None:
    seed = generate_seed(5, run_key="seed", **SMALL)
    seed_raw_tables(settings, seed=5, run_key="seed", **SMALL)
    first = append_orders(settings, run_key="tick-1", n_orders=25)
    assert first.rows_written["orders"] == 25 and first.rows_written["order_lines"] > 0
    repeat = append_orders(settings, run_key="tick-1", n_orders=25)
    assert repeat.skipped == ("orders", "order_lines") and not repeat.wrote_anything
    second = append_orders(settings, run_key="tick-2", n_orders=10)
    assert second.rows_written["orders"] == 10

    expected_state = GeneratorState.from_tables(seed)
    tick1 = generate_orders(expected_state, 25, run_key="tick-1")
    tick2 = generate_orders(expected_state.advanced(tick1), 10, run_key="tick-2")
    counts = raw_table_counts(settings)
    assert counts["orders"] == seed["orders"].num_rows + 35
    assert (
        counts["order_lines"]
        == seed["order_lines"].num_rows + tick1["order_lines"].num_rows + tick2["order_lines"].num_rows
    )

    con = connect(settings)
    raw = f"lake.{settings.namespace_raw}"
    (dupes,) = con.sql(f"SELECT count(*) - count(DISTINCT order_id) FROM {raw}.orders").fetchone()
    (orphans,) = con.sql(
        f"SELECT count(*) FROM {raw}.order_lines l ANTI JOIN {raw}.orders o USING (order_id)"
    ).fetchone()
    (lineless,) = con.sql(
        f"SELECT count(*) FROM {raw}.orders o ANTI JOIN {raw}.order_lines l USING (order_id)"
    ).fetchone()
    (bad_customers,) = con.sql(
        f"SELECT count(*) FROM {raw}.orders o ANTI JOIN {raw}.customers c USING (customer_id)"
    ).fetchone()
    assert (dupes, orphans, lineless, bad_customers) == (0, 0, 0, 0)
    got_tick2 = con.sql(
        f"SELECT order_id, customer_id, status, created_at FROM {raw}.orders WHERE _run_key = 'tick-2' ORDER BY 1"
    ).fetchall()
    assert got_tick2 == [
        (o["order_id"], o["customer_id"], o["status"], o["created_at"]) for o in tick2["orders"].to_pylist()
    ]
    summaries = [s.summary.additional_properties for s in _table(settings, "orders").metadata.snapshots]
    assert [s.get(RUN_KEY_PROPERTY) for s in summaries] == ["seed", "tick-1", "tick-2"]


def test_crash_between_tables_is_completed_by_the_retry(
    settings: LakehouseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_raw_tables(settings, seed=5, run_key="seed", **SMALL)
    import demo.ingest as ingest

    real_append = ingest._append

    def crash_on_lines(table, name, data, run_key, kind):  # noqa: ANN001
        if name == "order_lines":
            raise IngestError("simulated crash before order_lines")
        return real_append(table, name, data, run_key, kind)

    monkeypatch.setattr(ingest, "_append", crash_on_lines)
    lines_before = raw_table_counts(settings)["order_lines"]
    with pytest.raises(IngestError, match="simulated crash"):
        append_orders(settings, run_key="tick", n_orders=20)
    assert raw_table_counts(settings)["order_lines"] == lines_before  # untouched
    monkeypatch.setattr(ingest, "_append", real_append)

    retry = append_orders(settings, run_key="tick", n_orders=20)
    assert retry.skipped == ("orders",) and retry.rows_written["order_lines"] > 0
    con = connect(settings)
    raw = f"lake.{settings.namespace_raw}"
    (lineless,) = con.sql(
        f"SELECT count(*) FROM {raw}.orders o ANTI JOIN {raw}.order_lines l USING (order_id)"
    ).fetchone()
    (orphans,) = con.sql(
        f"SELECT count(*) FROM {raw}.order_lines l ANTI JOIN {raw}.orders o USING (order_id)"
    ).fetchone()
    assert (lineless, orphans) == (0, 0)
    assert raw_table_counts(settings)["orders"] == SMALL["n_orders"] + 20


def test_append_before_seed_fails_clearly(settings: LakehouseSettings) -> None:
    with pytest.raises(IngestError, match="seed first"):
        append_orders(settings, run_key="too-early", n_orders=3)


def test_bad_credentials_fail_clearly(settings: LakehouseSettings) -> None:
    wrong = settings.model_copy(update={"catalog_client_secret": SecretStr("wrong-secret")})
    with pytest.raises(IngestError) as error:
        seed_raw_tables(wrong, seed=1, run_key="nope")
    assert settings.catalog_uri in str(error.value) and settings.catalog_client_id in str(error.value)
    assert "wrong-secret" not in str(error.value)
    with pytest.raises(IngestError):
        raw_table_counts(wrong)


def test_counts_cli_prints_json(settings: LakehouseSettings) -> None:
    env = {"PATH": os.environ["PATH"], **settings_env(settings)}
    cli = [sys.executable, "-m", "demo.ingest", "counts", "--json"]
    before = subprocess.run(cli, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == dict.fromkeys(RAW_TABLES)
    seed_raw_tables(settings, seed=5, run_key="seed", **SMALL)
    after = subprocess.run(cli, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(after.stdout)["orders"] == SMALL["n_orders"]
    broken = {**env, "FLOE_CATALOG_CLIENT_SECRET": "wrong"}
    failed = subprocess.run(cli, cwd=REPO_ROOT, env=broken, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "error" in failed.stderr and failed.stdout == ""


def test_no_credential_vending_is_requested(settings: LakehouseSettings) -> None:
    """Polaris with stsUnavailable rejects loadTable/createTable that ask for vended credentials."""
    seed_raw_tables(settings, seed=5, run_key="seed", **SMALL)
    cat = catalog(settings)
    sent: list[dict] = []
    cat._session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request.headers))
    table = cat.load_table((settings.namespace_raw, "orders"))
    table.append(generate_orders(GeneratorState.from_tables(generate_seed(5, **SMALL)), 1, run_key="probe")["orders"])
    assert len(sent) >= 2  # loadTable + commit went through the session
    assert all("X-Iceberg-Access-Delegation" not in headers for headers in sent)
    assert all(headers.get("Authorization", "").startswith("Bearer ") for headers in sent)
