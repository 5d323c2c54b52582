"""MinIO: the S3 object store behind the Iceberg warehouse and Cube Store, plus its bucket Job."""

from __future__ import annotations

import json


from constructs import base, k8s, plain
from constructs.secrets import StackSecrets
from demo.bootstrap.identities import client_grants
from demo.bootstrap.settings import BucketSettings
from floe.config import StackConfig
from floe.memory import go_memory_limit

# MinIO runs as any uid; 1000 is what its own operator uses. /data is an emptyDir it owns via fsGroup.
MINIO_RUN_AS = base.RunAs(uid=1000, gid=1000)


class Minio(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        m, names = config.minio, config.names
        secrets = StackSecrets(config)
        # With persistence (cluster profile) /data is a PersistentVolumeClaim that outlives the pod.
        persistent = m.persistence
        data: base.ScratchVolume | base.PersistentVolume = (
            base.PersistentVolume("data", "/data", size=persistent.size, storage_class=persistent.storage_class)
            if persistent
            else base.ScratchVolume("data", "/data", size_limit="10Gi")
        )
        # MinIO keeps certs and a config cache under $HOME/.minio: give it a writable HOME.
        home = base.ScratchVolume("home", "/tmp", size_limit="64Mi")
        container = k8s.Container(
            name="minio",
            **base.image_fields(m.image),
            # --certs-dir: the default ${HOME}/.minio/certs fails on a read-only root filesystem.
            args=[
                "server", data.path,
                "--address", f":{m.api_port}",
                "--console-address", f":{m.console_port}",
                "--certs-dir", f"{home.path}/certs",
            ],
            ports=base.container_ports({"s3": m.api_port, "console": m.console_port}),
            env=[
                secrets.minio_user.env("MINIO_ROOT_USER"),
                secrets.minio_password.env("MINIO_ROOT_PASSWORD"),
                base.env("MINIO_SITE_REGION", m.region),
                base.env("HOME", home.path),
                # MinIO sets the Go runtime's memory limit itself, always: --memlimit / MINIO_MEMLIMIT
                # (humanize.ParseBytes), else the memory it finds available (the cgroup's limit), and
                # setMaxResources calls debug.SetMemoryLimit with it, replacing any GOMEMLIMIT
                # (cmd/server-main.go serverHandleCmdArgs, cmd/server-rlimit.go). The same figure
                # sizes its request throttling. So MINIO_MEMLIMIT is the knob, GOMEMLIMIT is ignored.
                base.env("MINIO_MEMLIMIT", go_memory_limit(m.resources.memory_limit)),
            ],
            resources=base.resources(m.resources),
            readiness_probe=base.http_get("/minio/health/ready", "s3", base.READINESS),
            liveness_probe=base.http_get("/minio/health/live", "s3", base.LIVENESS),
            volume_mounts=[data.mount(), home.mount()],
            security_context=base.container_security(),
        )
        s3 = base.ServicePort("s3", m.api_port, m.api_port)
        props = base.WorkloadProps(
            name=names.minio,
            component="object-store",
            layer=layer,
            version=m.image.tag,
            containers=[container],
            run_as=MINIO_RUN_AS,
            volumes=[home.volume()] if persistent else [data.volume(), home.volume()],
            # The data volume (100Gi in the cluster profile) is chowned only when its root mismatches.
            fs_group_change_policy="OnRootMismatch" if persistent else None,
            services=[
                base.ExposedService(names.minio, [s3], description="MinIO S3 API"),
                base.ExposedService(
                    names.minio_console,
                    [base.ServicePort("console", m.console_port, m.console_port, forward_to=9001)],
                    description="MinIO console (log in with the floe-minio-root Secret)",
                ),
            ],
        )
        if persistent:
            # A single-drive server whose drive is a claim: it follows the pod to any node.
            lbls = base.labels(names.minio, component="object-store", layer=layer, version=m.image.tag)
            base.StatefulWorkload(
                self,
                "workload",
                props=props,
                governing_service=base.ExposedService(names.minio_headless, [s3], headless=True),
                volume_claims=[data.claim(lbls)],
            )
        else:
            base.Workload(self, "workload", props=props)
        BucketJob(self, "buckets", config=config, layer=layer)


def bucket_names(config: StackConfig) -> list[str]:
    """Every bucket the stack writes: the warehouse, Cube Store's, Dagster's logs and, with
    postgres.backup, the PostgreSQL backups'."""
    m, backup = config.minio, config.postgres.backup
    return [m.warehouse_bucket, m.cubestore_bucket, m.dagster_logs_bucket, *([backup.bucket] if backup else [])]


def grants(config: StackConfig) -> dict:
    """Client -> its grants on this stack's buckets (demo/bootstrap/identities.py)."""
    m, backup = config.minio, config.postgres.backup
    return client_grants(
        warehouse=m.warehouse_bucket, cubestore=m.cubestore_bucket, dagster_logs=m.dagster_logs_bucket,
        backups=backup.bucket if backup else None,
    )


def identity_env(config: StackConfig) -> list[k8s.EnvVar]:
    """The bucket step's FLOE_S3_IDENTITIES__<CLIENT>__*: each client's key from its own Secret and
    its grants (JSON, visible in the manifest: the policy each client gets is reviewable in dist/)."""
    secrets, name = StackSecrets(config), BucketSettings.identity_env_name
    env = [base.env(BucketSettings.env_name("s3_identity_prefix"), config.name_prefix)]
    for client, client_grants_ in grants(config).items():
        env += secrets.s3_env(client, name(client, "access_key_id"), name(client, "secret_access_key"))
        env.append(base.env(name(client, "grants"), json.dumps({g.bucket: g.access for g in client_grants_})))
    return env


class BucketJob(plain.PlainConstruct):
    """Creates the warehouse, Cube Store and Dagster log buckets and one MinIO user + policy per
    client; idempotent, retried until MinIO answers. The only Job holding MinIO's root key."""

    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        m, names = config.minio, config.names
        secrets = StackSecrets(config)
        setting = BucketSettings.env_name
        base.bootstrap_job(
            self,
            "job",
            config=config,
            layer=layer,
            name=names.minio_buckets_job,
            step="buckets",
            container_name="buckets",
            env=[
                base.env(setting("s3_endpoint"), config.endpoints.s3_url),
                secrets.minio_user.env(setting("s3_admin_access_key_id")),
                secrets.minio_password.env(setting("s3_admin_secret_access_key")),
                base.env(setting("s3_region"), config.endpoints.s3_region),
                base.env(setting("buckets"), ",".join(bucket_names(config))),
                # Users and policies only on our own MinIO (an external store's are yours).
                *(identity_env(config) if m.external is None else []),
            ],
            depends_on=base.Dependency(config.endpoints.s3_host, config.endpoints.s3_port),
        )
