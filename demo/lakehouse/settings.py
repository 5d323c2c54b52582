"""Connection settings for the lakehouse, read from the environment.

This is the contract between the cdk8s app and the code that runs inside the cluster: the
constructs set exactly these variables (derived from the stack config), and the local main job
sets them for the embedded SeaweedFS lakehouse. Nothing here knows which of the two it talks to:
both are an Iceberg REST catalog with OAuth2 client credentials plus an S3 endpoint.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The environment variables, by field. The constructs import this to set them, so a rename is
#: one edit here.
ENV_PREFIX = "FLOE_"


class FloeSettings(BaseSettings):
    """Settings read from the environment, whose variable names the constructs look up."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets ``field`` (raises KeyError for an unknown field)."""
        if field not in cls.model_fields:
            raise KeyError(field)
        return f"{cls.model_config['env_prefix']}{field}".upper()


class LakehouseSettings(FloeSettings):
    """Where the Iceberg catalog and its object store are, and how to authenticate."""

    # Iceberg REST catalog. For Polaris: http://floe-polaris:8181/api/catalog; for SeaweedFS:
    # http://127.0.0.1:8181 (no prefix).
    catalog_uri: str
    # The catalog/warehouse name clients pass (`warehouse` for pyiceberg, ATTACH target for DuckDB).
    catalog_warehouse: str
    # OAuth2 token endpoint of the catalog (client_credentials grant).
    catalog_oauth2_uri: str
    catalog_client_id: str
    catalog_client_secret: SecretStr
    catalog_scope: str = "PRINCIPAL_ROLE:ALL"

    # S3 endpoint the data files live behind (path-style). Neither Polaris (stsUnavailable) nor
    # SeaweedFS vends credentials: every client brings its own.
    s3_endpoint: str
    s3_access_key_id: str
    s3_secret_access_key: SecretStr
    s3_region: str = "us-east-1"

    # Iceberg namespaces of the three layers.
    namespace_raw: str = "raw"
    namespace_staging: str = "staging"
    namespace_marts: str = "marts"

    # How long the files of a rebuilt mart's replaced snapshots stay after the dbt step's compaction
    # took those snapshots out of the metadata (demo.lakehouse.maintenance): for a reader that
    # planned its scan on one (a Cube refresh, a query in flight). A later compaction deletes them.
    marts_snapshot_retention_s: float = Field(default=600.0, ge=0)

    # Where DuckDB keeps its extensions (filled offline from the duckdb-extension-* wheels).
    duckdb_extension_directory: str | None = Field(default=None)
    # DuckDB's memory_limit, temp_directory (where it spills beyond that limit) and
    # max_temp_directory_size, e.g. "819MiB", "/tmp/duckdb", "1GiB". Unset: DuckDB's defaults (80 %
    # of the machine's RAM, `<database>.tmp` or `.tmp` in the working directory, 90 % of that disk),
    # which a container does not honour. The constructs derive them from the container's limits.
    duckdb_memory_limit: str | None = Field(default=None)
    duckdb_temp_directory: str | None = Field(default=None)
    duckdb_max_temp_directory_size: str | None = Field(default=None)

    @property
    def marts_snapshot_retention(self) -> timedelta:
        return timedelta(seconds=self.marts_snapshot_retention_s)

    @property
    def s3_endpoint_hostport(self) -> str:
        """``host:port`` of the S3 endpoint, the form DuckDB's S3 secret takes."""
        return self.s3_endpoint.split("://", 1)[-1].rstrip("/")

    @property
    def s3_use_ssl(self) -> bool:
        return self.s3_endpoint.startswith("https://")


class DbtSettings(FloeSettings):
    """dbt's own local DuckDB file, read by the dbt plugin (demo.lakehouse.duckdb), not the profile.

    The profile's connection values are part of dbt's partial-parse check (``profile_hash``): a path
    that differs per pod or data folder there would make dbt discard the parse baked into the image
    (or into ``target/dagster``) on every first build. The plugin attaches this file instead, as it
    attaches the catalog from the ``FLOE_*`` values, which dbt does not hash either.
    """

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}DBT_", extra="ignore", frozen=True)

    # The local DuckDB file holding the staging views (attached as database DBT_LOCAL_DATABASE).
    duckdb_path: str = "/tmp/floe-dbt.duckdb"
