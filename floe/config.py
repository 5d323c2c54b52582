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
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from floe import fast_yaml
from floe.quantities import canonical_quantity, cpu_millicores, memory_bytes

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


def _replica_count(value: int) -> int:
    if value < 1:
        raise ValueError(
            f"must be at least 1 (got {value}): a workload with more than one replica gets a PodDisruptionBudget "
            "(maxUnavailable 1), which needs a pod to protect; switch a service off with its `enabled` field instead"
        )
    return value


#: Pods of a stateless workload. More than one: spread over nodes, with a PodDisruptionBudget
#: (constructs/base.py replication). 10 at most: nothing here needs more.
Replicas = Annotated[int, Field(le=10), AfterValidator(_replica_count)]
# DNS-1123 subdomain: an Ingress host (no wildcard: one host per UI).
Hostname = Annotated[
    str, Field(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
]


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable once loaded.

    A section given in part keeps the rest of *its field's* default, at every depth: with
    ``polaris: {resources: {memory_limit: 2Gi}}`` (or ``FLOE__POLARIS__RESOURCES__MEMORY_LIMIT=2Gi``)
    Polaris keeps its own CPU request/limit and memory request, not the generic ``Resources()`` ones.
    Validators (limit >= request) then see the effective values.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _partial_sections_keep_their_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, field in cls.model_fields.items():
            given = data.get(name)
            if not isinstance(given, dict):
                continue
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                merged[name] = _overlay(default, given)
        return merged


def _overlay(default: BaseModel, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` on top of the field values of ``default`` (an instance: its own values, not its class's
    defaults), descending where both sides are sections. Plain mappings (``databases``, ``hosts``) are
    replaced, not merged: what a person writes for them is the whole value."""
    out: dict[str, Any] = {name: getattr(default, name) for name in type(default).model_fields}
    for key, value in given.items():
        current = out.get(key)
        out[key] = _overlay(current, value) if isinstance(value, dict) and isinstance(current, BaseModel) else value
    return out


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


class ProjectImage(Image):
    """The project image. ``tag: content`` (the default) is replaced by a digest of what goes into
    the image (floe/image_tag.py: Dockerfile, .dockerignore, the build context), so a code change
    gives a new tag and rolls exactly the pods that run it; set a fixed tag for a pushed image."""

    repository: str = Field(default="floe-project", min_length=1)
    tag: str = Field(default="content", min_length=1)

    @field_validator("tag")
    @classmethod
    def _content(cls, tag: str) -> str:
        from floe import image_tag

        return image_tag.content_tag() if tag == image_tag.CONTENT else tag


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


# RFC 1123 subdomain: what Kubernetes requires of StorageClass and Secret names (<= 253 characters).
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_PATTERN_HELP[DNS1123_SUBDOMAIN] = (
    "must be a DNS-1123 subdomain (a Kubernetes object name): lowercase letters, digits, '-' and '.', "
    "starting and ending alphanumeric"
)
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
# A key of a Secret's data: what the API server accepts (alphanumerics, '-', '_', '.').
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
_PATTERN_HELP[SECRET_KEY] = "must be a Secret data key: letters, digits, '-', '_' and '.'"
SecretDataKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY)]
# A host outside the cluster: a lowercase DNS name (RFC 1123) or an IPv4 address.
HOST = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*|\d{1,3}(\.\d{1,3}){3})$"
_PATTERN_HELP[HOST] = "must be a lowercase DNS name or an IPv4 address (no scheme, no port)"
Host = Annotated[str, Field(min_length=1, max_length=253, pattern=HOST)]
# PostgreSQL database names as floe writes them unquoted into JDBC URLs and Dagster's config.
PG_NAME = r"^[a-z_][a-z0-9_$]*$"
_PATTERN_HELP[PG_NAME] = "must be a lowercase PostgreSQL identifier: a letter or '_', then letters, digits, '_' or '$'"
PgName = Annotated[str, Field(min_length=1, max_length=63, pattern=PG_NAME)]


def _cidr(value: str) -> str:
    import ipaddress

    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"must be an IPv4 CIDR with no host bits set, e.g. 10.20.0.0/16 ({exc})") from None
    return str(network)


Cidr = Annotated[str, AfterValidator(_cidr)]


def _storage_size(value: str) -> str:
    size = memory_bytes(value)  # raises ValueError naming the accepted forms
    if size <= 0:
        raise ValueError("must be a positive storage quantity, e.g. 20Gi")
    canonical = canonical_quantity(value)
    if canonical != value:
        # The API server stores the canonical form; anything else shows as a diff on every apply.
        raise ValueError(f"write the canonical form {canonical!r} (what the API server stores)")
    return value


StorageSize = Annotated[str, AfterValidator(_storage_size)]


class Persistence(StrictModel):
    """A PersistentVolumeClaim per pod (StatefulSet volumeClaimTemplates) instead of an emptyDir.

    Only the ``cluster`` profile may ask for it. The claim is ReadWriteOnce; it outlives the pod and
    the StatefulSet (Kubernetes' default retention), so state survives restarts, rescheduling and
    re-applies. A template's size and class cannot be changed in place (volumeClaimTemplates are
    immutable): see docs/production.md.
    """

    # A StorageClass of the cluster (`kubectl get storageclass`); unset: the cluster's default class.
    storage_class: ObjectName | None = None
    size: StorageSize = "10Gi"


class SecretRef(StrictModel):
    """An existing Secret in the namespace (created by you, never synthesized) and its keys."""

    name: ObjectName


class DatabaseSecret(SecretRef):
    username_key: SecretDataKey = "username"
    password_key: SecretDataKey = "password"


class S3Secret(SecretRef):
    access_key_id_key: SecretDataKey = "access-key-id"
    secret_access_key_key: SecretDataKey = "secret-access-key"


class ExternalDatabase(StrictModel):
    """One application's database on the external server: it must already exist, owned by (or
    fully granted to) the user in ``secret`` — floe runs no CREATE DATABASE / CREATE ROLE there."""

    name: PgName
    secret: DatabaseSecret


#: ``cidr: public``: the server is on public addresses only (a public cloud endpoint whose ranges
#: are too many to list): egress to any address but the private, shared, loopback and link-local
#: ranges, on the server's port (constructs/network.py NOT_INTERNET).
PUBLIC = "public"


def _endpoint_cidr(host: str, cidr: str | None, field: str) -> None:
    """A DNS-named server must say where it lives: the egress rule is an ipBlock, and guessing
    "not private" blocks every managed database or VPC endpoint on a private address (every
    wait-for-deps loop then waits for ever)."""
    if cidr is None and _host_cidr(host) is None:
        raise ValueError(
            f"{field}: required when the host is a DNS name ({host!r}): the NetworkPolicies' egress rule is an "
            f"ipBlock. Set the CIDR the name resolves into (e.g. the VPC's 10.20.0.0/16), or '{PUBLIC}' for a "
            "server on public addresses only"
        )


class ExternalPostgres(StrictModel):
    """An existing PostgreSQL server (managed or self-run) instead of the in-cluster one."""

    host: Host
    port: Port = 5432
    # Where the server lives, for the NetworkPolicies' egress rule: a CIDR, or `public` (any
    # non-private address on ``port``). Required when ``host`` is a DNS name; unset for an IP host:
    # that address /32 (constructs/network.py explains why).
    cidr: Cidr | Literal["public"] | None = None
    # libpq/pgjdbc sslmode of every client (Dagster's processes and probes as PGSSLMODE, Polaris and
    # Marquez in their JDBC URLs). Unset: the clients' default (prefer). verify-ca/verify-full need
    # the server's CA in every pod: not wired yet (docs/production.md).
    sslmode: Literal["disable", "allow", "prefer", "require"] | None = None
    # Per application database (dagster, marquez, polaris: every entry of postgres.databases).
    databases: dict[Identifier, ExternalDatabase]

    @model_validator(mode="after")
    def _cidr_for_a_name(self) -> ExternalPostgres:
        _endpoint_cidr(self.host, self.cidr, "cidr")
        return self


class ExternalS3Secrets(StrictModel):
    """One declared Secret per client of an external store: each client gets its own key, with
    the least access that works (docs/security.md has the table: demo/bootstrap/identities.py)."""

    # The bucket step (and the reconcile): lists and creates the three buckets. Only this key may
    # create buckets; users and policies on an external store are yours.
    buckets: S3Secret
    polaris: S3Secret
    dagster_pipeline: S3Secret
    dagster_webserver: S3Secret
    cube: S3Secret
    cubestore: S3Secret
    verify: S3Secret
    # Only with postgres.backup (and then required): read/write on the backup bucket alone.
    backup: S3Secret | None = None


class ExternalS3(StrictModel):
    """An existing S3-compatible object store instead of the in-cluster MinIO. The buckets are
    ``minio.warehouse_bucket``, ``minio.cubestore_bucket`` and ``minio.dagster_logs_bucket``; they,
    and the users behind ``secrets``, are yours to create (no root key of that store is ever asked for)."""

    # http(s)://host[:port]; the port defaults to 443 (https) or 80 (http) and is always written out.
    endpoint: str = Field(pattern=r"^https?://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d{1,5})?/?$")
    region: str = Field(min_length=1, pattern=r"^[a-z0-9-]+$")
    secrets: ExternalS3Secrets
    # Path-style requests (http://host/bucket/key). Every client of the stack is configured for it
    # (boto3, pyiceberg, DuckDB, Polaris, Cube Store); virtual-hosted style is not wired yet.
    path_style: bool = True
    # As postgres.external.cidr: required when the endpoint's host is a DNS name.
    cidr: Cidr | Literal["public"] | None = None

    @model_validator(mode="after")
    def _cidr_for_a_name(self) -> ExternalS3:
        _endpoint_cidr(self.host, self.cidr, "cidr")
        return self

    @field_validator("path_style")
    @classmethod
    def _path_style_only(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "virtual-hosted-style addressing is not supported yet: every S3 client of the stack "
                "(boto3, pyiceberg, DuckDB, Polaris, Cube Store) is set to path-style; use a store "
                "that accepts path-style requests"
            )
        return value

    @property
    def scheme(self) -> str:
        return self.endpoint.split("://", 1)[0]

    @property
    def host(self) -> str:
        return self.endpoint.split("://", 1)[1].rstrip("/").split(":")[0]

    @property
    def port(self) -> int:
        hostport = self.endpoint.split("://", 1)[1].rstrip("/")
        if ":" in hostport:
            return int(hostport.rsplit(":", 1)[1])
        return 443 if self.scheme == "https" else 80

    @field_validator("endpoint")
    @classmethod
    def _port_in_range(cls, value: str) -> str:
        hostport = value.split("://", 1)[1].rstrip("/")
        if ":" in hostport and not 1 <= int(hostport.rsplit(":", 1)[1]) <= 65535:
            raise ValueError(f"port of {value!r} is not in 1-65535")
        return value


CRON = r"^\S+ \S+ \S+ \S+ \S+$"
_PATTERN_HELP[CRON] = "must be a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. '15 2 * * *'"


class PostgresBackup(StrictModel):
    """A CronJob that dumps every application database (``pg_dump --format=custom``, with the server
    image's own pg_dump) and uploads the set to the object store (``minio`` in-cluster or
    ``minio.external``), keeping the newest ``keep`` sets. Restore: docs/production.md."""

    # Standard 5-field cron, UTC. Daily at 02:15 by default.
    schedule: str = Field(default="15 2 * * *", pattern=CRON)
    # Retention: complete backup sets kept in the bucket; older ones are deleted after each upload.
    keep: int = Field(default=7, ge=1, le=365)
    # Created by the buckets Job like the stack's other buckets; must differ from them.
    bucket: BucketName = "floe-backups"
    # Objects are written under <prefix>/<UTC timestamp>/<database>.dump.
    prefix: str = Field(default="postgres", pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63)
    # The dumps are staged here before the upload (an emptyDir): at least the compressed databases.
    scratch_size: StorageSize = "2Gi"
    # A run that takes longer is killed; the next schedule tries again.
    active_deadline_seconds: int = Field(default=3600, ge=300, le=86_400)
    # pg_dump (the PostgreSQL image) then the upload (the project image: boto3); one at a time.
    resources: Resources = Resources(cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi")


class PostgresConfig(StrictModel):
    image: Image = Image(repository="postgres", tag="18.1")
    # Documented: shared_buffers defaults to 128MB (postgresql.conf), plus a few MiB per backend
    # (~20 pooled connections from Dagster, Polaris and Marquez). The 256Mi baseline covers it.
    resources: Resources = Resources(cpu_request="100m", memory_request="256Mi", cpu_limit="500m", memory_limit="512Mi")
    port: Port = 5432
    # One database (owned by its own user) per application that keeps state in PostgreSQL.
    databases: tuple[Identifier, ...] = ("dagster", "marquez", "polaris")
    # cluster profile: a StatefulSet with a PersistentVolumeClaim for the data directory.
    persistence: Persistence | None = None
    # An existing server instead: nothing of the above is synthesized (docs/production.md).
    external: ExternalPostgres | None = None
    # Scheduled backups of the in-cluster server to the object store (None: none).
    backup: PostgresBackup | None = None
    # Kubernetes' grace before SIGKILL. The image stops PostgreSQL with SIGINT (its STOPSIGNAL: fast
    # shutdown, a checkpoint) and warns that the runtimes' short defaults may cut it off, which means
    # crash recovery at the next start; 30 s is Kubernetes' default.
    termination_grace_seconds: int = Field(default=120, ge=30, le=3600)
    # /dev/shm (a memory-backed emptyDir): PostgreSQL's dynamic shared memory (parallel queries)
    # lives there; a container's default is 64 MiB. Counted in the container's memory limit.
    shm_size: StorageSize = "128Mi"
    # PostgreSQL's own max_connections: set on the in-cluster server (postgres -c max_connections);
    # with external, the server's value as you know it. Every client's pool is sized so that the
    # sum at the configured replicas fits (floe/connections.py), less the superuser's reserved
    # connections (superuser_reserved_connections, 3) and ``connection_headroom``.
    max_connections: int = Field(default=100, ge=20, le=10_000)
    # Left free for what no pool counts: psql sessions, migrations, the bootstrap Jobs.
    connection_headroom: int = Field(default=10, ge=0, le=1000)

    @model_validator(mode="after")
    def _one_source(self) -> PostgresConfig:
        if self.persistence is not None and self.external is not None:
            raise ValueError("set persistence (in-cluster server) or external (existing server), not both")
        if self.backup is not None and self.external is not None:
            raise ValueError(
                "backup: backs up the in-cluster server only; with external, use the backups of your "
                "managed database (point-in-time recovery) and remove postgres.backup"
            )
        if self.external is not None:
            declared, needed = set(self.external.databases), set(self.databases)
            if declared != needed:
                raise ValueError(
                    f"external.databases must declare exactly {', '.join(sorted(needed))} "
                    f"(missing: {', '.join(sorted(needed - declared)) or '-'}; unknown: {', '.join(sorted(declared - needed)) or '-'})"
                )
        return self


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
    # cluster profile: a StatefulSet with a PersistentVolumeClaim for /data.
    persistence: Persistence | None = None
    # An existing S3-compatible store instead of MinIO (the bucket names above still apply).
    external: ExternalS3 | None = None

    @model_validator(mode="after")
    def _one_source(self) -> MinioConfig:
        if self.persistence is not None and self.external is not None:
            raise ValueError("set persistence (in-cluster MinIO) or external (existing S3 store), not both")
        return self

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
    # Stateless on relational-jdbc (every entity in PostgreSQL). Above 1 the token broker switches to
    # a shared symmetric key from the polaris-root Secret: the default rsa-key-pair broker generates
    # its keys per pod, and a token issued by one replica fails on another (Polaris
    # "Configuring Polaris for Production": "not suitable when deploying many replicas").
    replicas: Replicas = 1
    # Agroal pool of each replica (QUARKUS_DATASOURCE_JDBC_MAX_SIZE; Quarkus' default is 20).
    db_pool_size: int = Field(default=8, ge=1, le=200)
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
    # A static server + proxy to the API: no state.
    replicas: Replicas = 1


class MarquezConfig(StrictModel):
    enabled: bool = True
    image: Image = Image(repository="marquezproject/marquez", tag="0.51.1")
    # Request: estimate of a Dropwizard JVM's idle working set; the limit bounds the sized pools.
    resources: Resources = Resources(cpu_request="200m", memory_request="320Mi", cpu_limit="1", memory_limit="1Gi")
    api_port: Port = 5000
    admin_port: Port = 5001
    # State is in PostgreSQL. migrateOnStartup runs Flyway in every replica: Flyway serialises
    # concurrent migrations on PostgreSQL with an advisory lock, so two pods starting together
    # migrate once (the other waits, then finds nothing to apply).
    replicas: Replicas = 1
    # Dropwizard pool of each replica (db.maxSize; Dropwizard's default is 100, min/initial 10).
    db_pool_size: int = Field(default=8, ge=2, le=200)
    web: MarquezWebConfig = MarquezWebConfig()
    # OpenLineage namespace the pipeline reports its jobs under.
    lineage_namespace: str = Field(default="floe", min_length=1)


class KubernetesApiConfig(StrictModel):
    """Where the pods that talk to the Kubernetes API (the Dagster daemon and webserver with the k8s
    run launcher) reach it. NetworkPolicies see the API server's own address and port (after the
    ``kubernetes`` Service's DNAT), which no pod selector matches: these ipBlocks allow it."""

    # Required with run_launcher k8s (DagsterConfig), never open: the pods that may reach it hold a
    # token that can create Jobs. docs/production.md, "The API server's address", shows how to find it.
    cidrs: tuple[Cidr, ...] = ()
    # 6443: kubeadm, kind, k3s, minikube; 443: most managed control planes.
    ports: tuple[Port, ...] = (443, 6443)

    @field_validator("cidrs")
    @classmethod
    def _not_open(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        wide = [c for c in value if ipaddress.IPv4Network(c).prefixlen < 8]
        if wide:
            raise ValueError(
                f"{', '.join(wide)} opens egress far beyond the API server: name its own addresses (the endpoints of "
                "`kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes`, e.g. [172.18.0.2/32]; "
                "docs/production.md)"
            )
        return value


class RunMonitoringConfig(StrictModel):
    """Dagster's run monitoring (``run_monitoring`` in dagster.yaml, the daemon's MONITORING thread).

    Off in Dagster unless enabled; the official chart enables it. Without it a run whose worker died
    (a run pod OOM-killed, evicted by a drain, stuck in ImagePullBackOff, its Job deleted) stays
    STARTING/STARTED for ever and, with ``max_concurrent_runs: 1``, nothing else runs again.
    ``max_resume_run_attempts`` is always 0 (not a field): above 0 every Dagster process builds the
    run launcher at start (and needs an in-cluster token), and a resumed run re-executes steps.
    """

    enabled: bool = True
    # A run that has not started (its worker never reported) this long after launch is marked
    # failed: image pull + scheduling + interpreter start. Dagster's default.
    start_timeout_seconds: int = Field(default=180, ge=30, le=3600)
    # How often the daemon checks each in-progress run's worker (K8sRunLauncher reads its Job's
    # status): a run whose Job or pod vanished is marked failed within this. Dagster's default is 120.
    poll_interval_seconds: int = Field(default=60, ge=10, le=600)


class RunRetriesConfig(StrictModel):
    """Dagster's run retries (``run_retries``, the daemon's EVENT_LOG_CONSUMER thread): a failed run
    is re-executed as a new run. 0 (default): off, a failed run stays failed."""

    max_retries: int = Field(default=0, ge=0, le=10)
    # False: retry only runs whose worker crashed or vanished (the cases run monitoring detects),
    # and leave failures of our own assets (a dbt test) to asset retry policies. Dagster's default
    # is True.
    retry_on_asset_or_op_failure: bool = False


class DagsterConfig(StrictModel):
    """Webserver, daemon and the user-code gRPC server, all from the project image."""

    webserver_port: Port = 3000
    # The Service maps 80 -> webserver_port, as Dagster's own chart does.
    service_port: Port = 80
    grpc_port: Port = 3030
    # The webserver only reads the instance and proxies to the code server: Dagster's own Helm chart
    # scales it with dagsterWebserver.replicaCount. The daemon and the code server stay at one
    # (one daemon per instance; runs execute in the code server's pod).
    webserver_replicas: Replicas = 1
    # The webserver holds one pooled connection per storage (runs, event log, schedules) plus up to
    # this many more each (dagster-webserver --db-pool-max-overflow; its default is 20). Every
    # other Dagster process opens connections per operation (NullPool).
    webserver_db_pool_max_overflow: int = Field(default=2, ge=0, le=50)
    # Dagster's own read-only mode (`dagster-webserver --read-only`): no launching, terminating or
    # toggling schedules from the UI or GraphQL. Runs still start from the schedule and the sensor.
    webserver_read_only: bool = False
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
    # After each dbt build the step compacts the marts it rebuilt to one snapshot; the replaced
    # snapshots' files stay this long (demo.lakehouse.maintenance): how long a reader that planned its
    # scan on one (a Cube rollup refresh, a query in flight) can still read it. FLOE_MARTS_SNAPSHOT_RETENTION_S.
    marts_snapshot_retention_s: int = Field(default=600, ge=0, le=7 * 24 * 3600)
    max_concurrent_runs: int = Field(default=1, ge=1, le=10)
    # default: each run is a subprocess of the user-code server (in its pod, no RBAC). k8s:
    # dagster-k8s's K8sRunLauncher, one Kubernetes Job per run from the project image, sized by
    # run_resources; the daemon and webserver then get a ServiceAccount bound to a Role with exactly
    # the API calls the launcher makes (constructs/dagster.py LAUNCHER_RULES).
    run_launcher: Literal["default", "k8s"] = "default"
    # One run's pod (k8s launcher): a run peaks at ~1 GiB (run worker 449 MiB + dbt 245 MiB,
    # bench.footprint), requested in full since the pod exists only for that run.
    run_resources: Resources = Resources(cpu_request="250m", memory_request="1Gi", cpu_limit="2", memory_limit="2Gi")
    kubernetes_api: KubernetesApiConfig = KubernetesApiConfig()
    run_monitoring: RunMonitoringConfig = RunMonitoringConfig()
    run_retries: RunRetriesConfig = RunRetriesConfig()
    # A Job that migrates Dagster's PostgreSQL storage to the project image's Dagster (what `dagster
    # instance migrate` does), named after its content: a new image (a Dagster upgrade) is a new Job,
    # which runs once; re-applying an unchanged dist/ runs nothing. For state that outlives the pods
    # (config/cluster.yaml); the local profile's PostgreSQL starts empty with each pod.
    migration_job: bool = False

    @model_validator(mode="after")
    def _api_server_known_for_k8s(self) -> DagsterConfig:
        if self.run_launcher == "k8s" and not self.kubernetes_api.cidrs:
            raise ValueError(
                "dagster.kubernetes_api.cidrs: run_launcher k8s needs the API server's address for the launcher's "
                "NetworkPolicy egress (the endpoints of `kubectl get endpointslices -n default -l "
                "kubernetes.io/service-name=kubernetes`, e.g. [172.18.0.2/32])"
            )
        return self


class CubeSqlServiceConfig(StrictModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    # NodePort only: a fixed port in the cluster's NodePort range (default 30000-32767); None lets
    # the API server pick one.
    node_port: int | None = Field(default=None, ge=30000, le=32767)
    # LoadBalancer only: the client ranges the cloud load balancer admits (spec.loadBalancerSourceRanges);
    # empty: every address. The SQL API is password-protected, but narrow it where you can.
    load_balancer_source_ranges: tuple[Cidr, ...] = ()

    @model_validator(mode="after")
    def _node_port_needs_node_port_type(self) -> CubeSqlServiceConfig:
        if self.node_port is not None and self.type != "NodePort":
            raise ValueError(f"node_port is only used with type NodePort (type is {self.type})")
        if self.load_balancer_source_ranges and self.type != "LoadBalancer":
            raise ValueError(f"load_balancer_source_ranges is only used with type LoadBalancer (type is {self.type})")
        return self


class CubeConfig(StrictModel):
    """Cube API (REST/GraphQL on api_port, Postgres-wire SQL on sql_port) and its refresh worker."""

    # Cube 1.7.43 embeds DuckDB 1.5.5 (@duckdb/node-api 1.5.5-r.5): the extension files we ship
    # are built for exactly that version. Check before moving.
    image: Image = Image(repository="cubejs/cube", tag="v1.7.43")
    api_replicas: int = Field(default=1, ge=1, le=5)
    # How the SQL API (Postgres wire, sql_port) is reached: ClusterIP (in-cluster and port-forward),
    # NodePort or LoadBalancer (from outside the cluster; the NetworkPolicy then admits any source on
    # sql_port: clients authenticate with the floe-cube Secret's sql-user/sql-password).
    sql_service: CubeSqlServiceConfig = CubeSqlServiceConfig()
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
    # The router (metastore, one per cluster) is never replicated: Cube Store has one metastore.
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


class AvailabilityConfig(StrictModel):
    """How a workload with more than one replica keeps serving (constructs/base.py ``replication``):
    its pods are spread over ``topology_key`` domains, a PodDisruptionBudget lets a drain evict one
    pod at a time (maxUnavailable 1), and Deployments roll one new pod in before an old one goes."""

    # kubernetes.io/hostname: one domain per node (topology.kubernetes.io/zone for zones).
    topology_key: str = Field(default="kubernetes.io/hostname", min_length=1, pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9._-]+$")
    max_skew: int = Field(default=1, ge=1, le=5)
    # DoNotSchedule (hard): two replicas never share a node while another node can take one. Taints
    # are honoured (nodeTaintsPolicy Honor), so a cordoned node under drain is no domain and the
    # evicted pod schedules elsewhere; one node is one domain, so a single-node cluster still
    # schedules every replica. ScheduleAnyway (soft) only prefers spreading.
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = "DoNotSchedule"


class IngressControllerConfig(StrictModel):
    """Where the ingress controller's pods run: the NetworkPolicies admit exactly these into the
    exposed Services' pods and ports. Defaults: the ingress-nginx chart's controller."""

    namespace: DnsLabel = "ingress-nginx"
    pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
        min_length=1,
    )


class IngressHosts(StrictModel):
    """One host per UI; a UI without a host gets no Ingress rule."""

    dagster: Hostname | None = None
    cube: Hostname | None = None
    marquez: Hostname | None = None
    jaeger: Hostname | None = None
    minio_console: Hostname | None = None

    def given(self) -> dict[str, str]:
        return {ui: host for ui, host in self.model_dump().items() if host}


_ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _annotation_key(value: str) -> str:
    """The API server's rule for annotation keys: an optional DNS-subdomain prefix and '/', then a
    name of at most 63 characters (alphanumerics, '-', '_', '.'; alphanumeric at both ends)."""
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.fullmatch(DNS1123_SUBDOMAIN, prefix)):
        raise ValueError(f"{value!r}: the prefix before '/' must be a DNS subdomain, e.g. nginx.ingress.kubernetes.io")
    if not _ANNOTATION_NAME.match(name):
        raise ValueError(f"{value!r}: the name must be 1-63 characters of [A-Za-z0-9-_.], alphanumeric at both ends")
    return value


AnnotationKey = Annotated[str, AfterValidator(_annotation_key)]

#: ingress-nginx's authentication annotations (kubernetes/ingress-nginx
#: docs/user-guide/nginx-configuration/annotations.md, "Authentication", "External Authentication").
NGINX_AUTH_URL = "nginx.ingress.kubernetes.io/auth-url"
NGINX_AUTH_SIGNIN = "nginx.ingress.kubernetes.io/auth-signin"
NGINX_AUTH_TYPE = "nginx.ingress.kubernetes.io/auth-type"
NGINX_AUTH_SECRET = "nginx.ingress.kubernetes.io/auth-secret"
NGINX_AUTH_REALM = "nginx.ingress.kubernetes.io/auth-realm"


class ExternalAuth(StrictModel):
    """An authentication service already running (oauth2-proxy, Authelia, ...) in front of every UI
    host: ingress-nginx asks ``url`` about each request (2xx lets it through, 401/403 refuses it) and
    sends refused browsers to ``signin_url``."""

    type: Literal["external"]
    url: str = Field(pattern=r"^https?://[^\s]+$")
    signin_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")


class BasicAuth(StrictModel):
    """HTTP basic authentication from a Secret you create in the namespace: key ``auth``, htpasswd
    lines (``htpasswd -c auth <user>``; ``kubectl create secret generic <name> --from-file=auth``)."""

    type: Literal["basic"]
    secret: ObjectName
    realm: str = Field(default="floe", min_length=1, pattern=r'^[^"\n]+$')


class NoAuth(StrictModel):
    """No authentication in front of the UIs, said on purpose: whoever reaches the ingress controller
    can launch and terminate Dagster runs, use Marquez web's DELETE and try logins on MinIO's console
    (for a cluster only you can reach)."""

    type: Literal["none"]


def _label_value(value: str) -> str:
    if len(value) > 63 or not re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value):
        raise ValueError(f"{value!r}: a label value is at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends")
    return value


