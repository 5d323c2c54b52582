"""Writes the generated data into the raw Iceberg tables, through the Iceberg REST catalog.

Why pyiceberg (not DuckDB) for the raw writes
---------------------------------------------
* **Explicit schemas.** pyiceberg creates each table from an Iceberg :class:`~pyiceberg.schema.Schema`
  with field ids, required columns, decimals and identifier fields (:mod:`demo.generator.schemas`);
  a DuckDB ``CREATE TABLE`` goes through SQL type mapping and cannot set those.
* **Atomic, inspectable commits.** ``Table.append`` writes Parquet files first and then sends ONE
  REST commit (``add-snapshot`` + ``set-snapshot-ref`` guarded by an ``assert-ref-snapshot-id``
  requirement). The table only changes if that commit succeeds; if the catalog is down or the commit
  is rejected, the table's metadata pointer is untouched and the written files are orphans that no
  snapshot references. DuckDB commits the same way, but gives no handle on the snapshot.
* **Run keys in snapshot summaries.** ``append(..., snapshot_properties=...)`` stores the run key in
  the snapshot summary, so "was this run already committed?" is a metadata read (no data scan).

Idempotency
-----------
Each raw table's snapshot summaries carry ``floe.run-key``; rows carry ``_run_key`` too (audit, and
to compute an append's starting state without its own rows). A run skips every table whose history
already has a snapshot with its key, so retrying a run key — after a crash between two tables, or
after a full success — never duplicates rows. Commits are atomic per table (the REST catalog and
pyiceberg have no multi-table transaction); a run that died between ``orders`` and ``order_lines``
is completed by re-running the same key, which regenerates the identical rows (the generator is
deterministic in the state *before* the run).

Concurrency: two processes running the SAME run key at the same moment could both pass the check;
the orchestrator runs one ingest at a time, so this is not guarded further.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import NotEqualTo
from pyiceberg.table import Table

from demo.generator import DEFAULT_SEED, SEED_EPOCH, GeneratorState, generate_orders, generate_seed
from demo.generator.schemas import ICEBERG_SCHEMAS, RAW_TABLES, RUN_KEY_COLUMN
from demo.lakehouse.settings import LakehouseSettings

__all__ = [
    "APPEND_TABLES",
    "RUN_KEY_PROPERTY",
    "IngestError",
    "IngestResult",
    "TableWrite",
    "append_orders",
    "catalog",
    "committed_run_keys",
    "ensure_raw_tables",
    "raw_table_counts",
    "seed_raw_tables",
    "wait_for_catalog",
]

#: Snapshot summary property holding the ingest run key.
RUN_KEY_PROPERTY = "floe.run-key"
#: Snapshot summary property holding the kind of run ("seed" or "append").
RUN_KIND_PROPERTY = "floe.run-kind"

APPEND_TABLES: tuple[str, ...] = ("orders", "order_lines")


class IngestError(RuntimeError):
    """An ingest step failed; the message says which table and why. Tables not yet committed by the
    run are unchanged, and re-running the same run key completes it."""


@dataclass(frozen=True)
class TableWrite:
    """What a run did to one table: ``rows`` appended in ``snapshot_id``, or skipped with a reason."""

    table: str
    rows: int
    snapshot_id: int | None
    skipped_reason: str | None = None

    @property
    def skipped(self) -> bool:
        return self.skipped_reason is not None


@dataclass(frozen=True)
class IngestResult:
    run_key: str
    kind: Literal["seed", "append"]
    writes: tuple[TableWrite, ...]
    duration_s: float
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def rows_written(self) -> dict[str, int]:
        return {w.table: w.rows for w in self.writes}

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(w.table for w in self.writes if w.skipped)

    @property
    def wrote_anything(self) -> bool:
        return any(w.rows for w in self.writes)


def catalog(settings: LakehouseSettings) -> RestCatalog:
    """A pyiceberg REST catalog client for ``settings`` (OAuth2 client credentials, own S3 keys).

    Property names: pyiceberg 0.12 ``pyiceberg.catalog.rest`` (``credential``, ``scope``,
    ``oauth2-server-uri``) and ``pyiceberg.io`` (``s3.*``; path-style unless
    ``s3.force-virtual-addressing``).
    """
    properties = {
        "uri": settings.catalog_uri,
        "warehouse": settings.catalog_warehouse,
        "credential": f"{settings.catalog_client_id}:{settings.catalog_client_secret.get_secret_value()}",
        "oauth2-server-uri": settings.catalog_oauth2_uri,
        "scope": settings.catalog_scope,
        "s3.endpoint": settings.s3_endpoint,
        "s3.access-key-id": settings.s3_access_key_id,
        "s3.secret-access-key": settings.s3_secret_access_key.get_secret_value(),
        "s3.region": settings.s3_region,
        "s3.force-virtual-addressing": "false",
    }
    try:
        cat = RestCatalog("floe", **properties)
    except Exception as exc:  # connection refused, 401 on the token, unknown warehouse, ...
        raise IngestError(
            f"cannot open Iceberg REST catalog {settings.catalog_warehouse!r} at {settings.catalog_uri} "
            f"(OAuth2 client {settings.catalog_client_id!r} via {settings.catalog_oauth2_uri}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    _omit_access_delegation_header(cat)
    return cat


def _omit_access_delegation_header(cat: RestCatalog) -> None:
    """Stop pyiceberg from asking for vended credentials (like DuckDB's ACCESS_DELEGATION_MODE 'none').

    pyiceberg 0.12 always sends ``X-Iceberg-Access-Delegation: vended-credentials``
    (``RestCatalog._config_headers``: ``session.headers.setdefault(...)``, so a ``header.*`` property
    can change the value but not remove it). Polaris answers 400 "Credential vending was requested
    ... but no credentials are available" for an S3 catalog with ``stsUnavailable: true`` — the
    client must omit the header (apache/polaris#2711, #5579). We bring our own S3 keys anyway.
    A ``None`` session header is dropped from every request by ``requests`` (``merge_setting``).
    """
    session = getattr(cat, "_session", None)
    if session is None or "X-Iceberg-Access-Delegation" not in session.headers:
        raise IngestError(
            "pyiceberg's REST session no longer exposes the access-delegation header; "
            "re-check _omit_access_delegation_header against the installed pyiceberg"
        )
    session.headers["X-Iceberg-Access-Delegation"] = None


def wait_for_catalog(settings: LakehouseSettings, *, timeout: float = 30.0, interval: float = 0.25) -> None:
    """Poll until the catalog answers ``list_namespaces`` for the warehouse (or raise IngestError).

    Needed because a freshly started catalog may accept tokens before its warehouse exists:
    SeaweedFS ``weed mini`` creates its ``-tableBucket`` a moment after it serves OAuth2, and a
    Polaris catalog only exists once its bootstrap job has run.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            catalog(settings).list_namespaces()
            return
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise IngestError(
                    f"Iceberg catalog {settings.catalog_warehouse!r} at {settings.catalog_uri} not ready "
                    f"after {timeout:.0f}s: {exc}"
                ) from exc
            time.sleep(interval)


def _identifier(settings: LakehouseSettings, table: str) -> tuple[str, str]:
    return (settings.namespace_raw, table)


def _load(cat: Catalog, settings: LakehouseSettings, table: str) -> Table | None:
    try:
        return cat.load_table(_identifier(settings, table))
    except NoSuchTableError:
        return None


def ensure_raw_tables(settings: LakehouseSettings, cat: Catalog | None = None) -> dict[str, Table]:
    """Create the raw and marts namespaces and the raw tables that are missing (idempotent).

    (No staging namespace: dbt's staging models are views in its local DuckDB file.)
    """
    cat = cat or catalog(settings)
    for namespace in (settings.namespace_raw, settings.namespace_marts):
        try:
            cat.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass
    tables: dict[str, Table] = {}
    for name in RAW_TABLES:
        table = _load(cat, settings, name)
        if table is None:
            try:
                table = cat.create_table(_identifier(settings, name), schema=ICEBERG_SCHEMAS[name])
            except TableAlreadyExistsError:  # created concurrently
                table = cat.load_table(_identifier(settings, name))
        tables[name] = table
    return tables


def committed_run_keys(table: Table) -> set[str]:
    """Run keys recorded in the summaries of the table's snapshots (metadata only, no data scan)."""
    keys = set()
    for snapshot in table.metadata.snapshots:
        summary = snapshot.summary
        if summary is not None and RUN_KEY_PROPERTY in summary.additional_properties:
            keys.add(summary.additional_properties[RUN_KEY_PROPERTY])
    return keys


def _row_count(table: Table) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))


