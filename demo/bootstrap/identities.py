"""One object-store identity per client of the stack, with the least access that works.

The one table of who may do what on which bucket (:func:`client_grants`), rendered two ways:

- a MinIO policy per client (AWS IAM policy language, :func:`minio_policy`), which the bucket step
  creates with MinIO's admin API together with the client's user (demo/bootstrap/buckets.py);
- a SeaweedFS identity per client (``weed mini -s3.config``, :func:`seaweedfs_s3_config`) for the
  embedded lakehouse, so the same split runs on a real S3 server in the local main job and the tests.

Only the bucket step (and the reconcile, which repeats it after state loss) holds the root key; every
other pod gets its own client's key from its own Secret (constructs/secrets.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Access = Literal["read", "readwrite"]

#: The clients, as named in Secrets (``<prefix>-s3-<client with - for _>``), in the bucket step's
#: settings and in the credentials store. Identifiers: they are also environment-variable parts.
CLIENTS = ("polaris", "dagster_pipeline", "dagster_webserver", "cube", "cubestore", "verify", "backup")
Client = Literal["polaris", "dagster_pipeline", "dagster_webserver", "cube", "cubestore", "verify", "backup"]
#: Clients that exist only when their feature is configured (postgres.backup).
OPTIONAL_CLIENTS = ("backup",)

#: Why each client gets what it gets (the docs' table is generated from this).
PURPOSE: dict[str, str] = {
    "polaris": "writes table metadata, purges dropped tables",
    "dagster_pipeline": "user-code and run pods: writes the tables and the run logs",
    "dagster_webserver": "webserver and daemon: shows the run logs",
    "cube": "Cube API and refresh worker: read the marts",
    "cubestore": "Cube Store router and workers: pre-aggregation files",
    "verify": "the verification Job: counts the objects in both buckets",
    "backup": "the PostgreSQL backup CronJob (postgres.backup): uploads dump sets, prunes old ones",
}


@dataclass(frozen=True)
class Grant:
    bucket: str
    access: Access


def client_grants(
    *, warehouse: str, cubestore: str, dagster_logs: str, backups: str | None = None
) -> dict[str, tuple[Grant, ...]]:
    """Client -> its grants. Nobody but Cube Store touches Cube Store's bucket (the verifier only
    lists it); nobody but the pipeline writes the warehouse besides Polaris. ``backups``: the
    PostgreSQL backup bucket, when backups are on: only the backup client reads and writes it."""
    optional = {"backup": (Grant(backups, "readwrite"),)} if backups else {}
    return {
        "polaris": (Grant(warehouse, "readwrite"),),
        # S3ComputeLogManager in the step process uploads the logs and checks they are there
        # (head_object, cloud_storage_has_logs): read + write on the log bucket.
        "dagster_pipeline": (Grant(warehouse, "readwrite"), Grant(dagster_logs, "readwrite")),
        # The webserver downloads and lists logs (download_from_cloud_storage, get_log_keys_for_log_key_prefix).
        "dagster_webserver": (Grant(dagster_logs, "read"),),
        "cube": (Grant(warehouse, "read"),),
        "cubestore": (Grant(cubestore, "readwrite"),),
        "verify": (Grant(warehouse, "read"), Grant(cubestore, "read")),
        **optional,
    }


# --- MinIO (AWS IAM policy language; action names as MinIO's policy package spells them) ---------

#: On the bucket ARN: locate and list it (and list unfinished multipart uploads to write).
_READ_BUCKET = ("s3:GetBucketLocation", "s3:ListBucket")
_WRITE_BUCKET = ("s3:ListBucketMultipartUploads",)
#: On the objects ARN (``bucket/*``).
_READ_OBJECTS = ("s3:GetObject",)
_WRITE_OBJECTS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")


def minio_policy(grants: tuple[Grant, ...]) -> dict:
    """The IAM policy document allowing exactly ``grants`` (no ListAllMyBuckets, no admin action)."""
    statements = []
    for grant in grants:
        write = grant.access == "readwrite"
        statements.append({
            "Effect": "Allow",
            "Action": list(_READ_BUCKET + (_WRITE_BUCKET if write else ())),
            "Resource": [f"arn:aws:s3:::{grant.bucket}"],
        })
        statements.append({
            "Effect": "Allow",
            "Action": list(_READ_OBJECTS + (_WRITE_OBJECTS if write else ())),
            "Resource": [f"arn:aws:s3:::{grant.bucket}/*"],
        })
    return {"Version": "2012-10-17", "Statement": statements}


def normalized_policy(document: dict) -> frozenset:
    """A policy's meaning, independent of how a server re-serializes it (order, single strings)."""

    def as_set(value: object) -> frozenset:
        return frozenset([value] if isinstance(value, str) else value or [])

    return frozenset(
        (s.get("Effect"), as_set(s.get("Action")), as_set(s.get("Resource"))) for s in document.get("Statement", [])
    )


# --- SeaweedFS (`weed mini -s3.config`: identities with bucket-scoped actions) -------------------

#: SeaweedFS's coarse actions, scoped ``<Action>:<bucket>`` (weed/s3api/auth_credentials.go canDo).
#: Read = GET/HEAD objects, List = list the bucket, Write = PUT/DELETE objects and multipart uploads.
_SEAWEED_ACTIONS: dict[str, tuple[str, ...]] = {"read": ("Read", "List"), "readwrite": ("Read", "List", "Write")}


def seaweedfs_actions(grants: tuple[Grant, ...], *, table_bucket: str | None) -> list[str]:
    """The identity's actions. On the embedded lakehouse the warehouse is an S3 Tables bucket whose
    Iceberg REST catalog checks the same identity (client id = access key): readers get the
    s3tables Get*/List* actions, writers every s3tables action."""
    actions = [f"{action}:{g.bucket}" for g in grants for action in _SEAWEED_ACTIONS[g.access]]
    for grant in grants:
        if grant.bucket == table_bucket:
            actions += ["s3tables:*"] if grant.access == "readwrite" else ["s3tables:Get*", "s3tables:List*"]
    return actions


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str


def seaweedfs_s3_config(
    keys: dict[str, Keys], grants: dict[str, tuple[Grant, ...]], *, table_bucket: str | None
) -> dict:
    """The ``-s3.config`` JSON: one identity per client (the admin stays the AWS_* one of weed mini)."""
    return {
        "identities": [
            {
                "name": client,
                "credentials": [{"accessKey": keys[client].access_key_id, "secretKey": keys[client].secret_access_key}],
                "actions": seaweedfs_actions(grants[client], table_bucket=table_bucket),
            }
            for client in grants
        ]
    }
