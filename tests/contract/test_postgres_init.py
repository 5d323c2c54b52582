"""The PostgreSQL init script from dist/, run by real psql against a real server: each application
gets a login role with its Secret's password and a database it OWNS (PG 15+ needs ownership for
migrations to create tables in the public schema, MarquezProject/marquez#2604)."""

from __future__ import annotations

import pytest

from floe.synth import SynthResult
from tests.contract.conftest import connect_as
from tests.support.manifests import container, resolve_env


@pytest.mark.parametrize("app", ["dagster", "marquez", "polaris"])
def test_app_role_owns_its_database_and_can_migrate(stack: SynthResult, stack_postgres, app: str) -> None:
    docs = stack.documents
    password = resolve_env(container(docs, "Deployment", "floe-postgres"), docs)[f"FLOE_DB_{app.upper()}_PASSWORD"]
    with connect_as(stack_postgres, app, password, app) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
        assert cur.fetchone() == (app,)
        cur.execute("CREATE TABLE public.migration_probe (id int)")
        cur.execute("DROP TABLE public.migration_probe")


def test_wrong_password_is_refused(stack_postgres) -> None:
    import psycopg2

    with pytest.raises(psycopg2.OperationalError):
        with connect_as(stack_postgres, "dagster", "not-the-password", "dagster"):
            pass


def test_passwords_with_quotes_are_safe(tmp_path) -> None:
    """psql variables quote the password: a quote in it cannot break or inject SQL."""
    import subprocess

    from constructs.postgres import init_script
    from tests.support.pods import pg_env
    from tests.support.postgres import postgres_server

    with postgres_server(database="bootstrap") as server:
        env = {**pg_env(server), "POSTGRES_USER": server.user, "POSTGRES_DB": "postgres", "FLOE_DB_APP_PASSWORD": "it's; DROP ROLE floe;--"}
        result = subprocess.run(["bash", "-c", init_script(("app",))], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        with connect_as(server, "app", "it's; DROP ROLE floe;--", "app") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
