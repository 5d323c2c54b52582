"""PostgreSQL backups (postgres.backup, issue 18 item 3): back up a real PostgreSQL, wipe it, restore
it, and the catalog (Polaris), Dagster and Marquez databases answer as before.

Real parts: PostgreSQL (roles and databases made by dist/'s init script), pg_dump and pg_restore,
SeaweedFS (S3), Dagster's own PostgreSQL storage (schema and rows written by Dagster). The CronJob's
two containers run from dist/ through tests/support/pods.py ``materialize`` (command, env with the
Secrets resolved, the shared emptyDir); only the addresses and the server's superuser are rewritten
to the local ones. The restore is the documented command (docs/production.md, "Backups and
restore"), run as an operator runs it through port-forwards. Polaris' and Marquez' schemas need
their JVMs (not here): tables owned by their roles, with a sequence, a view, an index and jsonb,
stand in for them; Dagster's schema is the real one.
"""

from __future__ import annotations

import base64

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg2
import pytest

from demo import backup
from demo.bootstrap.settings import BucketSettings
from floe.config import StackConfig, load_config
from floe.synth import SynthResult, synthesize
from tests.infra.conftest import REPO, write_fake_credentials
from tests.support.manifests import container, find, resolve_env
from tests.support.pods import dockerfile_env, materialize, pg_env
from tests.support.postgres import PostgresServer, postgres_server

pytestmark = pytest.mark.timeout(600)
CRON = "floe-postgres-backup"
DATABASES = ("dagster", "marquez", "polaris")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    folder = tmp_path_factory.mktemp("backup")
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    config = StackConfig.model_validate(data)
    assert config.postgres.backup is not None
    return synthesize(config, folder / "dist", root=folder)


def init_databases(docs: list[dict], server: PostgresServer) -> None:
    """What the PostgreSQL pod does on an empty volume: dist/'s init script."""
    script = find(docs, "ConfigMap", "floe-postgres-init")["data"]["10-floe-databases.sh"]
    pg = resolve_env(container(docs, "StatefulSet", "floe-postgres"), docs)
    env = {**pg_env(server), **{k: v for k, v in pg.items() if k.startswith("FLOE_DB_")},
           "POSTGRES_USER": server.user, "POSTGRES_DB": pg["POSTGRES_DB"]}
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True, timeout=60)


def app_password(docs: list[dict], database: str) -> str:
    return resolve_env(container(docs, "StatefulSet", "floe-postgres"), docs)[f"FLOE_DB_{database.upper()}_PASSWORD"]


def connect(server: PostgresServer, database: str, user: str | None = None, password: str | None = None):  # noqa: ANN201
    conn = psycopg2.connect(host=server.host, port=server.port, user=user or server.user, password=password or server.password, dbname=database)
    conn.autocommit = True
    return contextlib.closing(conn)


STAND_IN = {
    # Polaris relational-jdbc keeps every entity in a few tables of its own schema.
    "polaris": [
        "CREATE SCHEMA polaris_schema",
        "CREATE TABLE polaris_schema.entities (realm_id text, id bigserial, name text NOT NULL, properties jsonb, "
        "PRIMARY KEY (realm_id, id))",
        "CREATE INDEX entities_name ON polaris_schema.entities (realm_id, name)",
        "INSERT INTO polaris_schema.entities (realm_id, name, properties) SELECT 'floe', 'table_' || g, "
        "jsonb_build_object('metadata-location', 's3://warehouse/t' || g || '/metadata/00001.json') FROM generate_series(1, 500) g",
    ],
    # Marquez: Flyway's history, datasets with uuids, a materialized view (its lineage refresh).
    "marquez": [
        "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version text, success boolean)",
        "INSERT INTO flyway_schema_history VALUES (1, '1', true), (2, '2', true)",
        "CREATE TABLE datasets (uuid uuid PRIMARY KEY, name text UNIQUE, created_at timestamptz)",
        "INSERT INTO datasets SELECT md5(g::text)::uuid, 'raw.orders_' || g, '2026-12-01T00:00:00Z'::timestamptz + g * interval '1 minute' "
        "FROM generate_series(1, 300) g",
        "CREATE MATERIALIZED VIEW dataset_names AS SELECT name FROM datasets",
    ],
}


def populate(docs: list[dict], server: PostgresServer, home: Path) -> str:
    """Each application's data, written as its own role; Dagster's by Dagster. Returns a run id."""
    for database, statements in STAND_IN.items():
        with connect(server, database, database, app_password(docs, database)) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    with dagster_instance(docs, server, home) as instance:
        from dagster._core.test_utils import create_run_for_test

        run = create_run_for_test(instance, job_name="floe_tick", run_id=str(uuid.uuid4()))
        instance.report_engine_event("backed up with the rest", run)
        return run.run_id


