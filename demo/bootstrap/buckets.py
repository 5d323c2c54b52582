"""Create the S3 buckets (Iceberg warehouse, Cube Store, Dagster logs) and one user + policy per
client on MinIO, idempotently.

Waits for the S3 server, lists what exists, creates only what is missing. A second run creates
nothing and says so. Only MinIO's root key is used, and only here (and in the reconcile, which runs
the same functions after a MinIO pod lost its data).

Users and policies go through MinIO's admin API with MinIO's own Python SDK (``minio.MinioAdmin``):
``info-canned-policy`` / ``add-canned-policy`` (replaces a policy), ``user-info`` / ``add-user``
(creates a user, or sets the secret of an existing one), ``set-user-or-group-policy`` (replaces the
user's policy mapping); routes in MinIO's cmd/admin-router.go. A missing user or policy answers
404 ``XMinioAdminNoSuchUser`` / ``XMinioAdminNoSuchPolicy`` (cmd/api-errors.go). An existing user's
secret cannot be read back: the step checks it by calling ``accountinfo`` (allowed to every user for
itself) with the client's own key, and re-sets it only when MinIO refuses that signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from demo.bootstrap.identities import minio_policy, normalized_policy
from demo.bootstrap.settings import BucketSettings, S3Identity
from demo.bootstrap.waiting import BootstrapError, NotReady, Reporter, wait_until_ready

# S3 error codes meaning "this key is wrong": waiting will not fix them.
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}


@dataclass(frozen=True)
class BucketOutcome:
    bucket: str
    outcome: Literal["created", "exists"]


def s3_client(settings: BucketSettings):  # noqa: ANN201 - boto3 clients are generated types
    """A path-style S3 client with the admin key; no botocore retries (we retry ourselves)."""
    return path_style_s3_client(
        settings.s3_endpoint, settings.s3_admin_access_key_id, settings.s3_admin_secret_access_key.get_secret_value(),
        settings.s3_region,
    )


def path_style_s3_client(endpoint: str, access_key_id: str, secret_access_key: str, region: str, *, connect_timeout: float = 5):  # noqa: ANN201
    """boto3's S3 client as every floe tool needs it: path-style (MinIO, SeaweedFS), one attempt
    per call (callers decide how to retry), bounded timeouts."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=30,
        ),
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _list_buckets(client, settings: BucketSettings) -> set[str]:  # noqa: ANN001
    """The probe: the names of existing buckets, or NotReady / BootstrapError."""
    try:
        response = client.list_buckets()
    except (BotoConnectionError, BotoCoreError) as exc:
        # Connection refused, DNS not resolvable yet, timeouts: the server is not up.
        raise NotReady(f"{type(exc).__name__}: {exc}") from exc
    except ClientError as exc:
        code = _error_code(exc)
        if code in _BAD_CREDENTIALS:
            raise BootstrapError(
                f"S3 at {settings.s3_endpoint} rejected the admin key ({code}). "
                f"{BucketSettings.env_name('s3_admin_access_key_id')} / "
                f"{BucketSettings.env_name('s3_admin_secret_access_key')} must equal MinIO's "
                "MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (same Secret): fix the Secret and re-run."
            ) from exc
        if _status(exc) >= 500 or code in {"ServiceUnavailable", "XMinioServerNotInitialized"}:
            raise NotReady(f"S3 answered {code or _status(exc)}") from exc
        raise BootstrapError(f"listing buckets at {settings.s3_endpoint} failed: {code}: {exc}") from exc
    return {bucket["Name"] for bucket in response.get("Buckets", [])}


def _create_bucket(client, bucket: str, settings: BucketSettings) -> Literal["created", "exists"]:  # noqa: ANN001
    kwargs: dict[str, object] = {"Bucket": bucket}
    # us-east-1 is S3's default region and must not be sent as a location constraint.
    if settings.s3_region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.s3_region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as exc:
        code = _error_code(exc)
        if code == "BucketAlreadyOwnedByYou":  # created meanwhile (another run): that is fine
            return "exists"
        raise BootstrapError(
            f"creating bucket {bucket!r} at {settings.s3_endpoint} failed: {code}: {exc}. "
            + (
                "The name is taken by another owner: choose another bucket name in the stack config."
                if code == "BucketAlreadyExists"
                else "Check MinIO's log; the Job retries."
            )
        ) from exc
    except (BotoConnectionError, BotoCoreError) as exc:
        raise BootstrapError(
            f"lost the connection to S3 while creating {bucket!r}: {exc}. The Job retries; "
            "a re-run only creates what is still missing."
        ) from exc
    return "created"


