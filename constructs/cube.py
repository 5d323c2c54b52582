"""Cube: the API (REST + GraphQL on api_port, Postgres-wire SQL API on sql_port) and the refresh
worker that builds pre-aggregations into Cube Store.

Both run the same static configuration from demo/cube (cube.js + lakehouse.js, and the YAML data
model), mounted from ConfigMaps. DuckDB inside Cube attaches the Iceberg catalog as the READ-ONLY
principal, with the FLOE_* variables of :class:`demo.lakehouse.settings.LakehouseSettings`. Env
names are Cube's own (packages/cubejs-backend-shared/src/env.ts) or ours (FLOE_*, read by
lakehouse.js); tests/semantic/upstream_env.py lists each with its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


from constructs import base, k8s, plain
from constructs.secrets import StackSecrets
from demo.bootstrap.image import CUBE_OTEL_DIR, DUCKDB_EXTENSION_DIR
from demo.lakehouse.extensions import EXTENSIONS
from demo.lakehouse.settings import LakehouseSettings
from floe import config_checksum, fast_yaml
from floe.config import Resources, StackConfig
from floe.memory import (
    HEADROOM,
    NODE_NATIVE_OVERHEAD_MIB,
    OTEL_NODE_SDK_NATIVE_MIB,
    OTEL_NODE_SDK_REQUEST_MIB,
    MiB,
    duckdb_size_bytes,
)
from floe.quantities import memory_bytes

CUBE_DIR = Path(__file__).resolve().parents[1] / "demo" / "cube"
CONFIG_FILES = ("cube.js", "lakehouse.js")
MODEL_DIR = CUBE_DIR / "model"
# Cube's image: WORKDIR /cube/conf, data model under ./model (CUBEJS_SCHEMA_PATH default "model").
CONF_DIR = "/cube/conf"
# Where Cube's DuckDB finds the extension files (layout v<duckdb>/<platform>/<name>.duckdb_extension).
EXTENSION_DIR = "/cube/duckdb-extensions"
# The pod sets its identity explicitly (Pod Security "restricted" needs runAsNonRoot with a numeric
# uid; an image USER given by name cannot be verified by the kubelet). The image's Dockerfile has a
# `cube` user (issue 15; an earlier note here said it runs as root, which is wrong for the current
# image); its uid is not checked here, so the pod runs as `node` (uid 1000), which every node base
# image has. Cube writes nothing outside /tmp and the emptyDirs in production mode; HOME=/tmp too.
# Not yet run on a cluster (docs/semantic.md).
CUBE_RUN_AS = base.RunAs(uid=1000, gid=1000)
# Where Cube's DuckDB spills (temp_directory): its default is `.tmp` under the working directory
# /cube/conf, read-only in the pod. lakehouse.js SETs it from FLOE_DUCKDB_TEMP_DIRECTORY.
DUCKDB_SPILL = base.ScratchVolume("duckdb-spill", "/cube/duckdb-spill", size_limit="1Gi")
# max_temp_directory_size (DuckDB's default: 90% of the free disk, beyond the emptyDir's sizeLimit,
# where the kubelet evicts the pod): 7/8 of the sizeLimit, the rest for DuckDB's own overshoot.
DUCKDB_SPILL_MAX_MIB = memory_bytes(DUCKDB_SPILL.size_limit) * 7 // 8 // 2**20
# OpenTelemetry (only when Jaeger is on): the init container copies the SDK from the project image
# (demo.bootstrap.image.CUBE_OTEL_DIR, built from demo/cube/otel) into this emptyDir, and Node
# preloads tracing.js from it (NODE_OPTIONS --require) before Cube's code. Cube's image is untouched.
# The folder is 58 MB (npm ci --omit=dev of demo/cube/otel's lock, measured).
OTEL_SDK = base.ScratchVolume("otel-sdk", "/cube/otel", size_limit="128Mi")
OTEL_PRELOAD = f"{OTEL_SDK.path}/tracing.js"
# The pod template annotation that rolls the pods when a mounted file changes (subPath mounts never
# receive ConfigMap updates, and Cube compiles the model once at start-up anyway): put on every pod
# that reads a ConfigMap or Secret by base.add_config_checksums (floe/config_checksum.py).
CHECKSUM_ANNOTATION = config_checksum.ANNOTATION


@dataclass(frozen=True)
class CubeMemory:
    """How one Cube container's memory limit is split (MiB): V8's old space, DuckDB's memory_limit,
    Node's memory outside the old space, and headroom the kubelet never sees used."""

    limit_mib: int
    duckdb_mib: int
    native_mib: int
    headroom_mib: int
    heap_mib: int
    # The OpenTelemetry SDK's memory outside the old space, and the file Node preloads (None: off).
    otel_mib: int = 0
    preload: str | None = None

    @property
    def node_options(self) -> str:
        heap = f"--max-old-space-size={self.heap_mib}"
        return f"{heap} --require {self.preload}" if self.preload else heap