#: A label's value (label keys follow the annotation key rule, AnnotationKey).
LabelValue = Annotated[str, AfterValidator(_label_value)]
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
#: A Gateway listener's name (Gateway API SectionName: a DNS-1123 subdomain of at most 253 characters).
SectionName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]


class GatewayDataPlane(StrictModel):
    """Where the Gateway's data-plane pods run (the proxies that forward each request to a UI): the
    NetworkPolicies admit exactly these into the exposed Services' pods and ports, as they admit the
    ingress controller's pods for the Ingress. Every implementation labels them its own way (see
    ``kubectl get pods -n <namespace> --show-labels``), so there is no default."""

    namespace: DnsLabel
    pod_labels: dict[AnnotationKey, LabelValue] = Field(min_length=1)


class GatewayParent(StrictModel):
    """An existing Gateway (gateway.networking.k8s.io/v1) the UIs' HTTPRoutes attach to, instead of
    an Ingress. It is yours (or the platform team's): floe never synthesizes or changes it, so its
    listeners must accept routes from the stack's namespace (``allowedRoutes``), and TLS terminates
    on its listener (``ingress.tls_secret``: the certificate's Secret stays in the stack's namespace
    and floe grants the Gateway the reference with a ReferenceGrant)."""

    name: ObjectName
    namespace: DnsLabel
    # The listener to attach to (parentRefs[].sectionName); None: every listener whose hostname and
    # allowedRoutes admit the routes. Name the HTTPS listener, or the UIs may be served over HTTP too.
    section_name: SectionName | None = None
    data_plane: GatewayDataPlane
    # Who authenticates requests to the UIs. A standard-channel HTTPRoute has no authentication
    # filter (ExternalAuth exists only in the experimental channel, from v1.4), so floe cannot put
    # one in front of the UIs: "gateway": your Gateway implementation enforces it with its own policy
    # attached to the Gateway (e.g. Envoy Gateway's SecurityPolicy, Istio's AuthorizationPolicy);
    # "none": the UIs are open to whoever reaches the Gateway, and you say so. Required: an
    # unguarded UI is never a silent default.
    authentication: Literal["gateway", "none"]

    def parent_ref(self) -> dict[str, str]:
        """This Gateway as an HTTPRoute parentRef (group and kind written out, not defaulted)."""
        ref = {"group": GATEWAY_API_GROUP, "kind": "Gateway", "namespace": self.namespace, "name": self.name}
        if self.section_name:
            ref["sectionName"] = self.section_name
        return ref


