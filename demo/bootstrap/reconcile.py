"""The periodic reconcile: bring back what a replaced PostgreSQL or MinIO pod lost.

PostgreSQL and MinIO keep their data on emptyDirs, so a replaced pod starts empty. The reconcile
CronJob runs this every few minutes (after its init container re-ran the Polaris admin tool's
idempotent realm bootstrap), and each step only creates what is missing:

1. **buckets** (MinIO): :func:`demo.bootstrap.buckets.ensure_buckets`, then each client's MinIO
   user and policy (:func:`demo.bootstrap.buckets.ensure_identities`): a MinIO that lost its data
   lost its users too.
2. **polaris** (catalog, namespaces, principals with the Secrets' credentials, roles, grants,
   assignments): :class:`demo.bootstrap.polaris.PolarisInit`.
3. **orphaned tables**: when MinIO alone was lost, the catalog (in PostgreSQL) still lists tables
   whose metadata files are gone; every load fails, so the seed sensor can neither read nor
   re-create them. A table is dropped from the catalog (``purgeRequested=false``: nothing to delete,
   and Polaris reads the old metadata only when purging, ``IcebergCatalog.dropTable``) only when
   BOTH Polaris fails to load it (not 401/403, not "no such table") AND S3 holds no object under its
   location's ``metadata/`` prefix. The sensor then sees the table missing and re-seeds it; dbt
   re-creates the marts on its next run. A table whose files exist is never dropped.
4. **dagster** storage: opening the instance from ``$DAGSTER_HOME/dagster.yaml`` makes
   dagster-postgres create its tables in an empty database (``PostgresRunStorage``,
   ``PostgresEventLogStorage``, ``PostgresScheduleStorage``: ``create_all`` + alembic stamp when
   their main table is missing). Running processes use ``NullPool`` and pick the tables up.

The last line of the output is the machine-readable summary ``floe-reconcile {json}`` that
``make status`` reads: every item with ``created`` / ``unchanged`` / ``dropped``, and
``state_lost`` = whether anything had to be re-created.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from demo.bootstrap.buckets import ensure_buckets, ensure_identities, s3_client
from demo.bootstrap.settings import BucketSettings, PolarisInitSettings
from demo.bootstrap.waiting import BootstrapError, Reporter

#: Prefix of the summary line (the last line of the reconcile's output).
SUMMARY_PREFIX = "floe-reconcile "
#: Tables (dagster-postgres) whose absence means the Dagster database was lost.
DAGSTER_MAIN_TABLES = ("runs", "event_logs", "jobs")

_CHANGED = {"created", "added", "reset", "dropped"}


@dataclass(frozen=True)
class Item:
    step: str
    name: str
    outcome: str  # created | unchanged | dropped


@dataclass
class Summary:
    items: list[Item] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, step: str, name: str, outcome: str) -> None:
        self.items.append(Item(step, name, "created" if outcome in ("created", "added", "reset") else outcome))

    @property
    def changed(self) -> list[Item]:
        return [i for i in self.items if i.outcome in _CHANGED]

    @property
    def state_lost(self) -> bool:
        return bool(self.changed)

    def line(self) -> str:
        body = {
            "ok": not self.errors,
            "state_lost": self.state_lost,
            "created": sum(1 for i in self.items if i.outcome == "created"),
            "dropped": sum(1 for i in self.items if i.outcome == "dropped"),
            "unchanged": sum(1 for i in self.items if i.outcome == "unchanged"),
            "changed": [f"{i.step}:{i.name}:{i.outcome}" for i in self.changed],
            "errors": self.errors,
        }
        return SUMMARY_PREFIX + json.dumps(body, sort_keys=True)


def parse_summary(text: str) -> dict[str, Any] | None:
    """The summary of a reconcile's output (its last ``floe-reconcile`` line), or None."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith(SUMMARY_PREFIX):
            try:
                return json.loads(line[len(SUMMARY_PREFIX):])
            except ValueError:
                return None
    return None


# --- orphaned tables ------------------------------------------------------------------------------


def _has_metadata(s3, location: str) -> bool:  # noqa: ANN001
    """Does S3 hold any object under ``<location>/metadata/``?"""
    bucket, _, key = location.removeprefix("s3://").partition("/")
    prefix = f"{key.rstrip('/')}/metadata/" if key.strip("/") else "metadata/"
    try:
        answer = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as exc:  # noqa: BLE001 - NoSuchBucket means: no files
        if "NoSuchBucket" in str(exc):
            return False
        raise BootstrapError(f"listing {location}/metadata/ failed: {exc}") from exc
    return bool(answer.get("KeyCount") or answer.get("Contents"))


