"""State loss heals: the reconcile CronJob's container, run exactly as dist/ says, rebuilds what a
replaced PostgreSQL or MinIO pod lost, and a second run changes nothing.

Real parts: PostgreSQL (roles/databases made by dist/'s init script), SeaweedFS (S3 for the buckets;
its Iceberg REST catalog stands in for Polaris + MinIO on the data path), Dagster storage. MinIO's
admin API (the clients' users and policies) is tests/support/minio_front.py in front of SeaweedFS. Polaris is
tests/bootstrap/fake_polaris.py (bodies validated with the apache-polaris SDK). The reconcile container
comes from dist/ via tests/support/pods.py `materialize`: its command, env (Secrets resolved) and the
mounted dagster.yaml; only the addresses below are rewritten to the local stand-ins. The realm
bootstrap init container (a JVM image) cannot run here: the test checks its args carry the root
Secret's credentials and re-creates the fake's realm with exactly those.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bootstrap"))

from fake_polaris import FakePolaris  # noqa: E402

from demo.bootstrap.reconcile import parse_summary  # noqa: E402
from demo.lakehouse.local import LocalLakehouse, local_lakehouse  # noqa: E402
from floe.synth import SynthResult  # noqa: E402
from tests.infra.conftest import synth  # noqa: E402
from tests.support.manifests import container, expand_args, find, resolve_env  # noqa: E402
from tests.support.minio_front import MinioFront  # noqa: E402
from tests.support.pods import dockerfile_env, materialize, pg_env  # noqa: E402
from tests.support.postgres import PostgresServer, postgres_server  # noqa: E402

pytestmark = pytest.mark.timeout(600)
CRON = "floe-reconcile"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synth(tmp_path_factory.mktemp("recovery"))


def init_databases(stack: SynthResult, server: PostgresServer) -> None:
    """What a new PostgreSQL pod does on its empty emptyDir: dist/'s init script."""
    docs = stack.documents
    script = find(docs, "ConfigMap", "floe-postgres-init")["data"]["10-floe-databases.sh"]
    pg = resolve_env(container(docs, "Deployment", "floe-postgres"), docs)
    env = {**pg_env(server), **{k: v for k, v in pg.items() if k.startswith("FLOE_DB_")},
           "POSTGRES_USER": server.user, "POSTGRES_DB": pg["POSTGRES_DB"]}
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True, timeout=60)


def wipe_databases(server: PostgresServer) -> None:
    """The PostgreSQL pod replaced: every application database and role is gone."""
    with contextlib.closing(psycopg2.connect(host=server.host, port=server.port, user=server.user,
                                             password=server.password, dbname="postgres")) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            for app in ("dagster", "marquez", "polaris"):
                cur.execute(f'DROP DATABASE IF EXISTS "{app}" WITH (FORCE)')
                cur.execute(f'DROP ROLE IF EXISTS "{app}"')


def realm_credentials(stack: SynthResult) -> tuple[str, str, str]:
    """The realm container's `-c realm,id,secret`, as the kubelet expands it from the Secret."""
    docs = stack.documents
    realm = container(docs, "CronJob", CRON, "bootstrap-realm")
    # The args the image's entrypoint gets (the command only decides whether to start it).
    argv = expand_args({k: v for k, v in realm.items() if k != "command"}, resolve_env(realm, docs))
    assert argv[:3] == ["bootstrap", "-r", "floe"], argv
    name, client_id, secret = argv[argv.index("-c") + 1].split(",")
    # The same container (and so the same credentials) as the Polaris pod's own init container.
    assert realm["args"] == container(docs, "Deployment", "floe-polaris", "bootstrap-realm")["args"]
    return name, client_id, secret