# Node outside the old space (NODE_NATIVE_OVERHEAD_MIB) and the unbudgeted headroom of every
# container (HEADROOM: malloc arenas, DuckDB allocations its memory_limit does not count, spikes)
# come from floe/memory.py, the same figures floe/memory_audit.py checks dist/ against.
# Below this Cube's API/refresh worker would spend its time in GC with the demo model loaded.
CUBE_MIN_HEAP_MIB = 256


def cube_memory(container_limit: str, duckdb_memory_limit: str, *, preload: str | None = None) -> CubeMemory:
    """Node's old space = limit - headroom (10 %) - DuckDB's memory_limit - Node's native memory
    (- the OpenTelemetry SDK's native memory when ``preload`` loads it).

    Without an explicit --max-old-space-size, V8 sizes its heap from the machine (or cgroup) and
    does not know that DuckDB shares the process: heap + DuckDB can pass the limit and the kernel
    OOM-kills the pod instead of V8 collecting garbage. Used for the API and the refresh worker.
    Raises ValueError when DuckDB's limit leaves less than CUBE_MIN_HEAP_MIB.
    """
    limit_mib = memory_bytes(container_limit) // 2**20
    duckdb_mib = math.ceil(duckdb_size_bytes(duckdb_memory_limit) / MiB)
    headroom_mib = math.ceil(limit_mib * HEADROOM)
    otel_mib = OTEL_NODE_SDK_NATIVE_MIB if preload else 0
    heap_mib = limit_mib - headroom_mib - duckdb_mib - NODE_NATIVE_OVERHEAD_MIB - otel_mib
    if heap_mib < CUBE_MIN_HEAP_MIB:
        otel = f" + {otel_mib} MiB OpenTelemetry SDK" if otel_mib else ""
        raise ValueError(
            f"cube.duckdb_memory_limit {duckdb_memory_limit} leaves {heap_mib} MiB of Node heap in a {container_limit} "
            f"container ({NODE_NATIVE_OVERHEAD_MIB} MiB Node native{otel} + {headroom_mib} MiB headroom; at least "
            f"{CUBE_MIN_HEAP_MIB} MiB heap needed): lower it or raise the Cube memory limits"
        )
    return CubeMemory(limit_mib, duckdb_mib, NODE_NATIVE_OVERHEAD_MIB, headroom_mib, heap_mib, otel_mib, preload)


def traced_resources(resources: Resources, *, traced: bool) -> Resources:
    """The container's resources, its memory request raised by OTEL_NODE_SDK_REQUEST_MIB when traced
    (floe.memory: the SDK's measured idle cost and some of its busy growth; never past the limit), so
    the node fit counts what the preloaded SDK adds."""
    if not traced:
        return resources
    request = min(memory_bytes(resources.memory_request) + OTEL_NODE_SDK_REQUEST_MIB * MiB, memory_bytes(resources.memory_limit))
    return resources.model_copy(update={"memory_request": f"{request // MiB}Mi" if request % MiB == 0 else str(request)})