class IngressConfig(StrictModel):
    """An Ingress (networking.k8s.io/v1) for the UIs, off by default (local: `make port-forward`)."""

    enabled: bool = False
    # The IngressClass to use; None: the cluster's default class.
    class_name: DnsLabel | None = None
    hosts: IngressHosts = IngressHosts()
    # A kubernetes.io/tls Secret in the namespace covering every host (you or cert-manager create
    # it); None: plain HTTP. With ``gateway``: TLS terminates on the Gateway's listener, whose
    # certificateRefs name this Secret; a Gateway in another namespace may use it only through the
    # ReferenceGrant floe then synthesizes (GatewayParent).
    tls_secret: DnsLabel | None = None
    controller: IngressControllerConfig = IngressControllerConfig()
    # More annotations for the controller (e.g. nginx.ingress.kubernetes.io/proxy-body-size: 100m for
    # MinIO console uploads, ingress-nginx's default is 1m; cert-manager.io/cluster-issuer: ...).
    annotations: dict[AnnotationKey, str] = Field(default_factory=dict)
    # Authentication in front of every UI host (ingress-nginx annotations). Required with an enabled
    # Ingress, as gateway.authentication is with a Gateway, so an unguarded UI is never a silent
    # default: external or basic, or {type: none} to expose the UIs open on purpose (Dagster can
    # launch and terminate runs, Marquez web proxies DELETE, MinIO's console takes any login attempt).
    auth: Annotated[ExternalAuth | BasicAuth | NoAuth, Field(discriminator="type")] | None = None
    # Gateway API instead of an Ingress: one HTTPRoute per host, attached to this existing Gateway,
    # with the same hosts, path (/) and backends. None: the Ingress. The two are exclusive: one
    # ``ingress`` section says how the UIs are reached, and ``gateway`` picks the API.
    gateway: GatewayParent | None = None

    def auth_annotations(self) -> dict[str, str]:
        auth = self.auth
        if isinstance(auth, ExternalAuth):
            return {NGINX_AUTH_URL: auth.url, **({NGINX_AUTH_SIGNIN: auth.signin_url} if auth.signin_url else {})}
        if isinstance(auth, BasicAuth):
            return {NGINX_AUTH_TYPE: "basic", NGINX_AUTH_SECRET: auth.secret, NGINX_AUTH_REALM: auth.realm}
        return {}

    @model_validator(mode="after")
    def _auth_not_twice(self) -> IngressConfig:
        reserved = {NGINX_AUTH_URL, NGINX_AUTH_SIGNIN, NGINX_AUTH_TYPE, NGINX_AUTH_SECRET, NGINX_AUTH_REALM}
        clash = sorted(reserved & set(self.annotations))
        if clash:
            raise ValueError(f"annotations: {', '.join(clash)} come from ingress.auth; set auth instead (external or basic)")
        if any(key.startswith("floe.dev/") for key in self.annotations):
            raise ValueError("annotations: floe.dev/ keys are the stack's own (controller namespace, pod labels)")
        return self

    @model_validator(mode="after")
    def _auth_said_when_enabled(self) -> IngressConfig:
        if self.enabled and self.gateway is None and self.auth is None:
            raise ValueError(
                "auth: required with an enabled Ingress, so the UIs are never open by default: "
                "{type: external, url: https://<your oauth2-proxy>/oauth2/auth} (an auth service you run), "
                "{type: basic, secret: <Secret with an htpasswd `auth` key>}, or {type: none} to expose them "
                "unguarded on purpose"
            )
        return self

    @model_validator(mode="after")
    def _gateway_takes_no_ingress_settings(self) -> IngressConfig:
        if self.gateway is None:
            return self
        if isinstance(self.auth, NoAuth):
            raise ValueError("auth: with gateway set, say it in gateway.authentication (gateway | none), not ingress.auth")
        if self.auth is not None:
            raise ValueError(
                f"auth: type {self.auth.type} is enforced by ingress-nginx (annotations on the Ingress); with gateway set "
                "no Ingress is synthesized and a standard-channel HTTPRoute has no authentication filter, so the UIs would "
                "be open. Remove auth, guard the Gateway with your implementation's policy and set "
                "gateway.authentication: gateway (or gateway.authentication: none to expose them unguarded on purpose)"
            )
        if self.annotations:
            raise ValueError(
                f"annotations: {', '.join(sorted(self.annotations))} are for the ingress controller; with gateway set no "
                "Ingress is synthesized (configure the Gateway or your implementation's policies instead)"
            )
        if self.class_name is not None:
            raise ValueError(
                f"class_name: {self.class_name!r} is an IngressClass; with gateway set no Ingress is synthesized "
                "(the Gateway's own gatewayClassName applies)"
            )
        if self.controller != IngressControllerConfig():
            raise ValueError(
                "controller: describes the ingress controller's pods; with gateway set, gateway.data_plane says where "
                "the Gateway's pods run (the NetworkPolicies admit those)"
            )
        return self

    @model_validator(mode="after")
    def _hosts_when_enabled(self) -> IngressConfig:
        if self.enabled and not self.hosts.given():
            raise ValueError(
                "hosts: an enabled Ingress needs at least one host (hosts.dagster, hosts.cube, hosts.marquez, "
                "hosts.jaeger, hosts.minio_console)"
            )
        hosts = list(self.hosts.given().values())
        if len(set(hosts)) != len(hosts):
            raise ValueError("hosts: each UI needs its own host")
        return self


