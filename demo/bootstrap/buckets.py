"""Create the S3 buckets (Iceberg warehouse, Cube Store) on MinIO, idempotently.

Waits for the S3 server, lists what exists, creates only what is missing. A second run creates
nothing and says so. Only MinIO's root key is used, and only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from demo.bootstrap.settings import BucketSettings
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