#: What the preloaded SDK reads (all read by @opentelemetry/sdk-node 0.301 and the OTLP exporter
#: base; tests/semantic/upstream_env.py lists each with its source). OTLP over HTTP (protobuf) to
#: Jaeger's 4318. The BatchSpanProcessor's queue is bounded at 1 024 spans (beyond it spans are
#: dropped, not buffered): at an estimated 1-2 KB per span, a few MiB, inside OTEL_NODE_SDK_NATIVE_MIB.
#: An export to an unreachable or hung Jaeger gives up after 5 s (OTEL_EXPORTER_OTLP_TIMEOUT), in
#: the background: requests never wait for it.
OTEL_SETTINGS: dict[str, str] = {
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "5000",
    "OTEL_TRACES_EXPORTER": "otlp",
    # Jaeger receives traces only; the SDK's default for both is otlp.
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    # W3C trace context: a client's `traceparent` header continues its trace into Cube.
    "OTEL_PROPAGATORS": "tracecontext,baggage",
    "OTEL_BSP_MAX_QUEUE_SIZE": "1024",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256",
    "OTEL_BSP_SCHEDULE_DELAY": "2000",
    "OTEL_BSP_EXPORT_TIMEOUT": "10000",
}


def tracing_env(config: StackConfig, service_name: str) -> list[k8s.EnvVar]:
    """The SDK's settings; none at all when Jaeger is off (then nothing is preloaded either)."""
    endpoint = config.endpoints.otlp_http_url
    if not endpoint:
        return []
    return [
        base.env("OTEL_SERVICE_NAME", service_name),
        base.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        *(base.env(name, value) for name, value in OTEL_SETTINGS.items()),
    ]


def config_files() -> dict[str, str]:
    return {name: (CUBE_DIR / name).read_text() for name in CONFIG_FILES}


def model_files() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(MODEL_DIR.glob("*.yml"))}


def model_tables() -> set[str]:
    """Every ``sql_table`` of the data model (``lake.<namespace>.<table>``)."""
    return {
        cube["sql_table"]
        for text in model_files().values()
        for cube in (fast_yaml.safe_load(text) or {}).get("cubes", [])
    }


def _check_model_namespace(config: StackConfig) -> None:
    marts = config.polaris.namespaces["marts"]
    wrong = sorted(t for t in model_tables() if t.split(".")[1] != marts)
    if wrong:
        raise ValueError(
            f"the Cube data model (demo/cube/model) reads {', '.join(wrong)} but polaris.namespaces.marts "
            f"is {marts!r}: keep them equal (the model is static YAML)"
        )


def lakehouse_env(config: StackConfig, *, extension_directory: str | None) -> list[k8s.EnvVar]:
    """LakehouseSettings as the reader principal: Cube only ever reads the marts."""
    secrets, endpoints, setting = StackSecrets(config), config.endpoints, LakehouseSettings.env_name
    result = [
        base.env(setting("catalog_uri"), endpoints.catalog_uri),
        base.env(setting("catalog_warehouse"), config.polaris.catalog),
        base.env(setting("catalog_oauth2_uri"), endpoints.catalog_oauth2_uri),
        secrets.catalog_reader_client_id.env(setting("catalog_client_id")),
        secrets.catalog_reader_client_secret.env(setting("catalog_client_secret")),
        base.env(setting("s3_endpoint"), endpoints.s3_url),
        # Its own MinIO user: read-only on the warehouse (refused a write or a delete).
        *secrets.s3_env("cube", setting("s3_access_key_id"), setting("s3_secret_access_key")),
        base.env(setting("s3_region"), config.endpoints.s3_region),
    ]
    if extension_directory:
        result.append(base.env(setting("duckdb_extension_directory"), extension_directory))
    return result


