"""Contract fixtures: the synthesized stack, and a real PostgreSQL initialised by *our* init script."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from floe.synth import SynthResult
from tests.infra.conftest import synth
from tests.support.manifests import find, resolve_env, container
from tests.support.pods import build_local_image, interpreter_reachable_by_other_users, pg_env, world_traversable_tmpdir
from tests.support.postgres import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synth(tmp_path_factory.mktemp("contract"))


@pytest.fixture(scope="session")
def stack_postgres(stack: SynthResult) -> Iterator[PostgresServer]:
    """PostgreSQL whose application roles and databases were made by the init script in dist/,
    run the way the image's entrypoint runs it (bash, psql over the local socket)."""
    docs = stack.documents
    script = find(docs, "ConfigMap", "floe-postgres-init")["data"]["10-floe-databases.sh"]
    pg_container_env = resolve_env(container(docs, "Deployment", "floe-postgres"), docs)
    with postgres_server(database="bootstrap") as server:
        env = {
            **pg_env(server),
            **{k: v for k, v in pg_container_env.items() if k.startswith("FLOE_DB_")},
            # The entrypoint's own superuser; in the pod POSTGRES_USER comes from the Secret.
            "POSTGRES_USER": server.user,
            "POSTGRES_DB": pg_container_env["POSTGRES_DB"],
        }
        result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        yield server


def connect_as(server: PostgresServer, user: str, password: str, database: str):
    return contextlib.closing(psycopg2.connect(host=server.host, port=server.port, user=user, password=password, dbname=database))


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    """Where local 'pods' live: reachable by the pods' non-root uids (pytest's tmp is root-only)."""
    path = world_traversable_tmpdir("floe-pods-")
    with interpreter_reachable_by_other_users():
        yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def local_image(scratch: Path) -> dict[str, Path]:
    """The project image's files, laid out by the Dockerfile's steps, owned by root."""
    return build_local_image(scratch / "image")
