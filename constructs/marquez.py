"""Marquez: the OpenLineage API (lineage from Dagster and dbt) and its web UI."""

from __future__ import annotations

import yaml

from constructs import base, k8s, plain
from constructs.secrets import StackSecrets
from floe.config import StackConfig
from floe.memory import JvmBudget, jvm_budget

# Neither image declares a USER (MarquezProject/marquez#3060): we pick non-root ids. The API is a
# plain `java -jar` and the UI `node setupProxy.js`; both only need a writable /tmp.
MARQUEZ_RUN_AS = base.RunAs(uid=10000, gid=10000)
MARQUEZ_WEB_RUN_AS = base.RunAs(uid=1000, gid=1000)
CONFIG_FILE = "marquez.yml"
#: An API call served from a database table (see the probes below): fails when the schema is lost.
SCHEMA_PROBE_PATH = "/api/v1/namespaces?limit=1"


def api_memory(config: StackConfig) -> JvmBudget:
    """The image's entrypoint runs `java ${JAVA_OPTS} -jar marquez-*.jar server ${MARQUEZ_CONFIG}`
    (MarquezProject/marquez docker/entrypoint.sh, inlined in the Dockerfile on eclipse-temurin:17):
    without JAVA_OPTS HotSpot takes 25 % of the limit for the heap and leaves metaspace, code cache
    and direct buffers unbounded. Here (1 GiB): metaspace 128 MiB (Dropwizard, Jdbi, Flyway,
    GraphQL), code cache 64 MiB, direct buffers 32 MiB, 100 thread stacks of 1 MiB (Jetty's pool
    under a demo load, the DB pool, GC/JIT), 64 MiB native; the heap gets the rest after 10 %
    headroom (52 %, ~530 MiB)."""
    return jvm_budget(config.marquez.resources.memory_limit, metaspace_mib=128, code_cache_mib=64, direct_mib=32, threads=100)


def marquez_config(config: StackConfig) -> dict:
    """Our own Dropwizard config (the image's default is a dev config with baked credentials and
    search on, which needs OpenSearch). No `search:` block: search stays off (SearchConfig default).
    Keys from marquez.example.yml; ${VAR} is Dropwizard's env substitution, used for credentials."""
    mq = config.marquez
    return {
        "server": {
            "applicationConnectors": [{"type": "http", "port": mq.api_port, "httpCompliance": "RFC7230_LEGACY"}],
            "adminConnectors": [{"type": "http", "port": mq.admin_port}],
        },
        "db": {
            "driverClass": "org.postgresql.Driver",
            "url": config.endpoints.jdbc_url("marquez"),
            "user": "${POSTGRES_USER}",
            "password": "${POSTGRES_PASSWORD}",
            # Dropwizard's pool (DataSourceFactory) defaults to 100 connections per replica: sized
            # to fit postgres.max_connections with every other client (floe/connections.py).
            "maxSize": mq.db_pool_size,
            "minSize": min(2, mq.db_pool_size),
            "initialSize": min(2, mq.db_pool_size),
        },
        "migrateOnStartup": True,
        "graphql": {"enabled": True},
        "logging": {"level": "INFO", "appenders": [{"type": "console"}]},
    }


