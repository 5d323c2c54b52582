"""A lakehouse for the verifier: SeaweedFS (S3 + Iceberg REST with OAuth2, standing in for MinIO and
Polaris) with a second, read-only identity, seeded and built by the demo pipeline (seed + dbt build,
as tests/semantic/conftest.py), plus the staging namespace the Polaris init Job creates and one
object in the cubestore bucket standing in for Cube Store's upload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from demo.ingest import catalog, seed_raw_tables, wait_for_catalog
from demo.lakehouse.duckdb import install_extensions
from demo.lakehouse.local import LocalLakehouse, local_lakehouse
from demo.lakehouse.settings import LakehouseSettings
from demo.verify.checks import Context
from demo.verify.settings import VerifySettings
from tests.pipeline.conftest import run_dbt

READER_ID, READER_SECRET = "floe-reader", "floe-reader-secret"
#: SeaweedFS identities (`weed mini -s3.config`): the reader may Read/List S3 and every S3 Tables
#: Get*/List* action, nothing else. SeaweedFS checks S3 Tables calls against the identity's actions
#: (weed/s3api/s3tables/permissions.go: hasIdentityPermission, wildcards allowed); the owner (the
#: AWS_* admin weed mini creates) may do everything.
S3_CONFIG = {
    "identities": [
        {
            "name": "reader",
            "credentials": [{"accessKey": READER_ID, "secretKey": READER_SECRET}],
            "actions": ["Read", "List", "s3tables:Get*", "s3tables:List*"],
        }
    ]
}


@dataclass
class Stack:
    lake: LocalLakehouse
    settings: LakehouseSettings
    dbt_dir: Path

    def s3(self):  # noqa: ANN201
        s = self.settings
        return boto3.client(
            "s3", endpoint_url=s.s3_endpoint, aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=s.s3_secret_access_key.get_secret_value(), region_name=s.s3_region,
            config=Config(s3={"addressing_style": "path"}),
        )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("verify-lakehouse")
    config = base / "s3.json"
    config.write_text(json.dumps(S3_CONFIG))
    extensions = install_extensions(str(tmp_path_factory.mktemp("duckdb-extensions")))
    with local_lakehouse(base / "seaweedfs", extra_args=(f"-s3.config={config}",)) as lake:
        wait_for_catalog(lake.settings)
        settings = lake.settings.model_copy(update={"duckdb_extension_directory": extensions})
        seed_raw_tables(settings, seed=7, run_key="seed", n_customers=40, n_products=12, n_orders=200)
        dbt_dir = tmp_path_factory.mktemp("verify-dbt")
        build = run_dbt(settings, dbt_dir, "build")
        assert build.returncode == 0, build.output[-3000:]
        catalog(settings).create_namespace(settings.namespace_staging)  # as the Polaris init Job does
        stack = Stack(lake, settings, dbt_dir)
        stack.s3().put_object(Bucket="cubestore", Key="floe-verify-test/stand-in-for-cube-store", Body=b"x")
        yield stack


def verify_settings(**overrides: object) -> VerifySettings:
    """VerifySettings with test values; the fake services' URLs come in as overrides."""
    values: dict[str, object] = {
        "dagster_url": "http://127.0.0.1:9",
        "dagster_location": "demo.orchestration.definitions",
        "cube_api_url": "http://127.0.0.1:9",
        "cube_api_secret": "floe-test-cube-secret",
        "cube_sql_host": "127.0.0.1",
        "cube_sql_port": 9,
        "cube_sql_user": "floe",
        "cube_sql_password": "floe-test-password",
        "reader_client_id": READER_ID,
        "reader_client_secret": READER_SECRET,
        "verify_check_timeout_seconds": 30,
    }
    values.update(overrides)
    return VerifySettings.model_validate(values)


@pytest.fixture
def ctx(stack: Stack) -> Iterator[Context]:
    context = Context(lake=stack.settings, settings=verify_settings(), settle_seconds=0)
    yield context
    context.http.close()
