"""Settings of the bootstrap Jobs, read from ``FLOE_*`` environment variables.

Like :class:`demo.lakehouse.settings.LakehouseSettings`, these are a contract with the Kubernetes
constructs: the constructs set exactly these variables (see :meth:`env_name`), from the stack config
and from the Secrets they synthesize. Where a value means the same thing as a ``LakehouseSettings``
field (S3 endpoint, region, catalog name, namespaces) the field has the same name, so one variable
serves both.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from demo.bootstrap.identities import CLIENTS, Grant

from demo.lakehouse.settings import FloeSettings

# S3 bucket names: 3-63 characters of lowercase letters, digits, dots and hyphens, starting and
# ending with a letter or digit (the rules AWS documents and MinIO enforces).
_BUCKET_NAME = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
BUCKET_NAME_PATTERN = re.compile(rf"^{_BUCKET_NAME}$")
# A catalog base location must name a bucket: "s3:///x" or "s3://" would give tables keys under an
# empty bucket (the `//bucket` bug of an earlier attempt).
S3_LOCATION_PATTERN = re.compile(rf"^s3://{_BUCKET_NAME}(/.*)?$")

# Polaris accepts caller-chosen credentials on `POST /principals/{name}/reset` only in the shape of
# the ones it generates itself: PolarisServiceImpl.validateClientId/validateClientSecret check
# `^[0-9a-f]{16}$` and `^[0-9a-f]{32}$` (apache/polaris runtime/service/.../admin/
# PolarisServiceImpl.java). Anything else is a 400 "Invalid clientId format", so the Secrets must be
# generated like `secrets.token_hex(8)` / `secrets.token_hex(16)`; checked here to fail before any
# call is made.
POLARIS_CLIENT_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
POLARIS_CLIENT_SECRET_PATTERN = re.compile(r"^[0-9a-f]{32}$")


class S3Identity(BaseModel):
    """One client's MinIO user: its keys (from the client's own Secret) and its grants (bucket ->
    access, rendered into the client's policy by demo.bootstrap.identities.minio_policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # MinIO: the access key is the user name (3+ characters), the secret 8-40 characters.
    access_key_id: str = Field(min_length=3, max_length=128)
    secret_access_key: SecretStr = Field(min_length=8, max_length=40)
    grants: dict[str, Literal["read", "readwrite"]] = Field(min_length=1)

    @field_validator("grants")
    @classmethod
    def _grant_buckets(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not BUCKET_NAME_PATTERN.match(name)]
        if bad:
            raise ValueError(f"not valid S3 bucket names: {bad}")
        return value

    def grant_tuple(self) -> tuple[Grant, ...]:
        return tuple(Grant(bucket, access) for bucket, access in self.grants.items())


class BucketSettings(FloeSettings):
    """Where the S3 server is, the admin key that may create buckets, and which buckets to create.

    With ``s3_identities`` the step also creates one MinIO user + policy per client through MinIO's
    admin API. Each identity comes from ``FLOE_S3_IDENTITIES__<CLIENT>__{ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,GRANTS}`` (GRANTS: JSON ``{"<bucket>": "read"|"readwrite"}``).
    """

    model_config = SettingsConfigDict(env_nested_delimiter="__")

    # S3 endpoint (path-style), e.g. http://floe-minio:9000. Same variable as LakehouseSettings.
    s3_endpoint: str
    # MinIO's root user: only this Job and MinIO itself see it.
    s3_admin_access_key_id: str
    s3_admin_secret_access_key: SecretStr
    s3_region: str = "us-east-1"
    # Comma-separated, e.g. "warehouse,cubestore".
    buckets: Annotated[tuple[str, ...], NoDecode]
    # How long to wait for the S3 server to answer before failing (the Job's backoffLimit retries).
    wait_timeout_seconds: float = Field(default=300.0, gt=0)
    wait_interval_seconds: float = Field(default=2.0, gt=0)
    # Client -> its user and grants (empty: buckets only, e.g. a store that is not MinIO).
    s3_identities: dict[str, S3Identity] = Field(default_factory=dict)
    # MinIO policy names are "<prefix>-<client>" (the stack's name_prefix).
    s3_identity_prefix: str = Field(default="floe", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

    @field_validator("s3_identities")
    @classmethod
    def _known_clients(cls, value: dict[str, S3Identity]) -> dict[str, S3Identity]:
        unknown = sorted(set(value) - set(CLIENTS))
        if unknown:
            raise ValueError(f"unknown clients {unknown}; known: {', '.join(CLIENTS)}")
        keys = [identity.access_key_id for identity in value.values()]
        if len(set(keys)) != len(keys):
            raise ValueError("each client needs its own access key")
        return value

    @model_validator(mode="after")
    def _identities_use_our_buckets(self) -> BucketSettings:
        for client, identity in self.s3_identities.items():
            if identity.access_key_id == self.s3_admin_access_key_id:
                raise ValueError(f"s3_identities.{client}: the root key must not be a client's key")
            stray = sorted(set(identity.grants) - set(self.buckets))
            if stray:
                raise ValueError(f"s3_identities.{client}: grants on buckets this step does not create: {stray}")
        return self

    @classmethod
    def identity_env_name(cls, client: str, field: str) -> str:
        """The variable of one identity's field, e.g. FLOE_S3_IDENTITIES__CUBE__ACCESS_KEY_ID."""
        if client not in CLIENTS or field not in S3Identity.model_fields:
            raise KeyError(f"{client}.{field}")
        return f"{cls.env_name('s3_identities')}__{client}__{field}".upper()

    def policy_name(self, client: str) -> str:
        return f"{self.s3_identity_prefix}-{client.replace('_', '-')}"

    @field_validator("buckets", mode="before")
    @classmethod
    def _split_buckets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("buckets")
    @classmethod
    def _check_buckets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one bucket")
        bad = [name for name in value if not BUCKET_NAME_PATTERN.match(name)]
        if bad:
            raise ValueError(f"not valid S3 bucket names: {bad} (3-63 chars: a-z, 0-9, '.', '-')")
        if len(set(value)) != len(value):
            raise ValueError(f"a bucket is listed twice: {list(value)}")
        return value


class PolarisInitSettings(FloeSettings):
    """Everything the Polaris init Job needs: root credentials, the catalog, and the principals."""

    # Polaris' HTTP root, e.g. http://floe-polaris:8181 (management API and Iceberg REST are below).
    polaris_url: str
    polaris_realm: str
    # Root credentials, the same as POLARIS_BOOTSTRAP_CREDENTIALS=<realm>,<id>,<secret> on Polaris.
    polaris_root_client_id: str
    polaris_root_client_secret: SecretStr

    # The catalog (= the warehouse name clients pass). Same variable as LakehouseSettings.
    catalog_warehouse: str
    # e.g. s3://warehouse/ : the catalog's default-base-location and its only allowed location.
    catalog_base_location: str
    # S3 endpoint as clients see it (served to them by the catalog) and as Polaris reaches it.
    s3_endpoint: str
    s3_endpoint_internal: str | None = None
    s3_region: str = "us-east-1"

    namespace_raw: str = "raw"
    namespace_staging: str = "staging"
    namespace_marts: str = "marts"

    # The principal that writes (Dagster, dbt) and the one that only reads (Cube); their credentials
    # come from Secrets and are set on the principals with a reset when they differ.
    writer_principal: str = "floe_writer"
    writer_principal_role: str = "floe_writer"
    writer_catalog_role: str = "floe_writer"
    writer_client_id: str
    writer_client_secret: SecretStr
    reader_principal: str = "floe_reader"
    reader_principal_role: str = "floe_reader"
    reader_catalog_role: str = "floe_reader"
    reader_client_id: str
    reader_client_secret: SecretStr

    wait_timeout_seconds: float = Field(default=300.0, gt=0)
    wait_interval_seconds: float = Field(default=2.0, gt=0)
    # Per-request timeout of every call once Polaris answers.
    request_timeout_seconds: float = Field(default=30.0, gt=0)

    #: Header that selects the realm; Polaris' default `polaris.realm-context.header-name`.
    REALM_HEADER: ClassVar[str] = "Polaris-Realm"

    @field_validator("polaris_url", "s3_endpoint", "s3_endpoint_internal")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/]+", value):
            raise ValueError(f"expected an http(s)://host[:port] URL, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("catalog_base_location")
    @classmethod
    def _check_location(cls, value: str) -> str:
        if not S3_LOCATION_PATTERN.match(value):
            raise ValueError(f"expected s3://<bucket>/[prefix], got {value!r}")
        return value if value.endswith("/") else value + "/"

    @field_validator("writer_client_id", "reader_client_id")
    @classmethod
    def _check_client_id(cls, value: str) -> str:
        if not POLARIS_CLIENT_ID_PATTERN.match(value):
            raise ValueError("Polaris only accepts 16 lowercase hex characters (secrets.token_hex(8))")
        return value

    @field_validator("writer_client_secret", "reader_client_secret")
    @classmethod
    def _check_client_secret(cls, value: SecretStr) -> SecretStr:
        if not POLARIS_CLIENT_SECRET_PATTERN.match(value.get_secret_value()):
            raise ValueError("Polaris only accepts 32 lowercase hex characters (secrets.token_hex(16))")
        return value

    @model_validator(mode="after")
    def _check_distinct(self) -> PolarisInitSettings:
        if self.writer_client_id == self.reader_client_id:
            raise ValueError("writer and reader need different client ids (Polaris refuses a shared one)")
        if self.writer_principal == self.reader_principal:
            raise ValueError("writer and reader must be different principals")
        if self.polaris_root_client_id in (self.writer_client_id, self.reader_client_id):
            raise ValueError("a principal's client id must differ from the root client id")
        return self

    @property
    def management_url(self) -> str:
        return f"{self.polaris_url}/api/management/v1"

    @property
    def catalog_api_url(self) -> str:
        """Iceberg REST root (what clients configure as the catalog URI)."""
        return f"{self.polaris_url}/api/catalog"

    @property
    def token_url(self) -> str:
        return f"{self.catalog_api_url}/v1/oauth/tokens"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.namespace_raw, self.namespace_staging, self.namespace_marts)