class DnsConfig(StrictModel):
    """Where pods ask the cluster DNS: the ``<prefix>-allow-dns`` NetworkPolicy's egress peers, on
    ``port`` (UDP and TCP). Defaults: CoreDNS's pods (``k8s-app: kube-dns`` in kube-system) on Docker
    Desktop, kind, k3d/k3s, minikube and kubeadm. NodeLocal DNSCache or another resolver outside
    those pods: add its address to ``cidrs`` (docs/production.md); OpenShift: namespace
    openshift-dns, pod_labels {dns.operator.openshift.io/daemonset-dns: default}, port 5353."""

    namespace: DnsLabel | None = "kube-system"
    pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    # Extra ipBlock peers, e.g. [169.254.20.10/32, <kube-dns ClusterIP>/32] for NodeLocal DNSCache.
    cidrs: tuple[Cidr, ...] = ()
    port: Port = 53

    @model_validator(mode="after")
    def _some_peer(self) -> DnsConfig:
        if not self.cidrs and not (self.namespace and self.pod_labels):
            raise ValueError("dns: give namespace and pod_labels (the DNS pods), or cidrs, or both: no peer would block every lookup")
        return self


class Toleration(StrictModel):
    """A pod toleration (core/v1 Toleration), for nodes tainted for this stack."""

    key: str | None = Field(default=None, min_length=1, max_length=316)
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("a toleration with operator Exists takes no value")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists (it tolerates every taint)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("toleration_seconds applies to effect NoExecute only")
        return self