@contextlib.contextmanager
def dagster_instance(docs: list[dict], server: PostgresServer, home: Path) -> Iterator:
    """Dagster's PostgreSQL storage on the dagster database as the dagster role (the instance's own)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      hostname: {server.host}\n      port: {server.port}\n      db_name: dagster\n"
        f"      username: dagster\n      password: {app_password(docs, 'dagster')}\n"
        "      scheme: postgresql+psycopg2\ntelemetry:\n  enabled: false\n"
    )
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        yield instance


def fingerprint(server: PostgresServer) -> dict[str, dict]:
    """Everything a client could see of each application database: every table's owner, row count
    and a digest of its rows in order, sequences' positions, views, indexes, the database owner."""
    result = {}
    for database in DATABASES:
        with connect(server, database) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
            seen: dict = {"owner": cur.fetchone()[0]}
            cur.execute(
                "SELECT schemaname, tablename, tableowner FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
            for schema, table, owner in cur.fetchall():
                cur.execute(f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) FROM "{schema}"."{table}" t')
                seen[f"table {schema}.{table}"] = (owner, *cur.fetchone())
            cur.execute("SELECT schemaname, sequencename, sequenceowner, last_value FROM pg_sequences ORDER BY 1, 2")
            seen["sequences"] = cur.fetchall()
            cur.execute("SELECT schemaname, matviewname, matviewowner FROM pg_matviews ORDER BY 1, 2")
            seen["materialized views"] = cur.fetchall()
            cur.execute("SELECT schemaname, indexname FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog') ORDER BY 1, 2")
            seen["indexes"] = cur.fetchall()
            result[database] = seen
    return result


def wipe(server: PostgresServer) -> None:
    """The volume lost: every application database and role gone."""
    with connect(server, "postgres") as conn, conn.cursor() as cur:
        for database in DATABASES:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{database}"')


def pod(docs: list[dict], name: str, root: Path, server: PostgresServer, s3_port: int, lake) -> object:  # noqa: ANN001
    """A container of the backup CronJob's pod, with the local server, store and their admin users."""
    rewrites = {"http://floe-minio:9000": f"http://127.0.0.1:{s3_port}"}
    local = materialize(docs, "CronJob", CRON, name, root=root, rewrites=rewrites, image_env=dockerfile_env())
    env = local.env
    if name == "dump":
        assert (env["FLOE_BACKUP_PG_HOST"], env["FLOE_BACKUP_PG_PORT"]) == ("floe-postgres", "5432")
        superuser = resolve_env(container(docs, "StatefulSet", "floe-postgres"), docs)
        assert (env["PGUSER"], env["PGPASSWORD"]) == (superuser["POSTGRES_USER"], superuser["POSTGRES_PASSWORD"])
        env.update(FLOE_BACKUP_PG_HOST=server.host, FLOE_BACKUP_PG_PORT=str(server.port), PGUSER=server.user, PGPASSWORD=server.password)
    else:
        # Its own object-store key (client "backup", read/write on the backup bucket only), never the root key.
        minio = resolve_env(container(docs, "StatefulSet", "floe-minio"), docs)
        backup = {k: base64.b64decode(v).decode() for k, v in find(docs, "Secret", "floe-s3-backup")["data"].items()}
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (backup["access-key"], backup["secret-key"])
        assert env["AWS_ACCESS_KEY_ID"] != minio["MINIO_ROOT_USER"]
        env.update(AWS_ACCESS_KEY_ID=lake.access_key, AWS_SECRET_ACCESS_KEY=lake.secret_key)
    return local


def operator_restore(server: PostgresServer, lake, s3_port: int, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    """docs/production.md's restore command, run where kubectl port-forwards the two Services."""
    env = {
        **os.environ,
        "PGHOST": server.host, "PGPORT": str(server.port), "PGUSER": server.user, "PGPASSWORD": server.password,
        "AWS_ACCESS_KEY_ID": lake.access_key, "AWS_SECRET_ACCESS_KEY": lake.secret_key,
    }
    command = [sys.executable, "-m", "demo.backup", "--bucket", "floe-backups", "--endpoint", f"http://127.0.0.1:{s3_port}", "restore", *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from demo.lakehouse.local import local_lakehouse

    with local_lakehouse(tmp_path_factory.mktemp("weed")) as running:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{running.s3_port}", aws_access_key_id=running.access_key,
                          aws_secret_access_key=running.secret_key, region_name="us-east-1")
        s3.create_bucket(Bucket="floe-backups")
        yield running


def test_the_buckets_job_creates_the_backup_bucket(cluster: SynthResult) -> None:
    docs = cluster.documents
    buckets = resolve_env(container(docs, "Job", "floe-minio-buckets"), docs)[BucketSettings.env_name("buckets")].split(",")
    assert "floe-backups" in buckets
    cron = find(docs, "CronJob", CRON)["spec"]
    assert cron["schedule"] == "15 2 * * *" and cron["timeZone"] == "Etc/UTC" and cron["concurrencyPolicy"] == "Forbid"
    upload = container(docs, "CronJob", CRON, "upload")["command"]
    assert upload[upload.index("--keep") + 1] == "7"


def test_backup_wipe_restore_and_every_database_answers_as_before(cluster: SynthResult, lake, tmp_path: Path) -> None:  # noqa: ANN001
    docs = cluster.documents
    with postgres_server(database="bootstrap") as server:
        init_databases(docs, server)
        run_id = populate(docs, server, tmp_path / "dagster")
        before = fingerprint(server)
        assert before["polaris"]["table polaris_schema.entities"][:2] == ("polaris", 500)
        assert before["marquez"]["table public.datasets"][:2] == ("marquez", 300)
        assert before["dagster"]["table public.runs"][0] == "dagster"

        # The CronJob's pod: pg_dump (init container), then the upload.
        dump = pod(docs, "dump", tmp_path / "pod", server, lake.s3_port, lake)
        result = dump.run(dump.argv)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in dump.local_path("/backup").iterdir()) == [f"{d}.dump" for d in DATABASES]
        upload = pod(docs, "upload", tmp_path / "pod", server, lake.s3_port, lake)
        result = upload.run(upload.argv)
        assert result.returncode == 0, result.stderr
        assert "floe-backup {" in result.stdout

        wipe(server)
        with connect(server, "postgres") as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname IN %s", (DATABASES,))
            assert cur.fetchone()[0] == 0
        # A new volume: the PostgreSQL pod's init script re-creates the roles (same Secrets) and
        # empty databases; then the documented restore.
        init_databases(docs, server)
        assert fingerprint(server) != before
        restored = operator_restore(server, lake, lake.s3_port)
        assert restored.returncode == 0, restored.stderr
        assert fingerprint(server) == before

        # The applications' own roles read their data, and Dagster finds its run and its events.
        with dagster_instance(docs, server, tmp_path / "dagster-after") as instance:
            assert instance.get_run_by_id(run_id) is not None
            assert any("backed up with the rest" in (e.message or "") for e in instance.all_logs(run_id))
        with connect(server, "polaris", "polaris", app_password(docs, "polaris")) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO polaris_schema.entities (realm_id, name) VALUES ('floe', 'after_restore') RETURNING id")
            assert cur.fetchone()[0] == 501  # the sequence continues where it was


def test_a_failed_dump_uploads_nothing(cluster: SynthResult, lake, tmp_path: Path) -> None:  # noqa: ANN001
    docs = cluster.documents
    with postgres_server(database="bootstrap") as server:
        init_databases(docs, server)
        dump = pod(docs, "dump", tmp_path / "pod", server, lake.s3_port, lake)
        dump.env["PGPASSWORD"] = "wrong"
        result = dump.run(dump.argv)
        assert result.returncode != 0 and "password authentication failed" in result.stderr
        assert not [p for p in dump.local_path("/backup").iterdir() if p.name.endswith(".dump")]
        upload = pod(docs, "upload", tmp_path / "pod", server, lake.s3_port, lake)
        result = upload.run(upload.argv)
        assert result.returncode == 1 and "no .dump files" in result.stderr


def test_retention_keeps_the_newest_complete_sets(lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", lake.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", lake.secret_key)
    store = backup.Store(bucket="floe-backups", prefix=f"retention-{uuid.uuid4().hex[:8]}", endpoint=f"http://127.0.0.1:{lake.s3_port}", region="us-east-1")
    (tmp_path / "dagster.dump").write_bytes(b"PGDMP fake")
    # A set whose upload died before its manifest: never counted, never restored.
    store.client().put_object(Bucket=store.bucket, Key=store.key("20261201T000000Z", "dagster.dump"), Body=b"partial")
    for stamp in ("20261201T021500Z", "20261202T021500Z", "20261203T021500Z"):
        backup.upload(store, tmp_path, keep=2, stamp=stamp)
    assert backup.complete_sets(store) == ["20261202T021500Z", "20261203T021500Z"]
    (tmp_path / "fetched").mkdir()
    stamp, files = backup.fetch(store, None, tmp_path / "fetched")
    assert stamp == "20261203T021500Z" and files["dagster"].read_bytes() == b"PGDMP fake"
    with pytest.raises(backup.BackupError, match="no complete set '20261201T000000Z'"):
        backup.fetch(store, "20261201T000000Z", tmp_path)
