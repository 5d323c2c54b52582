"""Fixtures of the bootstrap tests: a fake Polaris on 127.0.0.1 and a real SeaweedFS S3 server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from bootstrap_support import REALM, ROOT_ID, ROOT_SECRET, Progress  # noqa: E402
from fake_polaris import FakePolaris  # noqa: E402

from demo.lakehouse.local import LocalLakehouse, local_lakehouse  # noqa: E402


@pytest.fixture
def fake_polaris() -> Iterator[FakePolaris]:
    fake = FakePolaris(realm=REALM, root_client_id=ROOT_ID, root_client_secret=ROOT_SECRET).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLakehouse]:
    """A real SeaweedFS (S3 on 127.0.0.1), shared by a module's tests."""
    with local_lakehouse(tmp_path_factory.mktemp("seaweedfs")) as running:
        yield running


@pytest.fixture
def progress() -> Progress:
    return Progress()
