"""CLI of the bootstrap Jobs: ``python -m demo.bootstrap {buckets,polaris,realm-check,reconcile,duckdb-extensions}``.

Exit codes: 0 done (changes or not), 1 failed (the message says what to do; the Job retries),
2 settings missing or invalid (named by their environment variable; retrying will not help).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from demo.bootstrap.image import DUCKDB_EXTENSION_DIR
from demo.bootstrap.settings import BucketSettings, PolarisInitSettings
from demo.bootstrap.waiting import BootstrapError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Bootstrap Jobs of floe. Exit codes: 0 done, 1 failed (see the message; the Job retries), 2 bad settings.",
)

S = TypeVar("S", BucketSettings, PolarisInitSettings)


def say(line: str) -> None:
    typer.echo(line)


def load_settings(settings_class: type[S]) -> S:
    """Read the settings from the environment; on error name the variables, never their values."""
    try:
        return settings_class()
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_input=False, include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            where = settings_class.env_name(field) if field in settings_class.model_fields else "settings"
            lines.append(f"  {where}: {error['msg']}")
        typer.echo(f"ERROR: {settings_class.__name__} is incomplete or invalid:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None


def _fail(exc: BootstrapError) -> typer.Exit:
    typer.echo(f"ERROR: {exc}", err=True)
    return typer.Exit(1)


@app.command()
def buckets() -> None:
    """Wait for S3 (MinIO), create the configured buckets that do not exist yet, then each client's
    MinIO user and policy (FLOE_S3_IDENTITIES__*), repairing what differs."""
    from demo.bootstrap.buckets import ensure_buckets, ensure_identities  # each command imports only its own stack

    settings = load_settings(BucketSettings)
    try:
        outcomes = ensure_buckets(settings, report=say)
        identities = ensure_identities(settings, report=say)
    except BootstrapError as exc:
        raise _fail(exc) from None
    created = sum(1 for outcome in outcomes if outcome.outcome == "created")
    say(f"buckets done: {created} created, {len(outcomes) - created} already there")
    if identities:
        changed = sum(1 for outcome in identities if outcome.outcome != "unchanged")
        say(f"identities done: {changed} created or repaired, {len(identities) - changed} unchanged")


@app.command()
def polaris() -> None:
    """Wait for Polaris, then create the catalog, namespaces, principals, roles and grants."""
    from demo.bootstrap.polaris import init_polaris  # the SDK takes seconds to import

    settings = load_settings(PolarisInitSettings)
    try:
        init_polaris(settings, report=say)
    except BootstrapError as exc:
        raise _fail(exc) from None


@app.command("realm-check")
def realm_check(
    marker: Annotated[Path, typer.Option(help="written when the admin tool must bootstrap the realm, removed when intact")],
) -> None:
    """Is the Polaris realm intact? One token request as root; the reconcile runs the admin tool only if not."""
    from demo.bootstrap.realm_check import decide

    say(decide(load_settings(PolarisInitSettings), marker))


@app.command()
def reconcile() -> None:
    """Re-create lost state (buckets, Polaris entities, orphaned tables, Dagster storage); idempotent.

    Reads the buckets and the Polaris init settings from the same environment, and opens the Dagster
    instance at $DAGSTER_HOME when set. The last line is the summary (``floe-reconcile {json}``).
    """
    import os

    from demo.bootstrap.reconcile import reconcile as run_reconcile

    bucket_settings = load_settings(BucketSettings)
    polaris_settings = load_settings(PolarisInitSettings)
    home = os.environ.get("DAGSTER_HOME")
    summary = run_reconcile(bucket_settings, polaris_settings, dagster_home=Path(home) if home else None, report=say)
    if summary.errors:
        for error in summary.errors:
            typer.echo(f"ERROR: {error}", err=True)
        raise typer.Exit(1)


@app.command("duckdb-extensions")
def duckdb_extensions(
    directory: Annotated[Path, typer.Option(help="DuckDB extension_directory to fill")] = Path(DUCKDB_EXTENSION_DIR),
) -> None:
    """Install the DuckDB extensions from the installed wheels into DIRECTORY (image build step)."""
    from demo.bootstrap.duckdb_extensions import EXTENSIONS, install_extensions

    for path in install_extensions(directory, EXTENSIONS):
        say(f"installed {path}")


if __name__ == "__main__":
    app()
