"""One object-store identity per client (issue 19), proven on a real S3 server.

The bucket step creates each client's MinIO user and policy through MinIO's admin API (MinIO's own
SDK); here the admin API is tests/support/minio_front.py (the SDK's wire format, MinIO's routes and
errors) in front of a real SeaweedFS, to which the users' policies are applied as identities. So
every allow and refusal below is SeaweedFS' S3 answering a real request with the key the bucket step
set up: Cube's key reads the marts and is refused a write and a delete, the pipeline's writes, a
wrong key is refused; a second run changes nothing; after MinIO loses its users the step restores
them with the same keys.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError

from demo.bootstrap.buckets import IdentityOutcome, ensure_buckets, ensure_identities, path_style_s3_client
from demo.bootstrap.identities import CLIENTS, client_grants, minio_policy, normalized_policy
from demo.bootstrap.settings import BucketSettings
from demo.bootstrap.waiting import BootstrapError
from demo.ingest import catalog
from demo.lakehouse.local import LocalLakehouse, local_lakehouse
from demo.lakehouse.settings import LakehouseSettings
from tests.support.minio_front import MinioFront, grants_of

WAREHOUSE, CUBESTORE, LOGS, BACKUPS = "warehouse", "cubestore", "dagster-logs", "floe-backups"
# With postgres.backup on, so every client (the optional backup client too) is provisioned.
GRANTS = client_grants(warehouse=WAREHOUSE, cubestore=CUBESTORE, dagster_logs=LOGS, backups=BACKUPS)
KEYS = {client: (secrets.token_hex(8), secrets.token_urlsafe(24)) for client in CLIENTS}


def settings_for(front: MinioFront, **overrides: object) -> BucketSettings:
    values: dict[str, object] = {
        "s3_endpoint": front.endpoint,
        "s3_admin_access_key_id": front.root[0],
        "s3_admin_secret_access_key": front.root[1],
        "buckets": f"{WAREHOUSE},{CUBESTORE},{LOGS},{BACKUPS}",
        "s3_identities": {
            client: {"access_key_id": KEYS[client][0], "secret_access_key": KEYS[client][1],
                     "grants": {g.bucket: g.access for g in grants}}
            for client, grants in GRANTS.items()
        },
        "wait_timeout_seconds": 10,
        "wait_interval_seconds": 0.2,
    }
    values.update(overrides)
    return BucketSettings(_env_file=None, **values)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioFront]:
    with local_lakehouse(tmp_path_factory.mktemp("seaweedfs-identities")) as lake, MinioFront(lake) as running:
        yield running


def s3(front: MinioFront, client: str, *, secret: str | None = None):  # noqa: ANN201
    key, real_secret = KEYS[client]
    return path_style_s3_client(front.endpoint, key, secret or real_secret, "us-east-1")


def code(call) -> str:  # noqa: ANN001
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def lake_as(front: MinioFront, client: str) -> LakehouseSettings:
    """LakehouseSettings with one client's key (SeaweedFS' catalog authenticates S3 identities)."""
    lake: LocalLakehouse = front.lake
    fields = {**lake.settings_fields(), "s3_endpoint": front.endpoint}
    fields.update(catalog_client_id=KEYS[client][0], catalog_client_secret=KEYS[client][1],
                  s3_access_key_id=KEYS[client][0], s3_secret_access_key=KEYS[client][1])
    return LakehouseSettings.model_validate(fields)


@pytest.fixture(scope="module")
def provisioned(front: MinioFront) -> list[IdentityOutcome]:
    settings = settings_for(front)
    ensure_buckets(settings, report=lambda _: None)
    outcomes = ensure_identities(settings, report=lambda _: None)
    # SeaweedFS reloads its identities within a second.
    front.wait_applied(lambda: s3(front, "cubestore").list_objects_v2(Bucket=CUBESTORE))
    return outcomes


def test_first_run_creates_every_client_then_a_second_run_changes_nothing(front: MinioFront, provisioned: list[IdentityOutcome]) -> None:
    assert {o.client: o.outcome for o in provisioned} == dict.fromkeys(CLIENTS, "created")
    assert {c: front.users[KEYS[c][0]]["policy"] for c in CLIENTS} == {c: f"floe-{c.replace('_', '-')}" for c in CLIENTS}
    before = len(front.requests)
    lines: list[str] = []
    second = ensure_identities(settings_for(front), report=lines.append)
    assert [o.outcome for o in second] == ["unchanged"] * len(CLIENTS)
    assert lines == [f"identity {c}: unchanged" for c in sorted(CLIENTS)]
    # Only reads on the second run: no add-user, no add-canned-policy, no set-policy.
    assert {r.split()[0] for r in front.requests[before:]} == {"GET"}


def test_pipeline_writes_and_cube_reads_the_marts_but_may_not_write_or_delete(front: MinioFront, provisioned: list[IdentityOutcome]) -> None:
    # The pipeline (its own key, catalog and S3 alike) creates a mart table and writes its data.
    pipeline = catalog(lake_as(front, "dagster_pipeline"))
    pipeline.create_namespace_if_not_exists("marts")
    table = pipeline.create_table("marts.revenue", schema=pa.schema([("amount", pa.int64())]))
    table.append(pa.table({"amount": [3, 4]}))
    data_key = next(
        o["Key"] for o in s3(front, "dagster_pipeline").list_objects_v2(Bucket=WAREHOUSE, Prefix="marts/")["Contents"]
        if o["Key"].endswith(".parquet")
    )
    # Cube reads the mart through the catalog with its own key...
    rows = catalog(lake_as(front, "cube")).load_table("marts.revenue").scan().to_arrow()
    assert sorted(rows.column("amount").to_pylist()) == [3, 4]
    cube = s3(front, "cube")
    assert code(lambda: cube.get_object(Bucket=WAREHOUSE, Key=data_key)) == "ok"
    # ...and is refused a write and a delete.
    assert code(lambda: cube.put_object(Bucket=WAREHOUSE, Key=data_key.rsplit("/", 1)[0] + "/x.parquet", Body=b"x")) == "AccessDenied"
    assert code(lambda: cube.delete_object(Bucket=WAREHOUSE, Key=data_key)) == "AccessDenied"
    assert code(lambda: cube.get_object(Bucket=WAREHOUSE, Key=data_key)) == "ok"  # still there
    # Each other client stays in its lane.
    assert code(lambda: s3(front, "cubestore").get_object(Bucket=WAREHOUSE, Key=data_key)) == "AccessDenied"
    assert code(lambda: s3(front, "cubestore").put_object(Bucket=CUBESTORE, Key="p/1", Body=b"x")) == "ok"
    assert code(lambda: s3(front, "dagster_pipeline").put_object(Bucket=CUBESTORE, Key="p/2", Body=b"x")) == "AccessDenied"
    assert code(lambda: s3(front, "dagster_pipeline").put_object(Bucket=LOGS, Key="run/1.out", Body=b"log")) == "ok"
    assert code(lambda: s3(front, "dagster_webserver").get_object(Bucket=LOGS, Key="run/1.out")) == "ok"
    assert code(lambda: s3(front, "dagster_webserver").put_object(Bucket=LOGS, Key="run/2.out", Body=b"x")) == "AccessDenied"
    assert code(lambda: s3(front, "dagster_webserver").get_object(Bucket=WAREHOUSE, Key=data_key)) == "AccessDenied"
    assert code(lambda: s3(front, "verify").list_objects_v2(Bucket=CUBESTORE)) == "ok"
    assert code(lambda: s3(front, "verify").delete_object(Bucket=CUBESTORE, Key="p/1")) == "AccessDenied"
    # The backup CronJob's key: uploads, lists and prunes its sets, and touches nothing else.
    backup = s3(front, "backup")
    assert code(lambda: backup.put_object(Bucket=BACKUPS, Key="sets/1/dagster.dump", Body=b"x")) == "ok"
    assert code(lambda: backup.list_objects_v2(Bucket=BACKUPS, Prefix="sets/")) == "ok"
    assert code(lambda: backup.delete_object(Bucket=BACKUPS, Key="sets/1/dagster.dump")) == "ok"
    assert code(lambda: backup.get_object(Bucket=WAREHOUSE, Key=data_key)) == "AccessDenied"
    assert code(lambda: s3(front, "dagster_pipeline").put_object(Bucket=BACKUPS, Key="sets/2/x", Body=b"x")) == "AccessDenied"


def test_a_wrong_identity_is_refused(front: MinioFront, provisioned: list[IdentityOutcome]) -> None:
    wrong_secret = s3(front, "cube", secret="not-the-secret-of-cube")
    assert code(lambda: wrong_secret.list_objects_v2(Bucket=WAREHOUSE)) == "SignatureDoesNotMatch"
    stranger = path_style_s3_client(front.endpoint, "nobody-at-all", "whatever-secret", "us-east-1")
    assert code(lambda: stranger.list_objects_v2(Bucket=WAREHOUSE)) == "InvalidAccessKeyId"
    # A client key cannot manage MinIO either.
    others = {c: i for c, i in settings_for(front).s3_identities.items() if c != "cube"}
    as_cube = settings_for(front, s3_admin_access_key_id=KEYS["cube"][0], s3_admin_secret_access_key=KEYS["cube"][1], s3_identities=others)
    with pytest.raises(BootstrapError, match="AccessDenied"):
        ensure_identities(as_cube, report=lambda _: None)


def test_repairs_a_drifted_secret_and_policy(front: MinioFront, provisioned: list[IdentityOutcome]) -> None:
    front.users[KEYS["cube"][0]]["secret"] = "someone-else-set-this"
    front.policies["floe-cube"] = minio_policy(client_grants(warehouse=WAREHOUSE, cubestore=CUBESTORE, dagster_logs=LOGS)["polaris"])
    outcomes = {o.client: o for o in ensure_identities(settings_for(front), report=lambda _: None)}
    assert outcomes["cube"].outcome == "updated"
    assert outcomes["cube"].detail == "policy updated, secret set"
    assert {c for c, o in outcomes.items() if o.outcome != "unchanged"} == {"cube"}
    front.wait_applied(lambda: s3(front, "cube").list_objects_v2(Bucket=WAREHOUSE))
    assert code(lambda: s3(front, "cube").put_object(Bucket=WAREHOUSE, Key="marts/revenue/data/y.parquet", Body=b"x")) == "AccessDenied"


def test_restores_every_user_after_minio_lost_its_data(front: MinioFront, provisioned: list[IdentityOutcome]) -> None:
    front.wipe()
    def forgotten() -> None:
        assert code(lambda: s3(front, "cube").list_objects_v2(Bucket=WAREHOUSE)) == "InvalidAccessKeyId"

    front.wait_applied(forgotten)
    outcomes = ensure_identities(settings_for(front), report=lambda _: None)
    assert [o.outcome for o in outcomes] == ["created"] * len(CLIENTS)
    # Same keys as before (from the Secrets): every client works again, nothing to redistribute.
    front.wait_applied(lambda: s3(front, "cube").list_objects_v2(Bucket=WAREHOUSE))
    assert code(lambda: s3(front, "dagster_pipeline").put_object(Bucket=LOGS, Key="run/3.out", Body=b"x")) == "ok"
    assert [o.outcome for o in ensure_identities(settings_for(front), report=lambda _: None)] == ["unchanged"] * len(CLIENTS)


def test_policies_allow_exactly_the_grants() -> None:
    """The MinIO policy of each client reads back as exactly its grants (the stand-in's reading, the
    one S3 enforces above), names only its buckets, and grants no bucket creation, listing of all
    buckets or admin action."""
    for client, grants in GRANTS.items():
        policy = minio_policy(grants)
        assert set(grants_of(policy)) == set(grants), client
        actions = {a for s in policy["Statement"] for a in s["Action"]}
        assert not {a for a in actions if not a.startswith("s3:")}, client
        assert not actions & {"s3:*", "s3:CreateBucket", "s3:DeleteBucket", "s3:ListAllMyBuckets", "s3:PutBucketPolicy"}
        resources = {r for s in policy["Statement"] for r in s["Resource"]}
        assert resources == {f"arn:aws:s3:::{g.bucket}{suffix}" for g in grants for suffix in ("", "/*")}
    # Re-serialized (order, single strings), the same policy is recognised as unchanged.
    policy = minio_policy(GRANTS["cube"])
    shuffled = {"Version": "2012-10-17", "Statement": [
        {**s, "Action": list(reversed(s["Action"])) if len(s["Action"]) > 1 else s["Action"][0]} for s in reversed(policy["Statement"])
    ]}
    assert normalized_policy(shuffled) == normalized_policy(policy)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"s3_identities": {"grafana": {"access_key_id": "abcd", "secret_access_key": "x" * 12, "grants": {WAREHOUSE: "read"}}}}, "unknown clients ['grafana']"),
        ({"s3_identities": {"cube": {"access_key_id": "abcd", "secret_access_key": "x" * 12, "grants": {"elsewhere": "read"}}}}, "grants on buckets this step does not create"),
        ({"s3_identities": {"cube": {"access_key_id": "abcd", "secret_access_key": "short", "grants": {WAREHOUSE: "read"}}}}, "at least 8 items"),
        ({"s3_identities": {"cube": {"access_key_id": "abcd", "secret_access_key": "x" * 12, "grants": {WAREHOUSE: "write-only"}}}}, "'read' or 'readwrite'"),
        ({"s3_identities": {"cube": {"access_key_id": "root-key", "secret_access_key": "x" * 12, "grants": {WAREHOUSE: "read"}}}}, "root key must not be a client's key"),
    ],
)
def test_bad_identity_settings_are_refused(overrides: dict, fragment: str) -> None:
    values = {"s3_endpoint": "http://127.0.0.1:9", "s3_admin_access_key_id": "root-key", "s3_admin_secret_access_key": "root-secret",
              "buckets": WAREHOUSE, **overrides}
    with pytest.raises(ValueError, match=None) as failure:
        BucketSettings(_env_file=None, **values)
    assert fragment in str(failure.value)
