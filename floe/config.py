"""The stack's typed configuration: the single source of truth for every image, port, name and URL.

A YAML profile (``config/local.yaml`` by default, another via ``--config`` or ``FLOE_CONFIG``) is
validated into :class:`StackConfig`; environment variables ``FLOE__<FIELD>__<SUBFIELD>`` override it
(``FLOE__POLARIS__RESOURCES__MEMORY_LIMIT=2Gi``). Unknown keys are rejected. Everything one service
uses to reach another (Service names, host:port pairs, URLs) is derived by :class:`Endpoints`, so a
service is renamed or re-ported in one place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from floe.quantities import cpu_millicores, memory_bytes

DEFAULT_CONFIG_PATH = Path("config/local.yaml")
CONFIG_PATH_ENV = "FLOE_CONFIG"
OVERRIDE_PREFIX = "FLOE__"
OVERRIDE_DELIMITER = "__"

# RFC 1123 label: what Kubernetes requires of namespaces and Service names.
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Port = Annotated[int, Field(ge=1, le=65535)]


def _dns_label(value: str) -> str:
    if not re.match(DNS1123_LABEL, value) or len(value) > 63:
        raise ValueError(
            "must be a DNS-1123 label: 1-63 lowercase letters, digits and '-', starting and ending alphanumeric"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
# Iceberg namespace / Polaris entity names: keep them to identifiers every client quotes the same way.
Identifier = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_]*$")]
_PATTERN_HELP = {
    DNS1123_LABEL: "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending alphanumeric",
    r"^[a-z][a-z0-9_]*$": "must be a lowercase identifier: a letter, then letters, digits or '_'",
}
BucketName = Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")]


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Image(StrictModel):
    repository: str = Field(min_length=1)
    tag: str = Field(min_length=1)
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"

    @field_validator("tag")
    @classmethod
    def _pinned(cls, tag: str) -> str:
        if tag == "latest":
            raise ValueError("image tags must be pinned; 'latest' is not allowed")
        return tag

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


class Resources(StrictModel):
    """Requests and limits of one container (Kubernetes quantity syntax)."""

    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "512Mi"

    @field_validator("cpu_request", "cpu_limit")
    @classmethod
    def _cpu(cls, value: str) -> str:
        cpu_millicores(value)  # raises ValueError naming the accepted forms
        return value

    @field_validator("memory_request", "memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        memory_bytes(value)
        return value

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        if cpu_millicores(self.cpu_limit) < cpu_millicores(self.cpu_request):
            raise ValueError(f"cpu_limit {self.cpu_limit} is below cpu_request {self.cpu_request}")
        if memory_bytes(self.memory_limit) < memory_bytes(self.memory_request):
            raise ValueError(f"memory_limit {self.memory_limit} is below memory_request {self.memory_request}")
        return self


class PostgresConfig(StrictModel):
    image: Image = Image(repository="postgres", tag="18.1")
    # Documented: shared_buffers defaults to 128MB (postgresql.conf), plus a few MiB per backend
    # (~20 pooled connections from Dagster, Polaris and Marquez). The 256Mi baseline covers it.
    resources: Resources = Resources(cpu_request="100m", memory_request="256Mi", cpu_limit="500m", memory_limit="512Mi")
    port: Port = 5432
    # One database (owned by its own user) per application that keeps state in PostgreSQL.
    databases: tuple[Identifier, ...] = ("dagster", "marquez", "polaris")


class MinioConfig(StrictModel):
    image: Image = Image(repository="quay.io/minio/minio", tag="RELEASE.2025-09-07T16-13-09Z")
    # Estimate (not measured here: no MinIO binary on PyPI): a single-drive server holding a few
    # hundred small objects idles well under 200 MiB; GOMEMLIMIT keeps the heap inside the limit.
    resources: Resources = Resources(cpu_request="100m", memory_request="192Mi", cpu_limit="500m", memory_limit="512Mi")
    api_port: Port = 9000
    console_port: Port = 9001
    region: str = Field(default="us-east-1", min_length=1)
    warehouse_bucket: BucketName = "warehouse"
    cubestore_bucket: BucketName = "cubestore"
    # Dagster's compute logs (run stdout/stderr, S3ComputeLogManager): written by the pod that runs
    # the step, read by the webserver.
    dagster_logs_bucket: BucketName = "dagster-logs"

    @model_validator(mode="after")
    def _distinct(self) -> MinioConfig:
        if self.api_port == self.console_port:
            raise ValueError("api_port and console_port must differ")
        buckets = (self.warehouse_bucket, self.cubestore_bucket, self.dagster_logs_bucket)
        if len(set(buckets)) != len(buckets):
            raise ValueError("warehouse_bucket, cubestore_bucket and dagster_logs_bucket must differ")
        return self


class PolarisConfig(StrictModel):
    image: Image = Image(repository="apache/polaris", tag="1.7.0")
    # Bootstraps the realm in PostgreSQL before the server starts; keep its tag equal to the server's.
    admin_tool_image: Image = Image(repository="apache/polaris-admin-tool", tag="1.7.0")
    # Request: estimate of a Quarkus JVM's idle working set (heap in use + metaspace ~100 MiB + code
    # cache) for a handful of tables; the limit bounds the sized pools (floe/memory.py).
    resources: Resources = Resources(cpu_request="250m", memory_request="384Mi", cpu_limit="1", memory_limit="1Gi")
    # The admin tool's realm bootstrap (init container, and in each reconcile run): a short CLI.
    # Its request must not exceed the server's, or it sets the Polaris pod's effective request.
    admin_tool_resources: Resources = Resources(cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="512Mi")
    port: Port = 8181
    management_port: Port = 8182
    realm: Identifier = "floe"
    catalog: Identifier = "floe"
    writer_principal: Identifier = "floe_writer"
    reader_principal: Identifier = "floe_reader"
    namespaces: dict[Literal["raw", "staging", "marts"], Identifier] = Field(
        default_factory=lambda: {"raw": "raw", "staging": "staging", "marts": "marts"}
    )

    @field_validator("namespaces")
    @classmethod
    def _all_layers(cls, value: dict[str, str]) -> dict[str, str]:
        missing = {"raw", "staging", "marts"} - value.keys()
        if missing:
            raise ValueError(f"namespaces must name all of raw, staging, marts (missing: {', '.join(sorted(missing))})")
        return value


class JaegerConfig(StrictModel):
    enabled: bool = True
    image: Image = Image(repository="jaegertracing/jaeger", tag="2.20.0")
    # Estimate: the Go binary idles at a few tens of MiB; max_traces bounds the store (see below).
    resources: Resources = Resources(cpu_request="100m", memory_request="96Mi", cpu_limit="500m", memory_limit="512Mi")
    ui_port: Port = 16686
    otlp_grpc_port: Port = 4317
    otlp_http_port: Port = 4318
    health_port: Port = 13133
    # In-memory store: bounded so it fits the memory limit (upstream default is 100 000 traces).
    # A pipeline run's trace is tens of spans (~50 KB): 2 000 traces stay well under 512Mi.
    max_traces: int = Field(default=2_000, ge=100, le=1_000_000)


class MarquezWebConfig(StrictModel):
    # The lineage UI only: the API (and so lineage collection) runs without it. Off saves a pod.
    enabled: bool = True
    image: Image = Image(repository="marquezproject/marquez-web", tag="0.51.1")
    # Estimate: a Node.js static server + proxy (web/setupProxy.js), under 100 MiB idle.
    resources: Resources = Resources(cpu_request="50m", memory_request="96Mi", cpu_limit="500m", memory_limit="512Mi")
    port: Port = 3000


class MarquezConfig(StrictModel):
    enabled: bool = True
    image: Image = Image(repository="marquezproject/marquez", tag="0.51.1")
    # Request: estimate of a Dropwizard JVM's idle working set; the limit bounds the sized pools.
    resources: Resources = Resources(cpu_request="200m", memory_request="320Mi", cpu_limit="1", memory_limit="1Gi")
    api_port: Port = 5000
    admin_port: Port = 5001
    web: MarquezWebConfig = MarquezWebConfig()
    # OpenLineage namespace the pipeline reports its jobs under.
    lineage_namespace: str = Field(default="floe", min_length=1)


class DagsterConfig(StrictModel):
    """Webserver, daemon and the user-code gRPC server, all from the project image."""

    webserver_port: Port = 3000
    # The Service maps 80 -> webserver_port, as Dagster's own chart does.
    service_port: Port = 80
    grpc_port: Port = 3030
    location_name: DnsLabel = "floe-demo"
    module: str = Field(default="demo.orchestration.definitions", pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
    # Requests from measured peaks (`make bench` → bench.footprint, demo.local ui on the embedded
    # lakehouse, seed run included): webserver 156 MiB, daemon 134 MiB, code server 311-343 MiB.
    webserver_resources: Resources = Resources(cpu_request="100m", memory_request="192Mi", cpu_limit="1", memory_limit="768Mi")
    daemon_resources: Resources = Resources(cpu_request="100m", memory_request="160Mi", cpu_limit="500m", memory_limit="512Mi")
    # Runs execute inside the user-code pod (default run launcher): dbt + DuckDB need room.
    # A run peaks at ~1 GiB (run worker 449 MiB + dbt 245 MiB next to the idle server, bench.footprint):
    # requested is the idle server, the limit holds a run.
    user_code_resources: Resources = Resources(cpu_request="250m", memory_request="384Mi", cpu_limit="2", memory_limit="2Gi")
    # Cadence of the schedule that appends orders and rebuilds the marts (Cube follows it).
    schedule_cron: str = Field(default="*/5 * * * *", min_length=9)
    orders_per_tick: int = Field(default=50, ge=1, le=100_000)
    max_concurrent_runs: int = Field(default=1, ge=1, le=10)


class CubeConfig(StrictModel):
    """Cube API (REST/GraphQL on api_port, Postgres-wire SQL on sql_port) and its refresh worker."""

    # Cube 1.7.43 embeds DuckDB 1.5.5 (@duckdb/node-api 1.5.5-r.5): the extension files we ship
    # are built for exactly that version. Check before moving.
    image: Image = Image(repository="cubejs/cube", tag="v1.7.43")
    api_replicas: int = Field(default=1, ge=1, le=5)
    # Request: estimate of Node.js + an idle embedded DuckDB; the limit holds the heap and DuckDB's
    # memory_limit (constructs/cube.py cube_memory).
    api_resources: Resources = Resources(cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="1Gi")
    refresh_worker_resources: Resources = Resources(cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="1Gi")
    api_port: Port = 4000
    sql_port: Port = 15432
    sql_user: Identifier = "floe"
    # bundled: extensions copied from the project image (no egress); download: DuckDB fetches them.
    duckdb_extensions: Literal["bundled", "download"] = "bundled"
    duckdb_memory_limit: str = Field(default="512MB", pattern=r"^\d+(KB|MB|GB)$")


class CubeStoreConfig(StrictModel):
    image: Image = Image(repository="cubejs/cubestore", tag="v1.7.43")
    # One worker fits a 4 GB Docker Desktop and holds the demo's pre-aggregations; set 2+ for
    # parallel builds and queries (the router spreads partitions over CUBESTORE_WORKERS).
    workers: int = Field(default=1, ge=1, le=8)
    # Estimate: the Rust binary idles at tens of MiB; pre-aggregations here are kilobytes.
    router_resources: Resources = Resources(cpu_request="100m", memory_request="160Mi", cpu_limit="1", memory_limit="1Gi")
    worker_resources: Resources = Resources(cpu_request="100m", memory_request="160Mi", cpu_limit="1", memory_limit="1Gi")
    http_port: Port = 3030
    meta_port: Port = 9999
    worker_port: Port = 9001
    status_port: Port = 3031


class ReconcileConfig(StrictModel):
    """The reconcile CronJob: re-creates what a replaced PostgreSQL or MinIO pod lost (realm, catalog,
    principals, grants, namespaces, buckets, orphaned tables, Dagster storage). Idempotent: a run on
    an intact stack changes nothing (docs/troubleshooting.md)."""

    enabled: bool = True
    # Standard 5-field cron, UTC. Every 2 minutes: lost state is back within ~3 minutes.
    schedule: str = Field(default="*/2 * * * *", pattern=r"^\S+ \S+ \S+ \S+ \S+$")
    # A run missed by more than this (controller down, previous run still active) is skipped.
    starting_deadline_seconds: int = Field(default=60, ge=10, le=3600)
    # A run (realm bootstrap JVM + Python steps) is killed after this; the next schedule retries.
    active_deadline_seconds: int = Field(default=300, ge=60, le=3600)
    successful_jobs_history_limit: int = Field(default=1, ge=0, le=10)
    # The reconcile step opens the Dagster instance: 141 MiB peak measured (imports + instance).
    resources: Resources = Resources(cpu_request="50m", memory_request="192Mi", cpu_limit="500m", memory_limit="512Mi")
    failed_jobs_history_limit: int = Field(default=3, ge=0, le=10)


class CredentialsConfig(StrictModel):
    """Where passwords and keys come from.

    ``generated``: random per install, made on first synth and kept in ``store`` (git-ignored) so a
    re-synth never rotates them. ``existing``: the Secrets already exist in the namespace (created by
    you); we only reference them by name and synthesize none.
    """

    source: Literal["generated", "existing"] = "generated"
    store: Path = Path(".floe/credentials.json")


class StackConfig(StrictModel):
    namespace: DnsLabel = "floe"
    # Prefix of every object name; Services become <prefix>-postgres, <prefix>-minio, ...
    name_prefix: DnsLabel = "floe"
    # The project image (bootstrap Jobs, Dagster, dbt). Built locally by `make image`.
    project_image: Image = Image(repository="floe-project", tag="0.1.0", pull_policy="IfNotPresent")
    postgres: PostgresConfig = PostgresConfig()
    minio: MinioConfig = MinioConfig()
    polaris: PolarisConfig = PolarisConfig()
    jaeger: JaegerConfig = JaegerConfig()
    marquez: MarquezConfig = MarquezConfig()
    dagster: DagsterConfig = DagsterConfig()
    cube: CubeConfig = CubeConfig()
    cubestore: CubeStoreConfig = CubeStoreConfig()
    credentials: CredentialsConfig = CredentialsConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    # The verification Job (`make verify`): 83 MiB measured for its imports + DuckDB; the marts it
    # reads are small, and DuckDB spills to /tmp beyond half the limit.
    verify_resources: Resources = Resources(cpu_request="100m", memory_request="160Mi", cpu_limit="1", memory_limit="1Gi")
    # The bootstrap Jobs (buckets, Polaris init): 45-66 MiB measured (imports + one request loop).
    bootstrap_resources: Resources = Resources(cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi")

    @model_validator(mode="after")
    def _cube_versions_match(self) -> StackConfig:
        if self.cube.image.tag != self.cubestore.image.tag:
            raise ValueError(
                f"cube.image.tag ({self.cube.image.tag}) and cubestore.image.tag ({self.cubestore.image.tag}) must be the same Cube release"
            )
        return self

    @model_validator(mode="after")
    def _name_lengths(self) -> StackConfig:
        # Longest derived Service name must still be a DNS-1123 label (<= 63 characters).
        longest = max(len(n) for n in Names.of(self).all().values())
        if longest > 63:
            raise ValueError(f"name_prefix '{self.name_prefix}' makes Service names longer than 63 characters")
        return self

    @cached_property
    def names(self) -> Names:
        return Names.of(self)

    @cached_property
    def endpoints(self) -> Endpoints:
        return Endpoints(self)


class Names:
    """Object names of every component, derived from ``name_prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @classmethod
    def of(cls, config: StackConfig) -> Names:
        return cls(config.name_prefix)

    def _n(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    postgres = property(lambda self: self._n("postgres"))
    minio = property(lambda self: self._n("minio"))
    minio_console = property(lambda self: self._n("minio-console"))
    minio_buckets_job = property(lambda self: self._n("minio-buckets"))
    polaris = property(lambda self: self._n("polaris"))
    polaris_init_job = property(lambda self: self._n("polaris-init"))
    reconcile = property(lambda self: self._n("reconcile"))
    # The verification Job (dist/verify/, created by `make verify`, never by `kubectl apply -f dist/`).
    verify = property(lambda self: self._n("verify"))
    jaeger = property(lambda self: self._n("jaeger"))
    marquez = property(lambda self: self._n("marquez"))
    marquez_web = property(lambda self: self._n("marquez-web"))
    dagster_webserver = property(lambda self: self._n("dagster-webserver"))
    dagster_daemon = property(lambda self: self._n("dagster-daemon"))
    dagster_user_code = property(lambda self: self._n("dagster-user-code"))
    dagster_instance_config = property(lambda self: self._n("dagster-instance"))
    dagster_workspace_config = property(lambda self: self._n("dagster-workspace"))
    cube = property(lambda self: self._n("cube"))
    cube_sql = property(lambda self: self._n("cube-sql"))
    cube_refresh_worker = property(lambda self: self._n("cube-refresh-worker"))
    cube_config = property(lambda self: self._n("cube-config"))
    cube_model = property(lambda self: self._n("cube-model"))
    cubestore_router = property(lambda self: self._n("cubestore-router"))
    cubestore_worker = property(lambda self: self._n("cubestore-worker"))
    # Governing (headless) Service of the worker StatefulSet: pods are <worker>-N.<this>.
    cubestore_workers = property(lambda self: self._n("cubestore-workers"))
    cube_secret = property(lambda self: self._n("cube"))
    # Secrets
    postgres_secret = property(lambda self: self._n("postgres-superuser"))
    minio_secret = property(lambda self: self._n("minio-root"))
    polaris_root_secret = property(lambda self: self._n("polaris-root"))
    catalog_writer_secret = property(lambda self: self._n("catalog-writer"))
    catalog_reader_secret = property(lambda self: self._n("catalog-reader"))

    def database_secret(self, database: str) -> str:
        return self._n(f"db-{database}")

    def all(self) -> dict[str, str]:
        return {
            attr: getattr(self, attr)
            for attr, value in type(self).__dict__.items()
            if isinstance(value, property)
        }


class Endpoints:
    """Every in-cluster address, derived from the config. Same-namespace DNS: the Service name."""

    def __init__(self, config: StackConfig) -> None:
        self._c = config
        self._n = config.names

    def _url(self, service: str, port: int, path: str = "") -> str:
        return f"http://{service}:{port}{path}"

    # PostgreSQL
    @property
    def postgres_host(self) -> str:
        return self._n.postgres

    @property
    def postgres_port(self) -> int:
        return self._c.postgres.port

    def jdbc_url(self, database: str) -> str:
        return f"jdbc:postgresql://{self._n.postgres}:{self._c.postgres.port}/{database}"

    # MinIO
    @property
    def s3_url(self) -> str:
        return self._url(self._n.minio, self._c.minio.api_port)

    # Polaris
    @property
    def polaris_base_url(self) -> str:
        return self._url(self._n.polaris, self._c.polaris.port)

    @property
    def catalog_uri(self) -> str:
        return self._url(self._n.polaris, self._c.polaris.port, "/api/catalog")

    @property
    def catalog_oauth2_uri(self) -> str:
        return self._url(self._n.polaris, self._c.polaris.port, "/api/catalog/v1/oauth/tokens")

    @property
    def polaris_management_uri(self) -> str:
        return self._url(self._n.polaris, self._c.polaris.port, "/api/management/v1")

    # Jaeger (None when disabled: clients then run with tracing off)
    @property
    def otlp_http_url(self) -> str | None:
        if not self._c.jaeger.enabled:
            return None
        return self._url(self._n.jaeger, self._c.jaeger.otlp_http_port)

    # Dagster
    @property
    def dagster_webserver_url(self) -> str:
        return self._url(self._n.dagster_webserver, self._c.dagster.service_port)

    # Cube Store: the router's meta port, and each worker by its stable StatefulSet DNS name.
    @property
    def cubestore_meta_addr(self) -> str:
        return f"{self._n.cubestore_router}:{self._c.cubestore.meta_port}"

    @property
    def cubestore_workers(self) -> list[str]:
        cs = self._c.cubestore
        return [f"{self._n.cubestore_worker}-{i}.{self._n.cubestore_workers}:{cs.worker_port}" for i in range(cs.workers)]

    # Cube: REST (/cubejs-api/v1/load) and GraphQL (/cubejs-api/graphql) on the API port.
    @property
    def cube_api_url(self) -> str:
        return self._url(self._n.cube, self._c.cube.api_port)

    # Jaeger's query API (/api/traces), on the UI port; None when disabled.
    @property
    def jaeger_query_url(self) -> str | None:
        if not self._c.jaeger.enabled:
            return None
        return self._url(self._n.jaeger, self._c.jaeger.ui_port)

    # Marquez
    @property
    def openlineage_url(self) -> str | None:
        if not self._c.marquez.enabled:
            return None
        return self._url(self._n.marquez, self._c.marquez.api_port)


class ConfigError(Exception):
    """An invalid configuration: the message names the file or variable, the field and the fix."""


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """Field names accepted at ``loc``'s parent, for 'unknown key' messages."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            annotation = current.model_fields[part].annotation
            current = annotation
        else:
            return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return None


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Nested dict of ``FLOE__A__B=value`` overrides, and which variable set each path."""
    nested: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    for key, raw in environ.items():
        if not key.startswith(OVERRIDE_PREFIX):
            continue
        path = tuple(p.lower() for p in key[len(OVERRIDE_PREFIX) :].split(OVERRIDE_DELIMITER))
        if not all(path):
            raise ConfigError(f"environment variable {key}: malformed override (use FLOE__SECTION__FIELD=value)")
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {key}: conflicts with another override")
        # YAML parsing gives numbers/booleans/lists their types ("8181" -> 8181, "false" -> False).
        node[path[-1]] = yaml.safe_load(raw) if raw != "" else ""
        sources[path] = key
    return nested, sources


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _format_errors(exc: ValidationError, path: Path, sources: dict[tuple[str, ...], str]) -> str:
    lines = [f"invalid configuration in {path} ({exc.error_count()} error{'s' if exc.error_count() > 1 else ''}):"]
    for error in exc.errors(include_url=False):
        loc = tuple(str(p) for p in error["loc"])
        field = ".".join(loc) or "(top level)"
        origin = next((sources[p] for p in sources if loc[: len(p)] == p), None)
        where = f"environment variable {origin}" if origin else str(path)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            allowed = _allowed_fields(StackConfig, error["loc"])
            message = f"unknown key '{loc[-1]}'" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
        elif error["type"] == "string_pattern_mismatch" and error["ctx"]["pattern"] in _PATTERN_HELP:
            message = f"{_PATTERN_HELP[error['ctx']['pattern']]} (got {error['input']!r})"
        elif "input" in error and not isinstance(error["input"], (dict, list)):
            message += f" (got {error['input']!r})"
        lines.append(f"  {where}: {field}: {message}")
    return "\n".join(lines)


def config_path(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    return Path(environ[CONFIG_PATH_ENV]) if environ.get(CONFIG_PATH_ENV) else DEFAULT_CONFIG_PATH


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> StackConfig:
    """Read, merge env overrides into, and validate a profile; raise :class:`ConfigError` if invalid."""
    environ = os.environ if environ is None else environ
    path = config_path(path, environ)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found (set {CONFIG_PATH_ENV} or pass --config)") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (namespace, postgres, ...)")
    overrides, sources = env_overrides(environ)
    try:
        return StackConfig.model_validate(_deep_merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, path, sources)) from None


def to_schema() -> dict[str, Any]:
    """JSON schema of the config (what editors and reviewers read)."""
    return StackConfig.model_json_schema()




if __name__ == "__main__":
    # `python -m floe.config > config/schema.json`: the schema editors use to check profiles.
    import json

    print(json.dumps(to_schema(), indent=2, sort_keys=True))
