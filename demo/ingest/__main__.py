"""``python -m demo.ingest``: raw-table row counts (used by the deploy tool's ``status``), seed, append.

Settings come from the ``FLOE_*`` environment (:class:`~demo.lakehouse.settings.LakehouseSettings`).
"""

from __future__ import annotations

import json
import sys
import uuid

import typer
from rich.console import Console
from rich.table import Table

from demo.generator import DEFAULT_SEED
from demo.ingest import IngestError, IngestResult, append_orders, raw_table_counts, seed_raw_tables
from demo.lakehouse.settings import LakehouseSettings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
err = Console(stderr=True)


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
    raise typer.Exit(1)


@app.command()
def counts(as_json: bool = typer.Option(False, "--json", help="print one JSON object (null = table missing)")) -> None:
    """Rows per raw table (from the current snapshot of each)."""
    try:
        result = raw_table_counts(LakehouseSettings())
    except IngestError as exc:
        _fail(exc)
        return
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    table = Table("table", "rows")
    for name, rows in result.items():
        table.add_row(name, "missing" if rows is None else str(rows))
    Console().print(table)


def _print(result: IngestResult) -> None:
    for write in result.writes:
        detail = f"skipped ({write.skipped_reason})" if write.skipped else f"+{write.rows} rows"
        Console().print(f"{write.table}: {detail}", highlight=False)


@app.command()
def seed(
    seed: int = typer.Option(DEFAULT_SEED, help="generator seed"),
    run_key: str = typer.Option("seed", help="idempotency key of this run"),
) -> None:
    """Create the raw tables and write the seed data (skipped where already seeded)."""
    try:
        _print(seed_raw_tables(LakehouseSettings(), seed=seed, run_key=run_key))
    except IngestError as exc:
        _fail(exc)


@app.command()
def append(
    n_orders: int = typer.Option(50, "--orders", help="number of new orders"),
    run_key: str = typer.Option(None, help="idempotency key (default: a fresh UUID)"),
) -> None:
    """Append new orders (+ lines); re-running the same run key writes nothing twice."""
    try:
        _print(append_orders(LakehouseSettings(), run_key=run_key or f"append-{uuid.uuid4()}", n_orders=n_orders))
    except IngestError as exc:
        _fail(exc)


if __name__ == "__main__":
    app()