def raw_table_counts(settings: LakehouseSettings) -> dict[str, int | None]:
    """Rows per raw table from the current snapshot's ``total-records``; ``None`` when the table (or
    the namespace) does not exist. Raises :class:`IngestError` when the catalog is unreachable."""
    cat = catalog(settings)
    counts: dict[str, int | None] = {}
    for name in RAW_TABLES:
        try:
            table = _load(cat, settings, name)
        except NoSuchNamespaceError:
            table = None
        except Exception as exc:  # the catalog failed, not "no such table"
            raise IngestError(
                f"cannot read {settings.namespace_raw}.{name} from {settings.catalog_uri}: {exc}"
            ) from exc
        counts[name] = None if table is None else _row_count(table)
    return counts


def _append(table: Table, name: str, data: pa.Table, run_key: str, kind: str) -> TableWrite:
    if run_key in committed_run_keys(table):
        return TableWrite(name, 0, None, skipped_reason=f"run key {run_key!r} already committed")
    try:
        table.append(data, snapshot_properties={RUN_KEY_PROPERTY: run_key, RUN_KIND_PROPERTY: kind})
    except Exception as exc:
        raise IngestError(
            f"append of {data.num_rows} rows to {'.'.join(table.name())} failed (run key {run_key!r}); "
            f"the table is unchanged unless the commit reached the catalog — re-run the same run key. "
            f"Cause: {type(exc).__name__}: {exc}"
        ) from exc
    snapshot = table.current_snapshot()
    return TableWrite(name, data.num_rows, snapshot.snapshot_id if snapshot else None)


