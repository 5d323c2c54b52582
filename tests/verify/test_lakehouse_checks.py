"""Catalog, S3 and data checks against a real SeaweedFS lakehouse (S3 + Iceberg REST with OAuth2,
standing in for MinIO and Polaris) whose tables the demo pipeline wrote, read with real DuckDB.

What SeaweedFS does with a read-only identity (weed mini -s3.config, see conftest.py): it issues the
reader a token, lists and loads tables, and refuses CreateNamespace with HTTP 403
``ForbiddenException`` — the same status and error type Polaris answers for a principal whose
catalog role lacks NAMESPACE_CREATE. (It answers a reader's DROP with 404, hiding the object; the
verifier never tries a drop as the reader.)"""

from __future__ import annotations

import pytest

from demo.ingest import catalog, seed_raw_tables
from demo.lakehouse.local import free_port
from demo.verify.checks import (
    Context,
    check_catalog_namespaces,
    check_catalog_reader,
    check_catalog_writer,
    check_data,
    check_storage,
    marts_totals,
)
from demo.verify.runner import Check, CheckFailed, run_checks
from tests.verify.conftest import Stack, verify_settings


def scratch_namespaces(stack: Stack) -> list[str]:
    return [".".join(ns) for ns in catalog(stack.settings).list_namespaces() if ".".join(ns).startswith("floe_verify_")]


def test_catalog_storage_and_data_pass_on_a_built_lakehouse(ctx: Context, stack: Stack) -> None:
    assert "raw/staging/marts present, 4 raw + 5 marts tables" in check_catalog_namespaces(ctx).figure
    result = check_catalog_reader(ctx)
    assert result.status == "pass" and result.figure.endswith("write refused (403)"), result
    assert check_catalog_writer(ctx).status == "pass"
    storage = check_storage(ctx)
    assert storage.status == "pass" and "cubestore: 1 objects" in storage.figure, storage
    data = check_data(ctx)
    assert data.status == "pass", data
    assert "orders 200" in data.figure and "marts: 200 orders, 40 customers, 12 products" in data.figure
    totals = marts_totals(ctx)
    assert (totals.orders, totals.customers, totals.products) == (200, 40, 12)
    # The verifier left nothing behind: its scratch namespaces are gone.
    assert scratch_namespaces(stack) == []


def test_a_reader_that_can_write_fails_and_its_namespace_is_dropped(stack: Stack) -> None:
    s = stack.settings
    ctx = Context(lake=s, settings=verify_settings(reader_client_id=s.catalog_client_id,
                                                   reader_client_secret=s.catalog_client_secret.get_secret_value()))
    with pytest.raises(CheckFailed, match="the reader CREATED namespace floe_verify_") as failed:
        check_catalog_reader(ctx)
    assert "read-only principal can write" in failed.value.hint
    assert scratch_namespaces(stack) == []


def test_wrong_reader_secret_fails_with_the_client_named(stack: Stack) -> None:
    ctx = Context(lake=stack.settings, settings=verify_settings(reader_client_secret="wrong"))
    with pytest.raises(CheckFailed, match="token request for client 'floe-reader' answered 401"):
        check_catalog_reader(ctx)


def test_missing_namespace_and_missing_tables_fail(stack: Stack) -> None:
    ctx = Context(lake=stack.settings.model_copy(update={"namespace_staging": "staging_missing"}), settings=verify_settings())
    with pytest.raises(CheckFailed, match="namespaces missing: staging_missing"):
        check_catalog_namespaces(ctx)


def test_empty_cubestore_bucket_fails(stack: Stack) -> None:
    # `dagster-logs` exists and is empty: a Cube Store that never uploaded a pre-aggregation.
    ctx = Context(lake=stack.settings, settings=verify_settings(cubestore_bucket="dagster-logs"))
    with pytest.raises(CheckFailed, match="dagster-logs: 0 objects") as failed:
        check_storage(ctx)
    assert "refresh-worker" in failed.value.hint
    ctx = Context(lake=stack.settings, settings=verify_settings(cubestore_bucket="no-such-bucket"))
    with pytest.raises(CheckFailed, match="bucket 'no-such-bucket' missing"):
        check_storage(ctx)


def test_marts_that_disagree_with_raw_fail(stack: Stack) -> None:
    # Another raw namespace with other data: the marts were not built from it.
    other = stack.settings.model_copy(update={"namespace_raw": "raw_other"})
    seed_raw_tables(other, seed=8, run_key="seed", n_customers=40, n_products=12, n_orders=150)
    ctx = Context(lake=other, settings=verify_settings(), settle_seconds=0)
    with pytest.raises(CheckFailed, match="orders raw 150 ≠ fct_orders 200") as failed:
        check_data(ctx)
    assert "revenue raw" in str(failed.value)


def test_catalog_down_is_a_failed_check_with_a_hint_not_a_crash(stack: Stack) -> None:
    port = free_port()
    down = stack.settings.model_copy(update={"catalog_uri": f"http://127.0.0.1:{port}",
                                             "catalog_oauth2_uri": f"http://127.0.0.1:{port}/v1/oauth/tokens"})
    ctx = Context(lake=down, settings=verify_settings())
    import io

    out = io.StringIO()
    report = run_checks([Check("catalog.namespaces", check_catalog_namespaces), Check("catalog.writer", check_catalog_writer)],
                        ctx, timeout=60, check_timeout=30, out=out)
    assert [c.status for c in report.checks] == ["fail", "fail"] and report.exit_code == 1
    assert f"cannot connect to http://127.0.0.1:{port}/v1/oauth/tokens" in report.checks[0].figure
    assert "the service is down" in report.checks[0].hint
    assert out.getvalue().splitlines()[0].startswith("[verify] catalog.namespaces: fail cannot connect")
