"""The Dagster instance migration Job (dagster.migration_job, issue 18 item 8), run from dist/ against
a real PostgreSQL made by dist/'s init script: it creates/migrates the storage to the installed
Dagster's schema, and a second run changes nothing. A new project image (a Dagster upgrade) is a new
Job; an unchanged synth keeps the Job's name (so it does not run again)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg2
import pytest

from demo.orchestration.migrate import SUMMARY_PREFIX
from floe.config import StackConfig, load_config
from floe.synth import SynthResult, synthesize
from tests.infra.conftest import REPO, write_fake_credentials
from tests.support.manifests import container, find, resolve_env
from tests.support.pods import dockerfile_env, materialize, pg_env
from tests.support.postgres import PostgresServer, postgres_server

pytestmark = pytest.mark.timeout(600)
JOB = "floe-dagster-migrate"


def cluster(folder: Path, **project_image: str) -> SynthResult:
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    data["project_image"].update(project_image)
    config = StackConfig.model_validate(data)
    assert config.dagster.migration_job
    return synthesize(config, folder / "dist", root=folder)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return cluster(tmp_path_factory.mktemp("migrate"))


def init_databases(docs: list[dict], server: PostgresServer) -> None:
    script = find(docs, "ConfigMap", "floe-postgres-init")["data"]["10-floe-databases.sh"]
    pg = resolve_env(container(docs, "StatefulSet", "floe-postgres"), docs)
    env = {**pg_env(server), **{k: v for k, v in pg.items() if k.startswith("FLOE_DB_")}, "POSTGRES_USER": server.user, "POSTGRES_DB": pg["POSTGRES_DB"]}
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True, timeout=60)


def run_job(docs: list[dict], server: PostgresServer, root: Path) -> dict:
    rewrites = {"floe-postgres": server.host, "5432": str(server.port)}
    pod = materialize(docs, "Job", JOB, "migrate", root=root, rewrites=rewrites, image_env=dockerfile_env())
    result = pod.run(pod.argv, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (line,) = [l for l in result.stdout.splitlines() if l.startswith(SUMMARY_PREFIX)]
    return json.loads(line[len(SUMMARY_PREFIX):])


def test_the_job_is_a_content_named_bootstrap_job_without_a_token(stack: SynthResult) -> None:
    job = find(stack.documents, "Job", JOB)
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "bootstrap"  # GitOps: floe-bootstrap
    spec = job["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert container(stack.documents, "Job", JOB, "migrate")["command"] == ["python", "-m", "demo.orchestration.migrate"]


def test_migrates_a_fresh_storage_then_changes_nothing(stack: SynthResult, tmp_path: Path) -> None:
    docs = stack.documents
    with postgres_server(database="bootstrap") as server:
        init_databases(docs, server)
        # A fresh database: opening the instance creates the tables at the current head.
        first = run_job(docs, server, tmp_path / "run1")
        heads = set(first["after"].values())
        assert len(heads) == 1 and None not in heads  # one alembic head shared by the three storages
        password = resolve_env(container(docs, "Job", JOB, "migrate"), docs)["FLOE_DAGSTER_PG_PASSWORD"]
        url = f"postgresql+psycopg2://dagster:{password}@{server.host}:{server.port}/dagster"
        with psycopg2.connect(host=server.host, port=server.port, user="dagster", password=password, dbname="dagster") as conn, conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            tables = {row[0] for row in cur.fetchall()}
        assert {"runs", "event_logs", "jobs", "alembic_version"} <= tables
        # Idempotent: a second run on the current schema changes nothing.
        second = run_job(docs, server, tmp_path / "run2")
        assert second == {"before": first["after"], "after": first["after"], "changed": False}
        # A storage of an older Dagster (the last migrations undone by Dagster's own alembic
        # downgrades): the Job brings it back to the installed head.
        older = downgrade(url, steps=2)
        assert older not in heads
        third = run_job(docs, server, tmp_path / "run3")
        assert set(third["before"].values()) == {older} and third["after"] == first["after"] and third["changed"]


def downgrade(url: str, steps: int) -> str:
    """Undo the newest ``steps`` migrations of Dagster's storage with its own alembic scripts."""
    import dagster_postgres.run_storage.run_storage as run_storage
    import sqlalchemy
    from dagster._core.storage.sql import run_alembic_downgrade
    from dagster_postgres.utils import pg_alembic_config

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            run_alembic_downgrade(pg_alembic_config(run_storage.__file__), conn, rev=f"-{steps}")
            return conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def test_a_new_image_is_a_new_job_and_the_same_synth_the_same_job(stack: SynthResult, tmp_path: Path) -> None:
    name = find(stack.documents, "Job", JOB)["metadata"]["name"]
    (tmp_path / "same").mkdir()
    (tmp_path / "upgraded").mkdir()
    assert find(cluster(tmp_path / "same").documents, "Job", JOB)["metadata"]["name"] == name
    assert find(cluster(tmp_path / "upgraded", tag="0.2.0").documents, "Job", JOB)["metadata"]["name"] != name
