"""Apache Polaris: the Iceberg REST catalog, persisted in PostgreSQL, plus its init Job."""

from __future__ import annotations


from constructs import base, k8s, plain
from constructs.secrets import StackSecrets
from demo.bootstrap.settings import PolarisInitSettings
from floe.config import StackConfig
from floe.memory import JvmBudget, jvm_budget

# The image's `polaris` user (runtime/server/src/main/docker/Dockerfile.jvm): uid 10000, gid 10001.
POLARIS_RUN_AS = base.RunAs(uid=10000, gid=10001)


def server_memory(config: StackConfig) -> JvmBudget:
    """Polaris server budget. Both Polaris images start from ubi9/openjdk-21-runtime
    (runtime/{server,admin}/src/main/docker/Dockerfile.jvm), whose run-java.sh gives the heap 80 % of
    the limit by default (~820 MiB of 1 GiB), leaving ~200 MiB for everything else: OOM-kill under
    load. Here (1 GiB): metaspace 160 MiB (Quarkus + Iceberg + the AWS/Azure/GCS SDKs load ~120 MiB
    of classes), code cache 64 MiB, direct buffers 64 MiB (Vert.x/Netty), 80 thread stacks of 1 MiB
    (event loops, worker pool, Agroal, GC/JIT), 64 MiB native; the heap gets what is left after 10 %
    headroom (47 %, ~480 MiB)."""
    return jvm_budget(config.polaris.resources.memory_limit, metaspace_mib=160, code_cache_mib=64, direct_mib=64, threads=80)


def admin_tool_memory(config: StackConfig) -> JvmBudget:
    """The admin tool's one-shot `bootstrap` (a Quarkus command-mode app, same base image): fewer
    classes and threads than the server."""
    return jvm_budget(config.polaris.admin_tool_resources.memory_limit, metaspace_mib=128, code_cache_mib=32, direct_mib=32, threads=30)


def run_java_env(budget: JvmBudget) -> list[k8s.EnvVar]:
    return [base.env(name, value) for name, value in budget.run_java_env().items()]


def persistence_env(config: StackConfig) -> list[k8s.EnvVar]:
    """Relational-JDBC persistence: the catalog survives a Polaris restart (default is in-memory)."""
    secrets = StackSecrets(config)
    return [
        base.env("POLARIS_PERSISTENCE_TYPE", "relational-jdbc"),
        base.env("QUARKUS_DATASOURCE_JDBC_URL", config.endpoints.jdbc_url("polaris")),
        secrets.database_user("polaris").env("QUARKUS_DATASOURCE_USERNAME"),
        secrets.database_password("polaris").env("QUARKUS_DATASOURCE_PASSWORD"),
    ]