def common_env(config: StackConfig, *, bundled: bool, memory: CubeMemory, service_name: str) -> list[k8s.EnvVar]:
    c, secrets = config.cube, StackSecrets(config)
    download = [] if bundled else [
        # Upstream's own switch: the driver runs INSTALL + LOAD for each (needs internet egress).
        base.env("CUBEJS_DB_DUCKDB_EXTENSIONS", ",".join(EXTENSIONS)),
    ]
    return [
        # Production mode everywhere: no dev server, no playground; refresh only where asked.
        base.env("NODE_ENV", "production"),
        # V8's old space sized to what DuckDB and the headroom leave of the limit (cube_memory), and
        # the OpenTelemetry preload when Jaeger is on.
        base.env("NODE_OPTIONS", memory.node_options),
        base.env("PORT", c.api_port),
        # cube.js returns a driver instance, so the dialect comes from CUBEJS_DB_TYPE.
        base.env("CUBEJS_DB_TYPE", "duckdb"),
        base.env("CUBEJS_DB_DUCKDB_MEMORY_LIMIT", c.duckdb_memory_limit),
        *download,
        secrets.cube_api_secret.env("CUBEJS_API_SECRET"),
        base.env("CUBEJS_CUBESTORE_HOST", config.names.cubestore_router),
        base.env("CUBEJS_CUBESTORE_PORT", config.cubestore.http_port),
        base.env("CUBEJS_CACHE_AND_QUEUE_DRIVER", "cubestore"),
        base.env("CUBEJS_TELEMETRY", "false"),
        # DuckDB's default extension directory is ~/.duckdb/extensions (used in download mode).
        base.env("HOME", "/tmp"),
        *lakehouse_env(config, extension_directory=EXTENSION_DIR if bundled else None),
        # Spill to an emptyDir, within its sizeLimit (lakehouse.js SETs these before the ATTACH).
        base.env(LakehouseSettings.env_name("duckdb_temp_directory"), DUCKDB_SPILL.path),
        base.env(LakehouseSettings.env_name("duckdb_max_temp_directory_size"), f"{DUCKDB_SPILL_MAX_MIB}MiB"),
        *tracing_env(config, service_name),
    ]