def seed_raw_tables(
    settings: LakehouseSettings,
    *,
    seed: int = DEFAULT_SEED,
    run_key: str,
    n_customers: int | None = None,
    n_products: int | None = None,
    n_orders: int | None = None,
) -> IngestResult:
    """Create the namespaces and raw tables and write the seed (see :func:`demo.generator.generate_seed`).

    Per table: skipped when this run key is already committed, or when the table already holds
    rows from another run (a lakehouse is seeded once; new orders come from :func:`append_orders`).
    """
    started = time.perf_counter()
    sizes = {
        key: value
        for key, value in (("n_customers", n_customers), ("n_products", n_products), ("n_orders", n_orders))
        if value is not None
    }
    try:
        cat = catalog(settings)
        tables = ensure_raw_tables(settings, cat)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"cannot prepare raw tables at {settings.catalog_uri}: {type(exc).__name__}: {exc}") from exc
    data = generate_seed(seed, run_key=run_key, **sizes)  # type: ignore[arg-type]
    writes = []
    for name in RAW_TABLES:
        table = tables[name]
        if run_key not in committed_run_keys(table) and _row_count(table) > 0:
            writes.append(TableWrite(name, 0, None, skipped_reason="already seeded by another run"))
            continue
        writes.append(_append(table, name, data[name], run_key, "seed"))
    return IngestResult(run_key, "seed", tuple(writes), time.perf_counter() - started, {"seed": seed})