class Marquez(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        mq, names = config.marquez, config.names
        secrets = StackSecrets(config)
        lbls = base.labels(names.marquez, component="lineage", layer=layer, version=mq.image.tag)
        config_map_name = f"{names.marquez}-config"
        base.config_map(self, "config", name=config_map_name, lbls=lbls, data={CONFIG_FILE: yaml.safe_dump(marquez_config(config), sort_keys=False)})
        files = base.ConfigFiles("config", config_map_name, "/etc/marquez")
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="256Mi")
        api = k8s.Container(
            name="marquez",
            **base.image_fields(mq.image),
            ports=base.container_ports({"api": mq.api_port, "admin": mq.admin_port}),
            env=[
                base.env("MARQUEZ_CONFIG", f"{files.path}/{CONFIG_FILE}"),
                secrets.database_user("marquez").env("POSTGRES_USER"),
                secrets.database_password("marquez").env("POSTGRES_PASSWORD"),
                # The entrypoint appends -Duser.timezone=UTC -Dlog4j2.formatMsgNoLookups=true to it.
                base.env("JAVA_OPTS", api_memory(config).java_opts()),
            ],
            resources=base.resources(mq.resources),
            # /healthcheck (admin) only tests the database connection. A list call reads the
            # `namespaces` table (NamespaceResource.list -> NamespaceDao.findAll, a JdbiException is a
            # 500 by JdbiExceptionExceptionMapper): when PostgreSQL was replaced and the schema is gone
            # it fails, the kubelet restarts Marquez and Flyway migrates at start (migrateOnStartup).
            readiness_probe=base.http_get(SCHEMA_PROBE_PATH, "api", base.READINESS),
            liveness_probe=base.http_get(SCHEMA_PROBE_PATH, "api", base.LIVENESS),
            # JVM start plus Flyway migrations on first start.
            startup_probe=base.http_get("/healthcheck", "admin", base.STARTUP),
            volume_mounts=[files.mount(), tmp.mount()],
            security_context=base.container_security(),
        )
        base.Workload(
            self,
            "api",
            props=base.WorkloadProps(
                name=names.marquez,
                component="lineage",
                layer=layer,
                version=mq.image.tag,
                containers=[api],
                init_containers=[base.wait_for([base.Dependency(config.endpoints.postgres_host, config.endpoints.postgres_port)], image=config.postgres.image)],
                run_as=MARQUEZ_RUN_AS,
                volumes=[files.volume(), tmp.volume()],
                replicas=mq.replicas,
                availability=config.availability,
                services=[
                    base.ExposedService(
                        names.marquez,
                        # Local 5001: macOS keeps 5000 for AirPlay.
                        [base.ServicePort("api", mq.api_port, mq.api_port, forward_to=5001)],
                        description="Marquez OpenLineage API (POST /api/v1/lineage)",
                    )
                ],
            ),
        )
        if config.marquez.web.enabled:
            MarquezWeb(self, "web", config=config, layer=layer)


class MarquezWeb(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        mq, web, names = config.marquez, config.marquez.web, config.names
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="64Mi")
        container = k8s.Container(
            name="marquez-web",
            **base.image_fields(web.image),
            ports=base.container_ports({"http": web.port}),
            # setupProxy.js exits unless all three are set (web/setupProxy.js).
            env=[
                base.env("MARQUEZ_HOST", names.marquez),
                base.env("MARQUEZ_PORT", mq.api_port),
                base.env("WEB_PORT", web.port),
                base.env("HOME", tmp.path),
            ],
            resources=base.resources(web.resources),
            readiness_probe=base.http_get("/healthcheck", "http", base.READINESS),
            liveness_probe=base.http_get("/healthcheck", "http", base.LIVENESS),
            volume_mounts=[tmp.mount()],
            security_context=base.container_security(),
        )
        base.Workload(
            self,
            "workload",
            props=base.WorkloadProps(
                name=names.marquez_web,
                component="lineage-ui",
                layer=layer,
                version=web.image.tag,
                containers=[container],
                init_containers=[base.wait_for([base.Dependency(names.marquez, mq.api_port)], image=config.postgres.image)],
                run_as=MARQUEZ_WEB_RUN_AS,
                volumes=[tmp.volume()],
                strategy="RollingUpdate",
                replicas=web.replicas,
                availability=config.availability,
                services=[
                    base.ExposedService(
                        names.marquez_web,
                        # Local 3001: 3000 is Dagster's.
                        [base.ServicePort("http", web.port, web.port, forward_to=3001)],
                        description="Marquez web UI (lineage graph)",
                    )
                ],
            ),
        )
