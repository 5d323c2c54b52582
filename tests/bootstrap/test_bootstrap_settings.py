"""Settings of the bootstrap Jobs: the FLOE_* environment contract and its checks."""

from __future__ import annotations

import pytest
from bootstrap_support import READER_ID, READER_SECRET, WRITER_ID, WRITER_SECRET, polaris_settings
from pydantic import ValidationError

from demo.bootstrap.settings import BucketSettings, PolarisInitSettings
from demo.lakehouse.settings import LakehouseSettings


def test_bucket_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_S3_ENDPOINT", "http://floe-minio:9000")
    monkeypatch.setenv("FLOE_S3_ADMIN_ACCESS_KEY_ID", "admin")
    monkeypatch.setenv("FLOE_S3_ADMIN_SECRET_ACCESS_KEY", "admin-secret")
    monkeypatch.setenv("FLOE_BUCKETS", " warehouse , cubestore ")

    settings = BucketSettings()

    assert settings.buckets == ("warehouse", "cubestore")
    assert settings.s3_admin_secret_access_key.get_secret_value() == "admin-secret"
    assert "admin-secret" not in repr(settings)


@pytest.mark.parametrize("buckets", ["", "Warehouse", "a", "warehouse,warehouse", "under_score"])
def test_bad_bucket_lists_are_refused(buckets: str) -> None:
    with pytest.raises(ValidationError):
        BucketSettings(s3_endpoint="http://x:9000", s3_admin_access_key_id="a", s3_admin_secret_access_key="b",
                       buckets=buckets)


def test_env_names_are_explicit_and_shared_with_the_lakehouse_contract() -> None:
    assert PolarisInitSettings.env_name("writer_client_secret") == "FLOE_WRITER_CLIENT_SECRET"
    assert BucketSettings.env_name("buckets") == "FLOE_BUCKETS"
    for shared in ("s3_endpoint", "s3_region", "catalog_warehouse", "namespace_raw", "namespace_marts"):
        assert PolarisInitSettings.env_name(shared) == LakehouseSettings.env_name(shared)
    with pytest.raises(KeyError):
        PolarisInitSettings.env_name("no_such_field")


def test_polaris_settings_normalise_and_derive() -> None:
    settings = polaris_settings("http://floe-polaris:8181/", catalog_base_location="s3://warehouse/lake",
                                s3_endpoint_internal=None)
    assert settings.polaris_url == "http://floe-polaris:8181"
    assert settings.token_url == "http://floe-polaris:8181/api/catalog/v1/oauth/tokens"
    assert settings.management_url == "http://floe-polaris:8181/api/management/v1"
    assert settings.catalog_base_location == "s3://warehouse/lake/"
    assert settings.namespaces == ("raw", "staging", "marts")


@pytest.mark.parametrize(
    "overrides",
    [
        {"catalog_base_location": "s3:///warehouse"},  # empty bucket: the `//bucket` bug
        {"catalog_base_location": "warehouse"},
        {"writer_client_id": "floe-writer"},  # Polaris' reset only takes 16 hex chars
        {"reader_client_secret": "x" * 32},
        {"reader_client_id": WRITER_ID},  # shared client id
        {"polaris_url": "floe-polaris:8181"},
    ],
)
def test_polaris_settings_refuse_what_polaris_would(overrides: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        polaris_settings("http://floe-polaris:8181", **overrides)


def test_fixed_test_credentials_have_polaris_shape() -> None:
    polaris_settings("http://x:8181", writer_client_id=WRITER_ID, writer_client_secret=WRITER_SECRET,
                     reader_client_id=READER_ID, reader_client_secret=READER_SECRET)


def test_every_variable_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "bootstrap.md").read_text()
    for settings_class in (BucketSettings, PolarisInitSettings):
        for field in settings_class.model_fields:
            assert f"`{settings_class.env_name(field)}`" in doc, field
