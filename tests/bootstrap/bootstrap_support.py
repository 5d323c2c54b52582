"""Helpers shared by the bootstrap tests (fixed fake credentials, settings builders, progress capture)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from demo.bootstrap.settings import BucketSettings, PolarisInitSettings
from demo.lakehouse.local import LocalLakehouse

# Fixed fake credentials (not secrets), in the shape Polaris accepts on reset.
REALM = "FLOE_TEST"
ROOT_ID, ROOT_SECRET = "root", "root-test-secret"
WRITER_ID, WRITER_SECRET = "0a1b2c3d4e5f6789", "00112233445566778899aabbccddeeff"
READER_ID, READER_SECRET = "9876f5e4d3c2b1a0", "ffeeddccbbaa99887766554433221100"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def polaris_settings(url: str, **overrides: Any) -> PolarisInitSettings:
    values: dict[str, Any] = {
        "polaris_url": url,
        "polaris_realm": REALM,
        "polaris_root_client_id": ROOT_ID,
        "polaris_root_client_secret": ROOT_SECRET,
        "catalog_warehouse": "floe",
        "catalog_base_location": "s3://warehouse/",
        "s3_endpoint": "http://localhost:9000",
        "s3_endpoint_internal": "http://floe-minio:9000",
        "writer_client_id": WRITER_ID,
        "writer_client_secret": WRITER_SECRET,
        "reader_client_id": READER_ID,
        "reader_client_secret": READER_SECRET,
        "wait_timeout_seconds": 20,
        "wait_interval_seconds": 0.1,
        "request_timeout_seconds": 10,
    }
    values.update(overrides)
    return PolarisInitSettings(**values)


def bucket_settings(lake: LocalLakehouse, buckets: str, **overrides: Any) -> BucketSettings:
    values: dict[str, Any] = {
        "s3_endpoint": f"http://127.0.0.1:{lake.s3_port}",
        "s3_admin_access_key_id": lake.access_key,
        "s3_admin_secret_access_key": lake.secret_key,
        "buckets": buckets,
        "wait_timeout_seconds": 20,
        "wait_interval_seconds": 0.1,
    }
    values.update(overrides)
    return BucketSettings(**values)


class Progress:
    """Collects progress lines (thread-safe) and lets a test wait for one, by polling."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, line: str) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((line for line in self.lines if predicate(line)), None), timeout
            )
        if not found:
            raise AssertionError(f"no progress line matched within {timeout}s: {self.lines}")
        return found