@pytest.fixture(scope="module")
def parts(stack: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PostgresServer, LocalLakehouse, FakePolaris, MinioFront]]:
    realm, root_id, root_secret = realm_credentials(stack)
    with postgres_server(database="bootstrap") as pg, local_lakehouse(tmp_path_factory.mktemp("weed")) as lake, MinioFront(lake) as front:
        init_databases(stack, pg)
        fake = FakePolaris(realm=realm, root_client_id=root_id, root_client_secret=root_secret).start()
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{lake.s3_port}", aws_access_key_id=lake.access_key,
                          aws_secret_access_key=lake.secret_key, region_name="us-east-1")

        def exists(location: str) -> bool:
            bucket, _, key = location.removeprefix("s3://").partition("/")
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except Exception:  # noqa: BLE001
                return False
            return True

        fake.object_exists = exists
        try:
            yield pg, lake, fake, front
        finally:
            fake.stop()


def run_reconcile(stack: SynthResult, parts, root: Path) -> dict:  # noqa: ANN001
    pg, lake, fake, front = parts
    docs = stack.documents
    minio_user = resolve_env(container(docs, "Deployment", "floe-minio"), docs)
    rewrites = {
        "http://floe-minio:9000": front.endpoint,
        "http://floe-polaris:8181": fake.url,
        "floe-postgres": pg.host,
        "5432": str(pg.port),
    }
    pod = materialize(docs, "CronJob", CRON, "reconcile", root=root, rewrites=rewrites, image_env=dockerfile_env())
    # SeaweedFS has its own admin key: the only credential not taken from dist/ (MinIO's root user).
    for name, value in pod.env.items():
        if value == minio_user["MINIO_ROOT_USER"]:
            pod.env[name] = lake.access_key
        elif value == minio_user["MINIO_ROOT_PASSWORD"]:
            pod.env[name] = lake.secret_key
    pod.env["FLOE_WAIT_TIMEOUT_SECONDS"] = "30"
    result = pod.run(pod.argv, timeout=300)
    summary = parse_summary(result.stdout)
    assert result.returncode == 0 and summary is not None, result.stdout[-3000:] + result.stderr[-3000:]
    return summary


def dagster_tables(stack: SynthResult, pg: PostgresServer) -> set[str]:
    env = resolve_env(container(stack.documents, "Deployment", "floe-dagster-daemon"), stack.documents)
    with contextlib.closing(psycopg2.connect(host=pg.host, port=pg.port, user="dagster", dbname="dagster",
                                             password=env["FLOE_DAGSTER_PG_PASSWORD"])) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cur.fetchall()}


def lose_all_state(stack: SynthResult, parts) -> None:  # noqa: ANN001
    """Both pods replaced: PostgreSQL empty (init script re-run, as on a new emptyDir), Polaris' realm
    re-bootstrapped by the admin tool with the same -c credentials, MinIO's cubestore bucket gone
    and its users and policies with it."""
    pg, lake, fake, front = parts
    wipe_databases(pg)
    init_databases(stack, pg)
    realm, root_id, root_secret = realm_credentials(stack)
    fake.state = type(fake.state)(realm, root_id, root_secret)
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{lake.s3_port}", aws_access_key_id=lake.access_key,
                      aws_secret_access_key=lake.secret_key, region_name="us-east-1")
    if "cubestore" in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.delete_bucket(Bucket="cubestore")
    front.wipe()


