"""Cube Store: the router (metastore, HTTP/WebSocket API for Cube on http_port) and its workers
(a StatefulSet behind a headless Service), keeping pre-aggregations in the MinIO cubestore bucket.

Env names are Cube Store's own (rust/cubestore/cubestore/src/config/mod.rs ``Config::default``,
remotefs/minio.rs); tests/semantic/upstream_env.py lists each with its source.
"""

from __future__ import annotations


from constructs import base, k8s, plain
from constructs.secrets import StackSecrets
from floe.config import StackConfig

# rust/cubestore/Dockerfile declares no USER (the binary runs as root by default) and writes only
# CUBESTORE_DATA_DIR (default ./.cubestore/data under WORKDIR /cube): we run it as an unprivileged
# uid with a read-only root and an emptyDir data dir. Not yet run on a cluster (docs/semantic.md).
CUBESTORE_RUN_AS = base.RunAs(uid=1000, gid=1000)
DATA_DIR = "/cube/data"


def remote_storage_env(config: StackConfig) -> list[k8s.EnvVar]:
    """MinIO remote storage (FileStoreProvider::MINIO): router and workers both read/write it."""
    secrets = StackSecrets(config)
    return [
        base.env("CUBESTORE_MINIO_BUCKET", config.minio.cubestore_bucket),
        base.env("CUBESTORE_MINIO_SERVER_ENDPOINT", config.endpoints.s3_url),
        base.env("CUBESTORE_MINIO_REGION", config.endpoints.s3_region),
        # Its own MinIO user: read/write on its bucket only.
        *secrets.s3_env("cubestore", "CUBESTORE_MINIO_ACCESS_KEY_ID", "CUBESTORE_MINIO_SECRET_ACCESS_KEY"),
        base.env("CUBESTORE_DATA_DIR", DATA_DIR),
    ]


class CubeStore(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        cs, names, endpoints = config.cubestore, config.names, config.endpoints
        workers = ",".join(endpoints.cubestore_workers)
        data = base.ScratchVolume("data", DATA_DIR, size_limit="2Gi")
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="256Mi")

        router = k8s.Container(
            name="cubestore-router",
            **base.image_fields(cs.image),
            ports=base.container_ports({"http": cs.http_port, "meta": cs.meta_port, "status": cs.status_port}),
            env=[
                base.env("CUBESTORE_SERVER_NAME", endpoints.cubestore_meta_addr),
                base.env("CUBESTORE_META_PORT", cs.meta_port),
                base.env("CUBESTORE_HTTP_PORT", cs.http_port),
                base.env("CUBESTORE_STATUS_PORT", cs.status_port),
                base.env("CUBESTORE_WORKERS", workers),
                *remote_storage_env(config),
            ],
            resources=base.resources(cs.router_resources),
            # /livez and /readyz on CUBESTORE_STATUS_PORT: served by the router only
            # (cubestore serve_status_probes -> RouterProbes::try_new); workers get TCP probes.
            readiness_probe=base.http_get("/readyz", "status", base.READINESS),
            liveness_probe=base.http_get("/livez", "status", base.LIVENESS),
            # First start downloads the metastore snapshot from the bucket, if any.
            startup_probe=base.http_get("/livez", "status", base.STARTUP),
            volume_mounts=[data.mount(), tmp.mount()],
            security_context=base.container_security(),
        )
        base.Workload(
            self,
            "router",
            props=base.WorkloadProps(
                name=names.cubestore_router,
                component="cubestore-router",
                layer=layer,
                version=cs.image.tag,
                containers=[router],
                # Remote storage must answer before the metastore can load from or upload to it.
                init_containers=[base.wait_for([base.Dependency(config.endpoints.s3_host, config.endpoints.s3_port)], image=config.postgres.image)],
                run_as=CUBESTORE_RUN_AS,
                volumes=[data.volume(), tmp.volume()],
                # A Service whose name starts with `cubestore` would inject CUBESTORE_PORT=tcp://...
                # and Cube Store panics parsing it (cube-js/cube#3158): never enable service links.
                enable_service_links=False,
                services=[
                    base.ExposedService(
                        names.cubestore_router,
                        [
                            base.ServicePort("http", cs.http_port, cs.http_port),
                            base.ServicePort("meta", cs.meta_port, cs.meta_port),
                            base.ServicePort("status", cs.status_port, cs.status_port),
                        ],
                        description="Cube Store router: Cube's pre-aggregation store (HTTP/WebSocket) and metastore",
                    )
                ],
            ),
        )

        worker = k8s.Container(
            name="cubestore-worker",
            **base.image_fields(cs.image),
            ports=base.container_ports({"worker": cs.worker_port}),
            env=[
                # Kubernetes expands $(POD_NAME) below; Cube Store itself never reads POD_NAME.
                k8s.EnvVar(name="POD_NAME", value_from=k8s.EnvVarSource(field_ref=k8s.ObjectFieldSelector(field_path="metadata.name"))),
                # Must equal this worker's entry in CUBESTORE_WORKERS (validate_config warns otherwise).
                base.env("CUBESTORE_SERVER_NAME", f"$(POD_NAME).{names.cubestore_workers}:{cs.worker_port}"),
                base.env("CUBESTORE_WORKER_PORT", cs.worker_port),
                base.env("CUBESTORE_META_ADDR", endpoints.cubestore_meta_addr),
                # Workers need the list too (cube-js/cube#2734).
                base.env("CUBESTORE_WORKERS", workers),
                *remote_storage_env(config),
            ],
            resources=base.resources(cs.worker_resources),
            readiness_probe=base.tcp("worker", base.READINESS),
            liveness_probe=base.tcp("worker", base.LIVENESS),
            startup_probe=base.tcp("worker", base.STARTUP),
            volume_mounts=[data.mount(), tmp.mount()],
            security_context=base.container_security(),
        )
        base.StatefulWorkload(
            self,
            "workers",
            props=base.WorkloadProps(
                name=names.cubestore_worker,
                component="cubestore-worker",
                layer=layer,
                version=cs.image.tag,
                containers=[worker],
                init_containers=[base.wait_for([base.Dependency(names.cubestore_router, cs.meta_port)], image=config.postgres.image)],
                run_as=CUBESTORE_RUN_AS,
                volumes=[data.volume(), tmp.volume()],
                replicas=cs.workers,
                enable_service_links=False,
                # The router's CUBESTORE_WORKERS lists <worker>-0..N-1 from the same count
                # (Endpoints.cubestore_workers), so scaling here and there never drift apart.
                availability=config.availability,
            ),
            governing_service=base.ExposedService(
                names.cubestore_workers,
                [base.ServicePort("worker", cs.worker_port, cs.worker_port)],
                description="Cube Store workers (headless: stable DNS <pod>.<this service>)",
                headless=True,
            ),
        )