class Polaris(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        p, names = config.polaris, config.names
        secrets = StackSecrets(config)
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="256Mi")
        wait = base.wait_for([base.Dependency(config.endpoints.postgres_host, config.endpoints.postgres_port)], image=config.postgres.image)
        # Realm bootstrap with the admin tool: idempotent since 1.7.0 ("Realm ... is already
        # bootstrapped; skipping", apache/polaris#4996), unlike the server's auto-bootstrap on a
        # persistent backend, which fails on the second start (apache/polaris#2324).
        bootstrap = k8s.Container(
            name="bootstrap-realm",
            **base.image_fields(p.admin_tool_image),
            args=["bootstrap", "-r", p.realm, "-c", "$(FLOE_POLARIS_BOOTSTRAP_CREDENTIALS)"],
            env=[
                *persistence_env(config),
                secrets.polaris_bootstrap_credentials.env("FLOE_POLARIS_BOOTSTRAP_CREDENTIALS"),
                *run_java_env(admin_tool_memory(config)),
            ],
            resources=base.resources(p.admin_tool_resources),
            volume_mounts=[tmp.mount()],
            security_context=base.container_security(),
        )
        # Replicas share one token broker key: the default rsa-key-pair broker generates keys per pod,
        # so a token from one replica would fail on another ("Configuring Polaris for Production").
        token_broker = (
            [
                base.env("POLARIS_AUTHENTICATION_TOKEN_BROKER_TYPE", "symmetric-key"),
                secrets.polaris_token_broker_secret.env("POLARIS_AUTHENTICATION_TOKEN_BROKER_SYMMETRIC_KEY_SECRET"),
            ]
            if p.replicas > 1
            else []
        )
        otel = (
            [
                base.env("QUARKUS_OTEL_SDK_DISABLED", "false"),
                base.env("QUARKUS_OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{names.jaeger}:{config.jaeger.otlp_grpc_port}"),
            ]
            if config.jaeger.enabled
            else [base.env("QUARKUS_OTEL_SDK_DISABLED", "true")]
        )
        server = k8s.Container(
            name="polaris",
            **base.image_fields(p.image),
            ports=base.container_ports({"catalog": p.port, "management": p.management_port}),
            env=[
                *persistence_env(config),
                # Agroal's pool (Quarkus' default max 20 per replica): sized to fit
                # postgres.max_connections with every other client (floe/connections.py).
                base.env("QUARKUS_DATASOURCE_JDBC_MAX_SIZE", p.db_pool_size),
                base.env("POLARIS_REALM_CONTEXT_REALMS", p.realm),
                # Nothing is vended (stsUnavailable): Polaris writes table metadata to MinIO with its
                # own keys, read by the AWS SDK's default chain from its environment — never from
                # catalog properties, which every client can read.
                # Its own MinIO user: read/write on the warehouse bucket only.
                *secrets.s3_env("polaris", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                base.env("AWS_REGION", config.endpoints.s3_region),
                # Polaris' application.properties turns the file log on (./logs/polaris.log under
                # /home/polaris): the root filesystem is read-only here, and the console log is what
                # `kubectl logs` shows. `quarkus.log.file.enabled` is the name since Quarkus 3.26
                # (Migration-Guide-3.26 "enable -> enabled"; apache/polaris#3799); the old
                # `...enable` is removed by quarkusio/quarkus#56198.
                base.env("QUARKUS_LOG_FILE_ENABLED", "false"),
                *run_java_env(server_memory(config)),
                *token_broker,
                *otel,
            ],
            resources=base.resources(p.resources),
            readiness_probe=base.http_get("/q/health/ready", "management", base.READINESS),
            liveness_probe=base.http_get("/q/health/live", "management", base.LIVENESS),
            startup_probe=base.http_get("/q/health/live", "management", base.STARTUP),
            volume_mounts=[tmp.mount()],
            security_context=base.container_security(),
        )
        base.Workload(
            self,
            "workload",
            props=base.WorkloadProps(
                name=names.polaris,
                component="catalog",
                layer=layer,
                version=p.image.tag,
                containers=[server],
                init_containers=[wait, bootstrap],
                run_as=POLARIS_RUN_AS,
                volumes=[tmp.volume()],
                replicas=p.replicas,
                availability=config.availability,
                services=[
                    base.ExposedService(
                        names.polaris,
                        [
                            base.ServicePort("catalog", p.port, p.port, forward_to=8181),
                            base.ServicePort("management", p.management_port, p.management_port),
                        ],
                        description="Polaris Iceberg REST catalog (/api/catalog) and management API",
                    )
                ],
            ),
        )
        PolarisInitJob(self, "init", config=config, layer=layer)


class PolarisInitJob(plain.PlainConstruct):
    """Creates the catalog, namespaces, least-privilege principals and grants; idempotent."""

    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        p, m, names, endpoints = config.polaris, config.minio, config.names, config.endpoints
        secrets = StackSecrets(config)
        setting = PolarisInitSettings.env_name
        base.bootstrap_job(
            self,
            "job",
            config=config,
            layer=layer,
            name=names.polaris_init_job,
            step="polaris",
            container_name="polaris-init",
            env=[
                base.env(setting("polaris_url"), endpoints.polaris_base_url),
                base.env(setting("polaris_realm"), p.realm),
                secrets.polaris_root_client_id.env(setting("polaris_root_client_id")),
                secrets.polaris_root_client_secret.env(setting("polaris_root_client_secret")),
                base.env(setting("catalog_warehouse"), p.catalog),
                base.env(setting("catalog_base_location"), f"s3://{m.warehouse_bucket}/"),
                base.env(setting("s3_endpoint"), endpoints.s3_url),
                base.env(setting("s3_endpoint_internal"), endpoints.s3_url),
                base.env(setting("s3_region"), endpoints.s3_region),
                base.env(setting("namespace_raw"), p.namespaces["raw"]),
                base.env(setting("namespace_staging"), p.namespaces["staging"]),
                base.env(setting("namespace_marts"), p.namespaces["marts"]),
                base.env(setting("writer_principal"), p.writer_principal),
                base.env(setting("writer_principal_role"), p.writer_principal),
                base.env(setting("writer_catalog_role"), p.writer_principal),
                secrets.catalog_writer_client_id.env(setting("writer_client_id")),
                secrets.catalog_writer_client_secret.env(setting("writer_client_secret")),
                base.env(setting("reader_principal"), p.reader_principal),
                base.env(setting("reader_principal_role"), p.reader_principal),
                base.env(setting("reader_catalog_role"), p.reader_principal),
                secrets.catalog_reader_client_id.env(setting("reader_client_id")),
                secrets.catalog_reader_client_secret.env(setting("reader_client_secret")),
            ],
            depends_on=base.Dependency(names.polaris, p.port),
        )