def ensure_buckets(settings: BucketSettings, *, report: Reporter = print) -> list[BucketOutcome]:
    """Wait for S3, then create each configured bucket that does not exist yet."""
    client = s3_client(settings)
    existing = wait_until_ready(
        f"S3 at {settings.s3_endpoint}",
        lambda: _list_buckets(client, settings),
        timeout=settings.wait_timeout_seconds,
        interval=settings.wait_interval_seconds,
        report=report,
        hint="Is MinIO running and is its Service reachable from this pod? The Job's backoffLimit retries.",
    )
    outcomes: list[BucketOutcome] = []
    for bucket in settings.buckets:
        outcome = "exists" if bucket in existing else _create_bucket(client, bucket, settings)
        report(f"bucket {bucket}: {outcome}")
        outcomes.append(BucketOutcome(bucket, outcome))
    return outcomes


# --- one MinIO user + policy per client ------------------------------------------------------------


@dataclass(frozen=True)
class IdentityOutcome:
    client: str
    outcome: Literal["created", "updated", "unchanged"]
    detail: str = ""


def minio_admin(endpoint: str, access_key_id: str, secret_access_key: str, region: str):  # noqa: ANN201
    """MinIO's admin client for ``endpoint`` (http(s)://host:port), one attempt per call, bounded timeouts."""
    import urllib3
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    url = urlsplit(endpoint)
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=30), retries=False)
    return MinioAdmin(
        endpoint=url.netloc, credentials=StaticProvider(access_key_id, secret_access_key), region=region,
        secure=url.scheme == "https", http_client=http,
    )


def _admin_code(exc: Exception) -> str:
    """The error code of a MinioAdminException body ({"Code": ...}), else its status."""
    body = getattr(exc, "_body", "") or ""
    try:
        return str(json.loads(body).get("Code", ""))
    except (ValueError, AttributeError):
        return str(getattr(exc, "_code", ""))


def _ensure_identity(admin, client: str, identity: S3Identity, settings: BucketSettings) -> IdentityOutcome:  # noqa: ANN001
    from minio.error import MinioAdminException

    policy_name = settings.policy_name(client)
    desired = minio_policy(identity.grant_tuple())
    changes: list[str] = []
    try:
        current = json.loads(admin.policy_info(policy_name))
        if normalized_policy(current) != normalized_policy(desired):
            admin.policy_add(policy_name, policy=desired)
            changes.append("policy updated")
    except MinioAdminException as exc:
        if _admin_code(exc) != "XMinioAdminNoSuchPolicy":
            raise
        admin.policy_add(policy_name, policy=desired)
        changes.append("policy created")

    access, secret = identity.access_key_id, identity.secret_access_key.get_secret_value()
    try:
        info = json.loads(admin.user_info(access))
    except MinioAdminException as exc:
        if _admin_code(exc) != "XMinioAdminNoSuchUser":
            raise
        admin.user_add(access, secret)
        info = {}
        changes.append("user created")
    else:
        try:
            minio_admin(settings.s3_endpoint, access, secret, settings.s3_region).account_info()
        except MinioAdminException as exc:
            if _admin_code(exc) not in {"SignatureDoesNotMatch", "InvalidAccessKeyId"}:
                raise
            admin.user_add(access, secret)  # the Secret holds another secret: set it (never rotate it)
            changes.append("secret set")
        if info.get("status") == "disabled":
            admin.user_enable(access)
            changes.append("user enabled")
    if info.get("policyName") != policy_name:
        admin.policy_set(policy_name, user=access)
        changes.append(f"policy {policy_name} set")
    if not changes:
        return IdentityOutcome(client, "unchanged")
    outcome: Literal["created", "updated"] = "created" if "user created" in changes else "updated"
    return IdentityOutcome(client, outcome, ", ".join(changes))


def ensure_identities(settings: BucketSettings, *, report: Reporter = print) -> list[IdentityOutcome]:
    """Create (or repair) each client's MinIO user and policy. Call after :func:`ensure_buckets`
    (which waited for the server)."""
    from minio.error import MinioAdminException
    from urllib3.exceptions import HTTPError

    admin = minio_admin(
        settings.s3_endpoint, settings.s3_admin_access_key_id,
        settings.s3_admin_secret_access_key.get_secret_value(), settings.s3_region,
    )
    outcomes = []
    for client, identity in sorted(settings.s3_identities.items()):
        try:
            outcome = _ensure_identity(admin, client, identity, settings)
        except MinioAdminException as exc:
            code = _admin_code(exc)
            hint = (
                "the root key is refused: it must equal MinIO's MINIO_ROOT_USER / MINIO_ROOT_PASSWORD"
                if code in _BAD_CREDENTIALS else "check MinIO's log; the Job retries"
            )
            raise BootstrapError(f"MinIO user/policy of {client} at {settings.s3_endpoint}: {code}: {exc}. {hint}") from exc
        except HTTPError as exc:
            raise BootstrapError(
                f"lost the connection to MinIO's admin API while setting up {client}: {exc}. The Job retries; "
                "a re-run only repairs what is still missing."
            ) from exc
        report(f"identity {client}: {outcome.outcome}" + (f" ({outcome.detail})" if outcome.detail else ""))
        outcomes.append(outcome)
    return outcomes