class Placement(StrictModel):
    """Where a component's pods may run and how they rank when the cluster is full."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    # A PriorityClass of the cluster (cluster-scoped: create it yourself).
    priority_class_name: ObjectName | None = None


#: Components whose pods ``placement.components`` may place: the workload names without the prefix.
PLACEABLE = (
    "postgres", "postgres-backup", "minio", "minio-buckets", "polaris", "polaris-init", "jaeger", "marquez",
    "marquez-web", "dagster-webserver", "dagster-daemon", "dagster-user-code", "dagster-run", "dagster-migrate",
    "reconcile", "cube", "cube-refresh-worker", "cubestore-router", "cubestore-worker", "verify",
)


class PlacementConfig(StrictModel):
    """Pod placement: ``default`` for every pod of the stack, a component's entry replacing it
    field by field (an empty field keeps the default's). ``image_pull_secrets``: Secrets (of type
    kubernetes.io/dockerconfigjson, created by you) every pod pulls its images with."""

    image_pull_secrets: tuple[ObjectName, ...] = ()
    default: Placement = Placement()
    components: dict[str, Placement] = Field(default_factory=dict)

    @field_validator("components")
    @classmethod
    def _known(cls, value: dict[str, Placement]) -> dict[str, Placement]:
        unknown = sorted(set(value) - set(PLACEABLE))
        if unknown:
            raise ValueError(f"unknown component {', '.join(unknown)}; components: {', '.join(PLACEABLE)}")
        return value

    def of(self, component: str) -> Placement:
        """``default`` with the component's non-empty fields over it."""
        own = self.components.get(component)
        if own is None:
            return self.default
        return Placement(
            node_selector=own.node_selector or self.default.node_selector,
            tolerations=own.tolerations or self.default.tolerations,
            priority_class_name=own.priority_class_name or self.default.priority_class_name,
        )