def _scan(table: Table, columns: Iterable[str], run_key: str) -> pa.Table:
    """Columns of the rows NOT written by ``run_key``."""
    return table.scan(row_filter=NotEqualTo(RUN_KEY_COLUMN, run_key), selected_fields=tuple(columns)).to_arrow()


def current_state(settings: LakehouseSettings, *, excluding_run_key: str, cat: Catalog | None = None) -> GeneratorState:
    """The generator state from the raw tables, ignoring rows written by ``excluding_run_key`` (so a
    retry sees the same state as the first attempt)."""
    cat = cat or catalog(settings)
    tables = {name: _load(cat, settings, name) for name in RAW_TABLES}
    missing = [name for name, table in tables.items() if table is None]
    if missing:
        raise IngestError(f"raw tables missing: {', '.join(missing)} — seed first")
    customers = _scan(tables["customers"], ["customer_id"], excluding_run_key)  # type: ignore[union-attr]
    products = _scan(tables["products"], ["product_id", "unit_price"], excluding_run_key)  # type: ignore[union-attr]
    orders = _scan(tables["orders"], ["order_id", "created_at"], excluding_run_key)  # type: ignore[union-attr]
    lines = _scan(tables["order_lines"], ["order_line_id"], excluding_run_key)  # type: ignore[union-attr]
    if customers.num_rows == 0 or products.num_rows == 0:
        raise IngestError("raw.customers or raw.products is empty — seed first")
    return GeneratorState(
        customer_ids=tuple(sorted(customers.column("customer_id").to_pylist())),
        product_prices=dict(
            zip(products.column("product_id").to_pylist(), products.column("unit_price").to_pylist(), strict=True)
        ),
        next_order_id=(pc.max(orders.column("order_id")).as_py() or 0) + 1,
        next_order_line_id=(pc.max(lines.column("order_line_id")).as_py() or 0) + 1,
        last_order_at=pc.max(orders.column("created_at")).as_py() if orders.num_rows else SEED_EPOCH,
    )


def append_orders(
    settings: LakehouseSettings,
    *,
    run_key: str,
    n_orders: int,
    seed: int = DEFAULT_SEED,
    not_before: datetime | None = None,
) -> IngestResult:
    """Append ``n_orders`` new orders (+ their lines) to the raw tables; idempotent per ``run_key``.

    If both tables already have a snapshot with ``run_key``, nothing is read or written. Otherwise
    the state is read without this run's rows, the orders are generated (deterministically), and
    each table not yet committed by this run gets one atomic append (orders, then order_lines).
    ``not_before`` (pass something stable per run key, like the schedule tick's time — not the
    clock) makes the new orders start no earlier than that instant.
    """
    started = time.perf_counter()
    try:
        cat = catalog(settings)
        tables = {name: _load(cat, settings, name) for name in APPEND_TABLES}
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"cannot load raw tables at {settings.catalog_uri}: {type(exc).__name__}: {exc}") from exc
    if all(t is not None and run_key in committed_run_keys(t) for t in tables.values()):
        reason = f"run key {run_key!r} already committed"
        writes = tuple(TableWrite(name, 0, None, skipped_reason=reason) for name in APPEND_TABLES)
        return IngestResult(run_key, "append", writes, time.perf_counter() - started)
    try:
        state = current_state(settings, excluding_run_key=run_key, cat=cat)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(f"cannot read raw tables at {settings.catalog_uri}: {type(exc).__name__}: {exc}") from exc
    data = generate_orders(state, n_orders, run_key=run_key, seed=seed, not_before=not_before)
    writes = tuple(_append(tables[name], name, data[name], run_key, "append") for name in APPEND_TABLES)  # type: ignore[arg-type]
    return IngestResult(
        run_key,
        "append",
        writes,
        time.perf_counter() - started,
        {"first_order_id": state.next_order_id, "after": state.last_order_at.isoformat()},
    )
