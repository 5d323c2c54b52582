"""Fixtures for the manifest tests: synthesize with fixed fake credentials, once per variant."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from floe.config import StackConfig, load_config
from floe.synth import SynthResult, synthesize

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
REPO = Path(__file__).resolve().parents[2]

#: The project image's tag is a digest of demo/, the lock and the Dockerfile (floe/image_tag.py,
#: tested in test_image_tag.py): the snapshots fix it, so an edit of the demo code alone does not
#: show up as a diff of every chart (Job names, pod templates) in them.
SNAPSHOT_IMAGE_TAG = "src-snapshot0000"

# Fixed fake values (never used by a real install): make snapshots byte-stable.
FAKE_CREDENTIALS = {
    "postgres_superuser_password": "test-postgres-superuser",
    "database_passwords": {"dagster": "test-db-dagster", "marquez": "test-db-marquez", "polaris": "test-db-polaris"},
    "minio_root_user": "test-minio-user",
    "minio_root_password": "test-minio-password",
    "polaris_root_client_id": "0000000000000001",
    "polaris_root_client_secret": "00000000000000000000000000000001",
    "polaris_token_broker_secret": "test-polaris-token-broker-secret",
    "catalog_writer_client_id": "0000000000000002",
    "catalog_writer_client_secret": "00000000000000000000000000000002",
    "catalog_reader_client_id": "0000000000000003",
    "catalog_reader_client_secret": "00000000000000000000000000000003",
    "cube_api_secret": "test-cube-api-secret",
    "cube_sql_password": "test-cube-sql-password",
    # One object-store user per client (demo/bootstrap/identities.py CLIENTS).
    "s3_clients": {
        client: {"access_key_id": f"test-s3-{n}", "secret_access_key": f"test-s3-{client.replace('_', '-')}-secret"}
        for n, client in enumerate(("polaris", "dagster_pipeline", "dagster_webserver", "cube", "cubestore", "verify", "backup"))
    },
}


def write_fake_credentials(folder: Path) -> Path:
    path = folder / "credentials.json"
    path.write_text(json.dumps(FAKE_CREDENTIALS, indent=2, sort_keys=True))
    return path


def make_config(folder: Path, **overrides: object) -> StackConfig:
    """The default profile with credentials from fake values under ``folder`` plus ``overrides``."""
    data = StackConfig().model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return StackConfig.model_validate(data)


def synth(folder: Path, **overrides: object) -> SynthResult:
    folder.mkdir(parents=True, exist_ok=True)
    return synthesize(make_config(folder, **overrides), folder / "dist", root=folder)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synth(tmp_path_factory.mktemp("default"))


@pytest.fixture
def documents(default_synth: SynthResult) -> list[dict]:
    """A private deep copy of the default manifests, free to mutate."""
    return copy.deepcopy(default_synth.documents)


@pytest.fixture(scope="session")
def local_profile() -> StackConfig:
    return load_config(REPO / "config" / "local.yaml", environ={})