class NetworkConfig(StrictModel):
    """Peers of the NetworkPolicies that are not derived from the stack (constructs/network.py)."""

    dns: DnsConfig = DnsConfig()


class CredentialsConfig(StrictModel):
    """Where passwords and keys come from.

    ``generated``: random per install, made on first synth and kept in ``store`` (git-ignored) so a
    re-synth never rotates them. ``existing``: the Secrets already exist in the namespace (created by
    you); we only reference them by name and synthesize none.
    """

    source: Literal["generated", "existing"] = "generated"
    store: Path = Path(".floe/credentials.json")


class StackConfig(StrictModel):
    # local: Docker Desktop (emptyDir only, config/local.yaml); cluster: a shared multi-node cluster
    # (config/cluster.yaml), where persistent volumes and the cluster-only settings are allowed.
    profile: Literal["local", "cluster"] = "local"
    namespace: DnsLabel = "floe"
    # Prefix of every object name; Services become <prefix>-postgres, <prefix>-minio, ...
    name_prefix: DnsLabel = "floe"
    # The project image (bootstrap Jobs, Dagster, dbt). Built locally by `make image`; its tag is a
    # digest of the build context unless set (ProjectImage).
    project_image: ProjectImage = Field(default_factory=ProjectImage)
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
    availability: AvailabilityConfig = AvailabilityConfig()
    ingress: IngressConfig = IngressConfig()
    network: NetworkConfig = NetworkConfig()
    placement: PlacementConfig = PlacementConfig()
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
    def _ingress_hosts_have_services(self) -> StackConfig:
        hosts = self.ingress.hosts
        off = {
            "marquez": not (self.marquez.enabled and self.marquez.web.enabled),
            "jaeger": not self.jaeger.enabled,
        }
        for ui, disabled in off.items():
            if getattr(hosts, ui) and disabled:
                raise ValueError(f"ingress.hosts.{ui} is set but that UI is switched off ({ui}.enabled / marquez.web.enabled)")
        return self

    @model_validator(mode="after")
    def _persistence_needs_cluster_profile(self) -> StackConfig:
        asked = [f"{s}.persistence" for s in ("postgres", "minio") if getattr(self, s).persistence is not None]
        if asked and self.profile != "cluster":
            raise ValueError(
                f"{' and '.join(asked)}: persistent storage (PersistentVolumeClaims) needs profile: cluster; "
                f"the {self.profile} profile keeps every volume an emptyDir"
            )
        return self

    @model_validator(mode="after")
    def _connections_fit(self) -> StackConfig:
        from floe.connections import budget_problem

        problem = budget_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _backup_bucket_is_its_own(self) -> StackConfig:
        backup = self.postgres.backup
        m = self.minio
        if backup is not None and backup.bucket in (m.warehouse_bucket, m.cubestore_bucket, m.dagster_logs_bucket):
            raise ValueError(
                f"postgres.backup.bucket {backup.bucket!r} is also one of minio.warehouse_bucket, cubestore_bucket, "
                "dagster_logs_bucket: give the backups their own bucket"
            )
        if backup is not None and m.external is not None and m.external.secrets.backup is None:
            raise ValueError(
                "minio.external.secrets.backup: required with postgres.backup (the backup CronJob's own key, "
                f"read/write on bucket {backup.bucket!r} only)"
            )
        return self

    @model_validator(mode="after")
    def _external_s3_has_no_console(self) -> StackConfig:
        if self.minio.external is not None and self.ingress.hosts.minio_console:
            raise ValueError("ingress.hosts.minio_console is set, but minio.external replaces MinIO: there is no console to expose")
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
    # Governing (headless) Services of the persistent StatefulSets: pods are <name>-0.<this>.
    postgres_headless = property(lambda self: self._n("postgres-headless"))
    minio = property(lambda self: self._n("minio"))
    minio_headless = property(lambda self: self._n("minio-headless"))
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
    # run_launcher k8s: the run pods (a PodTemplate declares them), their non-secret env, their
    # ServiceAccount (no token, no Role), and the launcher's ServiceAccount/Role/RoleBinding.
    dagster_run = property(lambda self: self._n("dagster-run"))
    dagster_run_env = property(lambda self: self._n("dagster-run-env"))
    dagster_launcher = property(lambda self: self._n("dagster-launcher"))
    # dagster.migration_job: the instance migration Job (its object name carries a content digest).
    dagster_migrate = property(lambda self: self._n("dagster-migrate"))
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
    # The UIs' Ingress (ingress.enabled).
    ingress = property(lambda self: self._n("ingress"))
    # ingress.gateway with ingress.tls_secret, the Gateway in another namespace: the ReferenceGrant
    # that lets its listener use the certificate's Secret.
    gateway_certificate_grant = property(lambda self: self._n("gateway-certificate"))

    def ui_route(self, ui: str) -> str:
        """The HTTPRoute of one UI (an ``ingress.hosts`` field) under ``ingress.gateway``, e.g. floe-ui-minio-console."""
        return self._n(f"ui-{ui.replace('_', '-')}")
    # Secrets
    postgres_secret = property(lambda self: self._n("postgres-superuser"))
    # postgres.backup: the CronJob that dumps the databases to the object store.
    postgres_backup = property(lambda self: self._n("postgres-backup"))
    minio_secret = property(lambda self: self._n("minio-root"))
    polaris_root_secret = property(lambda self: self._n("polaris-root"))
    catalog_writer_secret = property(lambda self: self._n("catalog-writer"))
    catalog_reader_secret = property(lambda self: self._n("catalog-reader"))

    def database_secret(self, database: str) -> str:
        return self._n(f"db-{database}")

    def s3_client_secret(self, client: str) -> str:
        """One object-store client's key (demo/bootstrap/identities.py CLIENTS), e.g. floe-s3-cube."""
        return self._n(f"s3-{client.replace('_', '-')}")

    def all(self) -> dict[str, str]:
        return {
            attr: getattr(self, attr)
            for attr, value in type(self).__dict__.items()
            if isinstance(value, property)
        }