class Cube(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        _check_model_namespace(config)
        c, names, secrets = config.cube, config.names, StackSecrets(config)
        bundled = c.duckdb_extensions == "bundled"
        lbls = base.labels(names.cube, component="semantic-api", layer=layer, version=c.image.tag)
        base.config_map(self, "config", name=names.cube_config, lbls=lbls, data=config_files())
        base.config_map(self, "model", name=names.cube_model, lbls=lbls, data=model_files())

        conf = [base.ConfigFiles("config", names.cube_config, f"{CONF_DIR}/{f}", sub_path=f) for f in CONFIG_FILES]
        # One subPath mount per model file, never the ConfigMap as a directory: the kubelet fills a
        # directory mount with `..data` and `..<timestamp>` folders, and Cube's FileRepository.getFiles()
        # (@cubejs-backend/shared src/FileRepository.ts) recurses into every folder, dot-names too, so
        # each file would load three times ("Found duplicate cube name"). subPath files do not follow
        # ConfigMap updates: CHECKSUM_ANNOTATION rolls the pods instead.
        model = [base.ConfigFiles("model", names.cube_model, f"{CONF_DIR}/model/{f}", sub_path=f) for f in model_files()]
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="512Mi")
        extensions = base.ScratchVolume("duckdb-extensions", EXTENSION_DIR, size_limit="256Mi")
        traced = config.endpoints.otlp_http_url is not None
        preload = OTEL_PRELOAD if traced else None
        volumes = [
            conf[0].volume(), model[0].volume(), tmp.volume(), DUCKDB_SPILL.volume(),
            *([extensions.volume()] if bundled else []), *([OTEL_SDK.volume()] if traced else []),
        ]
        mounts = [
            *(f.mount() for f in conf), *(f.mount() for f in model), tmp.mount(), DUCKDB_SPILL.mount(),
            *([extensions.mount()] if bundled else []),
            # Read-only: Cube only loads the SDK; the init container alone writes it.
            *([k8s.VolumeMount(name=OTEL_SDK.name, mount_path=OTEL_SDK.path, read_only=True)] if traced else []),
        ]

        init = [base.wait_for([base.Dependency(names.cubestore_router, config.cubestore.http_port)], image=config.postgres.image)]
        def copy_from_project_image(name: str, source: str, volume: base.ScratchVolume) -> k8s.Container:
            """An init container copying ``source`` of the project image into ``volume`` (no egress)."""
            return k8s.Container(
                name=name,
                **base.image_fields(config.project_image),
                command=["cp", "-R", f"{source}/.", volume.path],
                resources=base.resources(base.Resources(cpu_request="10m", memory_request="16Mi", cpu_limit="200m", memory_limit="64Mi")),
                volume_mounts=[volume.mount()],
                security_context=base.container_security(),
            )

        if bundled:
            # No egress needed: the project image ships the extension files for DuckDB 1.5.5
            # (demo.bootstrap.image.DUCKDB_EXTENSION_DIR), the version Cube's DuckDB embeds.
            init.append(copy_from_project_image("copy-duckdb-extensions", DUCKDB_EXTENSION_DIR, extensions))
        if traced:
            # The OpenTelemetry Node SDK, installed into the project image at build time (Dockerfile,
            # from demo/cube/otel's lock): no custom Cube image.
            init.append(copy_from_project_image("copy-otel-sdk", CUBE_OTEL_DIR, OTEL_SDK))

        api = k8s.Container(
            name="cube",
            **base.image_fields(c.image),
            ports=base.container_ports({"http": c.api_port, "pg-sql": c.sql_port}),
            env=[
                *common_env(
                    config, bundled=bundled, service_name=names.cube,
                    memory=cube_memory(c.api_resources.memory_limit, c.duckdb_memory_limit, preload=preload),
                ),
                base.env("CUBEJS_PG_SQL_PORT", c.sql_port),
                secrets.cube_sql_user.env("CUBEJS_SQL_USER"),
                secrets.cube_sql_password.env("CUBEJS_SQL_PASSWORD"),
            ],
            resources=base.resources(traced_resources(c.api_resources, traced=traced)),
            # /readyz checks the data source and Cube Store: right for readiness, wrong for liveness
            # (a Cube Store outage would restart every API pod), so liveness is TCP.
            readiness_probe=base.http_get("/readyz", "http", base.READINESS),
            liveness_probe=base.tcp("http", base.LIVENESS),
            startup_probe=base.tcp("http", base.STARTUP),
            volume_mounts=mounts,
            security_context=base.container_security(),
        )
        api_workload = base.Workload(
            self,
            "api",
            props=base.WorkloadProps(
                name=names.cube,
                component="semantic-api",
                layer=layer,
                version=c.image.tag,
                containers=[api],
                init_containers=init,
                run_as=CUBE_RUN_AS,
                volumes=volumes,
                replicas=c.api_replicas,
                strategy="RollingUpdate",
                availability=config.availability,
                services=[
                    base.ExposedService(
                        names.cube,
                        [base.ServicePort("http", c.api_port, c.api_port, forward_to=4000)],
                        description="Cube REST (/cubejs-api/v1/load) and GraphQL (/cubejs-api/graphql) API",
                    ),
                    base.ExposedService(
                        names.cube_sql,
                        [base.ServicePort("pg-sql", c.sql_port, c.sql_port, forward_to=15432)],
                        description="Cube SQL API (Postgres wire protocol; user/password in the floe-cube Secret)",
                        type=c.sql_service.type,
                        node_port=c.sql_service.node_port,
                        load_balancer_source_ranges=c.sql_service.load_balancer_source_ranges,
                    ),
                ],
            ),
        )

        refresh = k8s.Container(
            name="cube-refresh-worker",
            **base.image_fields(c.image),
            ports=base.container_ports({"http": c.api_port}),
            env=[
                *common_env(
                    config, bundled=bundled, service_name=names.cube_refresh_worker,
                    memory=cube_memory(c.refresh_worker_resources.memory_limit, c.duckdb_memory_limit, preload=preload),
                ),
                # Builds and refreshes pre-aggregations on their refresh_key schedule (every 5 minutes).
                base.env("CUBEJS_REFRESH_WORKER", "true"),
            ],
            resources=base.resources(traced_resources(c.refresh_worker_resources, traced=traced)),
            # No Service selects the refresh worker: liveness only, no readiness probe.
            liveness_probe=base.tcp("http", base.LIVENESS),
            startup_probe=base.tcp("http", base.STARTUP),
            volume_mounts=mounts,
            security_context=base.container_security(),
        )
        worker_workload = base.Workload(
            self,
            "refresh-worker",
            props=base.WorkloadProps(
                name=names.cube_refresh_worker,
                component="semantic-refresh-worker",
                layer=layer,
                version=c.image.tag,
                containers=[refresh],
                init_containers=init,
                run_as=CUBE_RUN_AS,
                volumes=volumes,
                # One refresh worker: two would build the same pre-aggregations twice.
                strategy="Recreate",
            ),
        )