def test_wiped_state_comes_back_and_a_second_run_changes_nothing(stack: SynthResult, parts, tmp_path: Path) -> None:  # noqa: ANN001
    pg, lake, fake, front = parts
    # The module's other tests reconcile on these parts too: start from nothing whatever ran before.
    lose_all_state(stack, parts)
    first = run_reconcile(stack, parts, tmp_path / "run1")
    assert first["ok"] and first["state_lost"], first  # a fresh stack: everything created
    # One MinIO user per client, with the key in that client's Secret (what each pod uses).
    assert {f"s3-identity:{c}:created" for c in ("polaris", "dagster_pipeline", "dagster_webserver", "cube", "cubestore", "verify")} <= set(first["changed"])
    cube_key = resolve_env(container(stack.documents, "Deployment", "floe-cube"), stack.documents)["FLOE_S3_ACCESS_KEY_ID"]
    users = {key: dict(user) for key, user in front.users.items()}
    assert users[cube_key]["policy"] == "floe-cube"
    principals = {name: dict(c) for name, c in fake.state.principals.items()}
    assert {"runs", "event_logs", "jobs"} <= dagster_tables(stack, pg)
    second = run_reconcile(stack, parts, tmp_path / "run2")
    assert second["ok"] and not second["state_lost"] and second["changed"] == [], second

    lose_all_state(stack, parts)
    assert not dagster_tables(stack, pg)

    third = run_reconcile(stack, parts, tmp_path / "run3")
    assert third["ok"] and third["state_lost"], third
    changed = set(third["changed"])
    assert "bucket:cubestore:created" in changed and "catalog:floe:created" in changed
    assert "dagster:storage:created" in changed
    assert "s3-identity:cube:created" in changed and "s3-identity:cubestore:created" in changed
    assert front.users == users  # every user back, with the same keys and policies
    assert {"runs", "event_logs", "jobs"} <= dagster_tables(stack, pg)
    # Same credentials as before the loss (from the Secrets), grants and assignments back.
    assert fake.state.principals == principals
    assert ("floe", "floe_writer") in fake.state.catalog_roles
    assert fake.state.grants[("floe", "floe_writer")] == [{"type": "catalog", "privilege": "CATALOG_MANAGE_CONTENT"}]
    assert fake.state.principal_roles_of_principal["floe_reader"] == {"floe_reader"}
    assert {ns for (_, (ns,)) in fake.state.namespaces} == {"raw", "staging", "marts"}
    assert not fake.errors

    fourth = run_reconcile(stack, parts, tmp_path / "run4")
    assert fourth["ok"] and not fourth["state_lost"] and fourth["changed"] == [], fourth


def test_tables_whose_files_went_with_minio_are_dropped_and_others_kept(stack: SynthResult, parts, tmp_path: Path) -> None:  # noqa: ANN001
    """MinIO alone lost: the catalog still lists tables whose metadata is gone. Those (and only
    those) are dropped, so the sensor sees them missing and re-seeds them."""
    pg, lake, fake, _ = parts
    run_reconcile(stack, parts, tmp_path / "setup")
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{lake.s3_port}", aws_access_key_id=lake.access_key,
                      aws_secret_access_key=lake.secret_key, region_name="us-east-1")
    s3.create_bucket(Bucket="warehouse") if "warehouse" not in {b["Name"] for b in s3.list_buckets()["Buckets"]} else None
    kept = "s3://warehouse/raw/customers/metadata/00001-kept.metadata.json"
    s3.put_object(Bucket="warehouse", Key="raw/customers/metadata/00001-kept.metadata.json", Body=b"{}")
    fake.state.tables[("floe", "raw", "customers")] = kept
    fake.state.tables[("floe", "raw", "orders")] = "s3://warehouse/raw/orders/metadata/00001-lost.metadata.json"
    fake.state.tables[("floe", "marts", "fct_orders")] = "s3://warehouse/marts/fct_orders/metadata/00003-lost.metadata.json"

    summary = run_reconcile(stack, parts, tmp_path / "orphans")
    assert set(summary["changed"]) == {"table:floe.raw.orders:dropped", "table:floe.marts.fct_orders:dropped"}, summary
    assert set(fake.state.tables) == {("floe", "raw", "customers")}
    again = run_reconcile(stack, parts, tmp_path / "orphans-again")
    assert again["changed"] == [] and not again["state_lost"]


def test_the_sensor_reseeds_after_the_loss_and_a_generation_run_succeeds(tmp_path: Path) -> None:
    """The seed decision after a wipe: tables gone (or dropped as orphans) -> a NEW seed request even
    though the cursor says a seed happened before; then the seed and an append succeed on SeaweedFS."""
    from demo.ingest import append_orders, raw_table_counts, seed_raw_tables
    from demo.orchestration.raw import decide_seed

    with local_lakehouse(tmp_path / "weed") as lake:
        settings = lake.settings
        first = decide_seed(raw_table_counts(settings), None)
        assert first.seed
        seed_raw_tables(settings, run_key=first.run_key, n_customers=20, n_products=10, n_orders=30)
        full = decide_seed(raw_table_counts(settings), first.cursor)
        assert not full.seed
        cursor = full.cursor
    # MinIO (here: the whole SeaweedFS) replaced: a new, empty lakehouse; Dagster's cursor kept.
    with local_lakehouse(tmp_path / "weed-new") as lake:
        settings = lake.settings
        counts = raw_table_counts(settings)
        assert all(v is None for v in counts.values())
        again = decide_seed(counts, cursor)
        assert again.seed and again.run_key != first.run_key, again
        seed_raw_tables(settings, run_key=again.run_key, n_customers=20, n_products=10, n_orders=30)
        result = append_orders(settings, run_key="tick-after-recovery", n_orders=5)
        assert result.rows_written["orders"] == 5
        assert all(v for v in raw_table_counts(settings).values())


