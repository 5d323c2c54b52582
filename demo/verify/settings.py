"""Settings of the in-cluster verifier, read from ``FLOE_*`` environment variables.

The lakehouse side (catalog URI, OAuth2 endpoint, the WRITER principal's client id/secret, S3
endpoint and keys, namespaces) is :class:`demo.lakehouse.settings.LakehouseSettings`, unchanged.
Everything else is :class:`VerifySettings`. Where a value means the same as elsewhere, the variable
is the same: ``FLOE_READER_CLIENT_ID``/``FLOE_READER_CLIENT_SECRET`` as the Polaris init Job's,
``FLOE_DAGSTER_URL`` as ``demo.orchestration.trigger``'s.

Optional services: leave ``FLOE_MARQUEZ_URL`` or ``FLOE_JAEGER_URL`` unset (or empty) when
Marquez or Jaeger is switched off; their checks are then reported as skipped.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator

from demo.lakehouse.settings import FloeSettings, LakehouseSettings

_URL = re.compile(r"^https?://[^/\s]+")


class VerifySettings(FloeSettings):
    """Where the services are, and the credentials the checks use."""

    # Dagster webserver root (GraphQL at /graphql), e.g. http://floe-dagster-webserver:80.
    dagster_url: str
    # The code location's name (workspace.yaml `location_name`; `floe-demo` by default).
    dagster_location: str

    # Cube API root, e.g. http://floe-cube:4000 (REST /cubejs-api/v1/load, GraphQL /cubejs-api/graphql).
    cube_api_url: str
    # CUBEJS_API_SECRET: the verifier signs its own HS256 JWT with it.
    cube_api_secret: SecretStr
    # Cube's SQL API (Postgres wire): CUBEJS_PG_SQL_PORT, CUBEJS_SQL_USER, CUBEJS_SQL_PASSWORD.
    cube_sql_host: str
    cube_sql_port: int = Field(default=15432, ge=1, le=65535)
    cube_sql_user: str
    cube_sql_password: SecretStr
    cube_sql_database: str = "floe"

    # Marquez API root (e.g. http://floe-marquez:5000); unset/empty = Marquez is off, check skipped.
    marquez_url: str | None = None
    # OPENLINEAGE_NAMESPACE of the pipeline (the jobs' namespace).
    lineage_namespace: str = "floe"
    # Jaeger query root (e.g. http://floe-jaeger:16686); unset/empty = Jaeger is off, check skipped.
    jaeger_url: str | None = None
    # OTEL_SERVICE_NAME of the process that runs the pipeline's runs (the Dagster code server).
    jaeger_service: str = "floe-pipeline"
    # OTEL_SERVICE_NAME of the Cube API: the verifier sends a query with its own traceparent and
    # finds that trace in Jaeger with a span of this service in it.
    jaeger_cube_service: str = "floe-cube"
    # How long the Cube span may take to reach Jaeger (the SDK exports every 2 s, OTEL_BSP_SCHEDULE_DELAY).
    verify_trace_wait_seconds: float = Field(default=30.0, gt=0)

    # The read-only principal (Cube's): must list and load tables and be refused writes.
    reader_client_id: str
    reader_client_secret: SecretStr

    warehouse_bucket: str = "warehouse"
    cubestore_bucket: str = "cubestore"

    # Deadlines and the latency plan.
    verify_check_timeout_seconds: float = Field(default=120.0, gt=0)
    verify_trigger_timeout_seconds: float = Field(default=900.0, gt=0)
    verify_latency_queries: int = Field(default=30, ge=30)
    # The gate on the p95 of warm queries: the plan's 100 ms; CI sets its own budget for a shared
    # runner (`floe.deploy verify --latency-budget-ms`, .github/workflows/e2e.yml).
    verify_latency_budget_ms: float = Field(default=100.0, gt=0)
    # How long to wait while Cube says "Continue wait" or that no rollup is built yet.
    verify_cube_wait_seconds: float = Field(default=120.0, gt=0)
    # dbt finished -> Cube serves the new marts (rollups follow the marts' snapshot, demo/cube/model):
    # the freshness target, and how long a Cube/marts difference may last before it fails.
    verify_freshness_target_seconds: float = Field(default=60.0, gt=0)

    @field_validator("marquez_url", "jaeger_url", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("dagster_url", "cube_api_url", "marquez_url", "jaeger_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value):
            raise ValueError(f"expected an http(s)://host[:port] URL, got {value!r}")
        return value.rstrip("/") if value else value


def lineage_dataset_namespace(lake: LakehouseSettings) -> str:
    """The OpenLineage namespace of the Iceberg datasets (as demo.observability.lineage names them)."""
    return f"iceberg://{urlsplit(lake.catalog_uri).netloc}"


def settings_errors(exc: ValidationError, model: type[FloeSettings]) -> list[str]:
    """One line per invalid or missing variable, naming the variable (never its value if secret)."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        try:
            variable = model.env_name(field)
        except KeyError:
            variable = field
        message = "not set" if error["type"] == "missing" else error["msg"]
        lines.append(f"{variable}: {message}")
    return lines


def load_settings() -> tuple[LakehouseSettings, VerifySettings]:
    """Both settings from the environment; raises ValueError listing every bad variable."""
    problems: list[str] = []
    lake = verify = None
    try:
        lake = LakehouseSettings()
    except ValidationError as exc:
        problems += settings_errors(exc, LakehouseSettings)
    try:
        verify = VerifySettings()
    except ValidationError as exc:
        problems += settings_errors(exc, VerifySettings)
    if problems or lake is None or verify is None:
        raise ValueError("; ".join(problems))
    return lake, verify
