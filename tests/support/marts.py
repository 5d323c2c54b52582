"""The seeded, built lakehouse the verifier's and the semantic layer's tests read: SeaweedFS (S3 +
Iceberg REST with OAuth2, standing in for MinIO and Polaris) with a second, read-only identity,
seeded (seed 7: 40 customers, 12 products, 200 orders) and built by the demo pipeline (seed + dbt
build) in the stack's default namespaces (raw/staging/marts: the ones the static Cube model names),
plus the staging namespace the Polaris init Job creates and one object in the cubestore bucket
standing in for Cube Store's upload.

One per session (tests/conftest.py ``marts_stack``): its users only read those namespaces (each
writes, if at all, in namespaces of its own), so one seed + dbt build serves both directories.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

from demo.ingest import catalog
from demo.lakehouse.duckdb import install_extensions
from demo.lakehouse.settings import LakehouseSettings
from tests.pipeline.conftest import marts_lakehouse

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
    settings: LakehouseSettings

    def s3(self):  # noqa: ANN201
        s = self.settings
        return boto3.client(
            "s3", endpoint_url=s.s3_endpoint, aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=s.s3_secret_access_key.get_secret_value(), region_name=s.s3_region,
            config=Config(s3={"addressing_style": "path"}),
        )


@contextlib.contextmanager
def marts_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = tmp_path_factory.mktemp("marts-identities") / "s3.json"
    config.write_text(json.dumps(S3_CONFIG))
    extensions = install_extensions(str(tmp_path_factory.mktemp("duckdb-extensions")))
    with marts_lakehouse(tmp_path_factory, "marts", extensions, seed=7, n_customers=40, n_products=12, n_orders=200,
                         extra_args=(f"-s3.config={config}",)) as settings:
        catalog(settings).create_namespace(settings.namespace_staging)  # as the Polaris init Job does
        stack = Stack(settings)
        stack.s3().put_object(Bucket="cubestore", Key="floe-verify-test/stand-in-for-cube-store", Body=b"x")
        yield stack