@dataclass(frozen=True)
class ExternalEndpoint:
    """A declared service outside the cluster: what the ``endpoints`` check accepts and where the
    NetworkPolicies open egress (``cidr``; None: any non-private address on ``port``)."""

    service: Literal["postgres", "s3"]
    host: str
    port: int
    cidr: str | None


class Endpoints:
    """Every address a client uses, derived from the config: the in-cluster Service name (same
    namespace DNS), or the declared external server (``postgres.external``, ``minio.external``)."""

    def __init__(self, config: StackConfig) -> None:
        self._c = config
        self._n = config.names

    def _url(self, service: str, port: int, path: str = "") -> str:
        return f"http://{service}:{port}{path}"

    # PostgreSQL (in-cluster, or postgres.external)
    @property
    def postgres_host(self) -> str:
        external = self._c.postgres.external
        return external.host if external else self._n.postgres

    @property
    def postgres_port(self) -> int:
        external = self._c.postgres.external
        return external.port if external else self._c.postgres.port

    def database_name(self, database: str) -> str:
        """The server's name for an application's database (``dagster``, ``marquez``, ``polaris``)."""
        external = self._c.postgres.external
        return external.databases[database].name if external else database

    def jdbc_url(self, database: str) -> str:
        url = f"jdbc:postgresql://{self.postgres_host}:{self.postgres_port}/{self.database_name(database)}"
        return f"{url}?sslmode={self.postgres_sslmode}" if self.postgres_sslmode else url

    @property
    def postgres_sslmode(self) -> str | None:
        """postgres.external.sslmode (None: the clients' default; the in-cluster server has no TLS)."""
        external = self._c.postgres.external
        return external.sslmode if external else None

    # S3: MinIO in-cluster, or minio.external
    @property
    def s3_host(self) -> str:
        external = self._c.minio.external
        return external.host if external else self._n.minio

    @property
    def s3_port(self) -> int:
        external = self._c.minio.external
        return external.port if external else self._c.minio.api_port

    @property
    def s3_url(self) -> str:
        """Always with an explicit port: the wiring check and the NetworkPolicies read it from here."""
        external = self._c.minio.external
        if external:
            return f"{external.scheme}://{external.host}:{external.port}"
        return self._url(self._n.minio, self._c.minio.api_port)

    @property
    def s3_region(self) -> str:
        external = self._c.minio.external
        return external.region if external else self._c.minio.region

    @property
    def external(self) -> tuple[ExternalEndpoint, ...]:
        """The declared services outside the cluster (none in the default profile)."""
        found = []
        pg, s3 = self._c.postgres.external, self._c.minio.external
        if pg:
            found.append(ExternalEndpoint("postgres", pg.host, pg.port, _rule_cidr(pg.host, pg.cidr)))
        if s3:
            found.append(ExternalEndpoint("s3", s3.host, s3.port, _rule_cidr(s3.host, s3.cidr)))
        return tuple(found)

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