def drop_orphaned_tables(init: Any, s3, settings: PolarisInitSettings, summary: Summary, report: Reporter) -> None:  # noqa: ANN001
    """Drop catalog entries of tables whose metadata files are gone (see the module docstring)."""
    from apache_polaris.sdk import catalog as iceberg_sdk

    catalog = settings.catalog_warehouse
    for namespace in settings.namespaces:
        try:
            listed = init.iceberg.list_tables(catalog, namespace)
        except iceberg_sdk.ApiException as exc:
            if exc.status == 404:
                continue  # namespace missing: the init step re-creates it
            raise BootstrapError(f"listing tables of {catalog}.{namespace} failed: HTTP {exc.status}") from exc
        except Exception as exc:  # noqa: BLE001 - connection errors
            raise BootstrapError(f"listing tables of {catalog}.{namespace} failed: {exc}") from exc
        for ident in listed.identifiers or []:
            name = f"{catalog}.{namespace}.{ident.name}"
            with init._calling(f"loading table {name}"):
                response = init.iceberg.load_table_without_preload_content(catalog, namespace, ident.name)
            status = response.status
            body = response.data.decode(errors="replace") if response.data else ""
            if status == 200:
                summary.add("table", name, "unchanged")
                continue
            if status in (401, 403) or "NoSuchTable" in body:
                raise BootstrapError(f"loading table {name} answered HTTP {status}: {body[:300]}")
            location = f"{settings.catalog_base_location.rstrip('/')}/{namespace}/{ident.name}"
            if _has_metadata(s3, location):
                report(f"WARNING: table {name} fails to load (HTTP {status}) but {location}/metadata/ has files: kept")
                summary.add("table", name, "unchanged")
                continue
            with init._calling(f"dropping orphaned table {name}"):
                init.iceberg.drop_table(catalog, namespace, ident.name, purge_requested=False)
            report(f"table {name}: dropped (HTTP {status} on load and no files under {location}/metadata/: "
                   "its data was lost with MinIO; the seed sensor / dbt re-create it)")
            summary.add("table", name, "dropped")


# --- dagster --------------------------------------------------------------------------------------


def _pg_url_from_instance_yaml(home: Path) -> str:
    import yaml
    from dagster_postgres.utils import pg_url_from_config

    config = yaml.safe_load((home / "dagster.yaml").read_text())
    db = dict(config["storage"]["postgres"]["postgres_db"])
    for key, value in list(db.items()):
        if isinstance(value, dict) and "env" in value:
            db[key] = os.environ[value["env"]]
    return pg_url_from_config({"postgres_db": db})


def _dagster_tables_present(home: Path) -> bool:
    """Do the main tables exist? psycopg2 and one catalog query, without importing Dagster (2+
    CPU-seconds per run, for the common case where nothing was lost)."""
    import psycopg2
    import yaml

    db = yaml.safe_load((home / "dagster.yaml").read_text())["storage"]["postgres"]["postgres_db"]
    value = {k: os.environ[v["env"]] if isinstance(v, dict) and "env" in v else v for k, v in db.items()}
    connection = psycopg2.connect(host=value["hostname"], port=value.get("port", 5432), dbname=value["db_name"],
                                  user=value["username"], password=value["password"], connect_timeout=10,
                                  application_name="floe-reconcile")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join("to_regclass(%s) IS NOT NULL" for _ in DAGSTER_MAIN_TABLES), DAGSTER_MAIN_TABLES)
            return all(cursor.fetchone())
    finally:
        connection.close()


def ensure_dagster_storage(home: Path, summary: Summary, report: Reporter) -> None:
    """Open the Dagster instance (which creates missing tables) when a main table is missing; say
    whether it had to. With every main table there, opening it would change nothing: skipped."""
    try:
        present = _dagster_tables_present(home)
    except Exception as exc:  # noqa: BLE001 - any failure is reported and retried by the next run
        raise BootstrapError(f"reading the Dagster storage failed: {type(exc).__name__}: {exc}") from exc
    if present:
        report("dagster storage: unchanged (main tables present)")
        summary.add("dagster", "storage", "unchanged")
        return
    import sqlalchemy as sa
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    engine = sa.create_engine(_pg_url_from_instance_yaml(home), poolclass=sa.pool.NullPool)
    try:
        before = set(sa.inspect(engine).get_table_names())
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            instance.get_runs_count()
        after = set(sa.inspect(engine).get_table_names())
    except Exception as exc:  # noqa: BLE001 - any failure is reported and retried by the next run
        raise BootstrapError(f"opening the Dagster storage failed: {type(exc).__name__}: {exc}") from exc
    finally:
        engine.dispose()
    missing = [t for t in DAGSTER_MAIN_TABLES if t not in after]
    if missing:
        raise BootstrapError(f"Dagster storage still lacks tables {missing} after opening the instance")
    outcome = "unchanged" if all(t in before for t in DAGSTER_MAIN_TABLES) else "created"
    report(f"dagster storage: {outcome} ({len(after)} tables)")
    summary.add("dagster", "storage", outcome)


# --- the whole reconcile --------------------------------------------------------------------------


def reconcile(
    buckets: BucketSettings, polaris: PolarisInitSettings, *, dagster_home: Path | None, report: Reporter = print
) -> Summary:
    """Run every step in order; a failed step is recorded and the next ones still run where they can."""
    from demo.bootstrap.polaris import PolarisInit

    summary = Summary()
    try:
        for outcome in ensure_buckets(buckets, report=report):
            summary.add("bucket", outcome.bucket, "unchanged" if outcome.outcome == "exists" else outcome.outcome)
        for identity in ensure_identities(buckets, report=report):
            summary.add("s3-identity", identity.client, "unchanged" if identity.outcome == "unchanged" else "created")
    except BootstrapError as exc:
        summary.errors.append(f"buckets: {exc}")
    init = PolarisInit(polaris, report=report)
    try:
        for step in init.run():
            if step.kind != "credentials of" or step.outcome == "reset":
                summary.add(step.kind.replace(" ", "-"), step.name, step.outcome)
        drop_orphaned_tables(init, s3_client(buckets), polaris, summary, report)
    except BootstrapError as exc:
        summary.errors.append(f"polaris: {exc}")
    if dagster_home is not None:
        try:
            ensure_dagster_storage(dagster_home, summary, report)
        except BootstrapError as exc:
            summary.errors.append(f"dagster: {exc}")
    report(summary.line())
    return summary