# --- the reconcile is light when nothing is lost (issue 15) --------------------------------------


def run_realm_check(stack: SynthResult, parts, root: Path, polaris_url: str | None = None) -> tuple[bool, str]:  # noqa: ANN001
    """check-realm exactly as dist/ runs it, against the fake Polaris: (marker left?, its output)."""
    from constructs.reconcile import REALM_MARKER

    _, _, fake, _ = parts
    pod = materialize(stack.documents, "CronJob", CRON, "check-realm", root=root,
                      rewrites={"http://floe-polaris:8181": polaris_url or fake.url}, image_env=dockerfile_env())
    result = pod.run(pod.argv, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return (root / REALM_MARKER.lstrip("/")).exists(), result.stdout


def run_realm_container(stack: SynthResult, root: Path) -> list[str] | None:
    """bootstrap-realm's own command from dist/ (bash, as in the image), its marker path mapped to
    ``root`` and the image's entrypoint to a recorder: the argv the JVM would have got, or None."""
    from constructs.reconcile import ADMIN_TOOL_ENTRYPOINT, REALM_MARKER

    docs = stack.documents
    realm = container(docs, "CronJob", CRON, "bootstrap-realm")
    recorder = root / "run-java.sh"
    record = root / "jvm-argv.txt"
    recorder.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > "{record}"\n')
    recorder.chmod(0o755)
    command = [part.replace(REALM_MARKER, str(root / REALM_MARKER.lstrip("/"))).replace(ADMIN_TOOL_ENTRYPOINT, str(recorder))
               for part in realm["command"]]
    argv = expand_args({**realm, "command": command}, resolve_env(realm, docs))
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return record.read_text().splitlines() if record.exists() else None


def test_an_intact_realm_starts_no_admin_tool_and_a_lost_one_does(stack: SynthResult, parts, tmp_path: Path) -> None:  # noqa: ANN001
    _, _, fake, _ = parts
    realm, root_id, root_secret = realm_credentials(stack)
    fake.state = type(fake.state)(realm, root_id, root_secret)
    present, out = run_realm_check(stack, parts, tmp_path / "intact")
    assert not present and "intact" in out
    assert run_realm_container(stack, tmp_path / "intact") is None  # no JVM
    # The realm lost with PostgreSQL: the root principal is refused, the admin tool runs with the
    # very args of the Polaris pod's own bootstrap container.
    fake.state = type(fake.state)(realm, "0" * 16, "0" * 32)
    present, out = run_realm_check(stack, parts, tmp_path / "lost")
    assert present and "missing" in out
    argv = run_realm_container(stack, tmp_path / "lost")
    assert argv is not None and argv[:3] == ["bootstrap", "-r", realm] and argv[-1] == f"{realm},{root_id},{root_secret}"
    # Polaris unreachable: undecided, so the admin tool runs (as every run did before).
    present, out = run_realm_check(stack, parts, tmp_path / "down", polaris_url="http://127.0.0.1:9")
    assert present and "unknown" in out
    fake.state = type(fake.state)(realm, root_id, root_secret)


def test_only_the_admin_tool_can_touch_polaris_tables(stack: SynthResult) -> None:
    """Of the reconcile pod's containers only bootstrap-realm holds the Polaris database's
    credentials: the check and the reconcile step talk to Polaris over HTTP and cannot take a lock
    on its tables; bootstrap-realm starts no JVM on an intact realm (test above)."""
    docs = stack.documents
    pod = find(docs, "CronJob", CRON)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    readers = {c["name"] for c in pod["containers"] + pod["initContainers"]
               for var in c.get("env") or [] if (var.get("valueFrom") or {}).get("secretKeyRef", {}).get("name") == "floe-db-polaris"}
    assert readers == {"bootstrap-realm"}


def test_polaris_writes_are_not_blocked_while_the_reconcile_runs_on_intact_state(stack: SynthResult, parts, tmp_path: Path) -> None:  # noqa: ANN001
    """Real PostgreSQL: a writer on a table of the Polaris database (a stand-in for ``entities``)
    with a 200 ms lock_timeout never waits while check-realm and the reconcile run on intact state,
    and pg_locks shows no other session holding a lock on that table that blocks writers. The same probe does catch what
    the admin tool's schema re-run did: ``CREATE INDEX IF NOT EXISTS`` in an open transaction holds
    a ShareLock and the writer times out (so this test can fail)."""
    import threading

    pg, _, fake, _ = parts
    realm, root_id, root_secret = realm_credentials(stack)
    fake.state = type(fake.state)(realm, root_id, root_secret)
    run_reconcile(stack, parts, tmp_path / "warm")  # everything created: the state is intact now

    def connect() -> psycopg2.extensions.connection:
        conn = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="polaris")
        conn.autocommit = True
        return conn

    with contextlib.closing(connect()) as setup, setup.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS floe_probe; CREATE TABLE IF NOT EXISTS floe_probe.entities (id bigint, name text)")
        cur.execute("CREATE INDEX IF NOT EXISTS entities_name ON floe_probe.entities (name)")

    def writer_blocked(seconds: float, during: threading.Thread | None = None) -> tuple[int, set[str]]:
        """(writes that hit the lock timeout, lock modes other sessions held on the table)."""
        import time

        blocked, modes = 0, set()
        with contextlib.closing(connect()) as conn, conn.cursor() as cur:
            cur.execute("SET lock_timeout = '200ms'")
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline or (during is not None and during.is_alive()):
                try:
                    cur.execute("INSERT INTO floe_probe.entities VALUES (1, 'x')")
                except psycopg2.errors.LockNotAvailable:
                    blocked += 1
                cur.execute("SELECT mode FROM pg_locks WHERE relation = 'floe_probe.entities'::regclass AND pid <> pg_backend_pid()")
                modes |= {row[0] for row in cur.fetchall()}
        return blocked, modes

    # What every run did before: the schema script's CREATE INDEX IF NOT EXISTS, inside one transaction.
    def old_admin_tool() -> None:
        with contextlib.closing(psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="polaris")) as conn, conn.cursor() as cur:
            cur.execute("CREATE INDEX IF NOT EXISTS entities_name ON floe_probe.entities (name)")
            cur.execute("SELECT pg_sleep(1.5)")
            conn.commit()

    old = threading.Thread(target=old_admin_tool)
    old.start()
    blocked, modes = writer_blocked(1.0, old)
    old.join()
    assert blocked and "ShareLock" in modes, (blocked, modes)

    # Now: check-realm + the reconcile step on intact state, the writer beside them.
    results: dict[str, object] = {}

    def reconcile_now() -> None:
        results["present"] = run_realm_check(stack, parts, tmp_path / "check")[0]
        results["summary"] = run_reconcile(stack, parts, tmp_path / "run")

    run = threading.Thread(target=reconcile_now)
    run.start()
    blocked, modes = writer_blocked(0.5, run)
    run.join()
    assert results["present"] is False  # no admin tool
    summary = results["summary"]
    assert isinstance(summary, dict) and summary["ok"] and not summary["state_lost"], summary
    # Autovacuum may hold ShareUpdateExclusiveLock on the probe table; what blocks a writer's
    # RowExclusiveLock is one of these (PostgreSQL's lock conflict table).
    blocks_writers = {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"}
    assert blocked == 0 and not modes & blocks_writers, (blocked, modes)