def _rule_cidr(host: str, cidr: str | None) -> str | None:
    """The egress ipBlock of a declared endpoint: its CIDR, the host's /32, or None (``public``)."""
    if cidr == PUBLIC:
        return None
    return cidr or _host_cidr(host)


def _host_cidr(host: str) -> str | None:
    """``host``/32 when the host is an IPv4 address: then the egress rule can be exact."""
    import ipaddress

    try:
        return f"{ipaddress.IPv4Address(host)}/32"
    except ValueError:
        return None


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


def _error_source(loc: tuple[str, ...], path: Path, sources: dict[tuple[str, ...], str]) -> str:
    """Where the value at ``loc`` came from: the variable that set it (or set a field under it, for a
    section-level error such as limit < request), else the file."""
    origins = sorted({v for p, v in sources.items() if loc[: len(p)] == p or p[: len(loc)] == loc})
    if not origins:
        return str(path)
    return ("environment variable " if len(origins) == 1 else "environment variables ") + ", ".join(origins)


def _format_errors(exc: ValidationError, path: Path, sources: dict[tuple[str, ...], str]) -> str:
    count = f"{exc.error_count()} error{'s' if exc.error_count() > 1 else ''}"
    lines = [f"invalid configuration in {path}" + (" with FLOE__ overrides" if sources else "") + f" ({count}):"]
    for error in exc.errors(include_url=False):
        loc = tuple(str(p) for p in error["loc"])
        field = ".".join(loc) or "(top level)"
        where = _error_source(loc, path, sources)
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
    explicit, path = path, config_path(path, environ)
    origin = f" (named by {CONFIG_PATH_ENV})" if explicit is None and environ.get(CONFIG_PATH_ENV) else ""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path}{origin} not found (set {CONFIG_PATH_ENV} or pass --config)") from None
    except IsADirectoryError:
        raise ConfigError(
            f"configuration {path}{origin} is a directory, not a file: pass a profile such as config/local.yaml or config/cluster.yaml"
        ) from None
    except PermissionError:
        raise ConfigError(f"configuration file {path}{origin} cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"configuration file {path}{origin} is not UTF-8 text: is it the YAML profile?") from None
    try:
        data = fast_yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        # An empty profile would silently mean "every default": more likely a wrong or truncated file.
        raise ConfigError(
            f"configuration file {path}{origin} is empty (no sections): write at least `namespace: floe`, "
            "or start from config/local.yaml"
        )
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
