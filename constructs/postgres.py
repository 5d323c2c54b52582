"""PostgreSQL: one server, one database owned by its own user per application (Dagster, Marquez, Polaris)."""

from __future__ import annotations


from constructs import base, k8s, plain
from constructs.secrets import StackSecrets
from floe.config import StackConfig

# The official image's postgres user (Debian variant): the entrypoint runs as it without gosu.
POSTGRES_RUN_AS = base.RunAs(uid=999, gid=999)
INIT_SCRIPT = "10-floe-databases.sh"


def password_variable(database: str) -> str:
    return f"FLOE_DB_{database.upper()}_PASSWORD"


def init_script(databases: tuple[str, ...]) -> str:
    """Creates each application's role and a database it OWNS.

    Since PostgreSQL 15 a GRANT on the database is not enough for migrations (public schema is no
    longer writable): ownership is (MarquezProject/marquez#2604). Passwords come from env vars fed by
    Secrets, passed as psql variables so they are quoted by psql, never spliced into SQL text.
    Runs once, on an empty data directory, as the image's docker-entrypoint-initdb.d contract says.
    """
    lines = [
        "#!/bin/bash",
        "set -euo pipefail",
        "create_app_database() {",
        '  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\',
        '    -v app_user="$1" -v app_password="$2" <<-\'SQL\'',
        "\tCREATE ROLE :\"app_user\" LOGIN PASSWORD :'app_password';",
        "\tCREATE DATABASE :\"app_user\" OWNER :\"app_user\";",
        "\tSQL",
        "}",
    ]
    lines += [f'create_app_database {db} "${password_variable(db)}"' for db in databases]
    return "\n".join(lines) + "\n"


class Postgres(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        pg, name = config.postgres, config.names.postgres
        secrets = StackSecrets(config)
        lbls = base.labels(name, component="database", layer=layer, version=pg.image.tag)
        init_config = f"{name}-init"
        base.config_map(self, "init", name=init_config, lbls=lbls, data={INIT_SCRIPT: init_script(pg.databases)})

        # PG 18 keeps PGDATA under /var/lib/postgresql/18/docker: mount the parent (stack.md). With
        # persistence (cluster profile) it is a PersistentVolumeClaim, so PGDATA is a subdirectory of
        # the volume's root (initdb refuses a non-empty directory such as a volume's lost+found).
        persistent = pg.persistence
        data: base.ScratchVolume | base.PersistentVolume = (
            base.PersistentVolume("data", "/var/lib/postgresql", size=persistent.size, storage_class=persistent.storage_class)
            if persistent
            else base.ScratchVolume("data", "/var/lib/postgresql", size_limit="2Gi")
        )
        run = base.ScratchVolume("run", "/var/run/postgresql", size_limit="16Mi")
        # Dynamic shared memory (dynamic_shared_memory_type posix): a container's /dev/shm is 64 MiB.
        shm = k8s.Volume(name="shm", empty_dir=k8s.EmptyDirVolumeSource(medium="Memory", size_limit=base.quantity(pg.shm_size)))
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="64Mi")
        init = base.ConfigFiles("initdb", init_config, "/docker-entrypoint-initdb.d")
        ready = ["pg_isready", "-U", "postgres", "-d", "postgres", "-h", "127.0.0.1", "-p", str(pg.port)]
        container = k8s.Container(
            name="postgres",
            **base.image_fields(pg.image),
            # The image's entrypoint runs its CMD (postgres) with these: every client's pool is sized
            # to fit this (floe/connections.py, the "connection-pools" check).
            args=["postgres", "-c", f"max_connections={pg.max_connections}"],
            ports=base.container_ports({"postgres": pg.port}),
            env=[
                secrets.postgres_user.env("POSTGRES_USER"),
                secrets.postgres_password.env("POSTGRES_PASSWORD"),
                base.env("POSTGRES_DB", "postgres"),
                base.env("PGPORT", pg.port),
                *[secrets.database_password(db).env(password_variable(db)) for db in pg.databases],
            ],
            resources=base.resources(pg.resources),
            readiness_probe=base.exec_command(ready, base.READINESS),
            liveness_probe=base.exec_command(ready, base.LIVENESS),
            # initdb + the init script run before the server listens on TCP.
            startup_probe=base.exec_command(ready, base.STARTUP),
            volume_mounts=[*(v.mount() for v in (data, run, tmp, init)), k8s.VolumeMount(name="shm", mount_path="/dev/shm")],
            security_context=base.container_security(),
        )
        service = base.ServicePort("postgres", pg.port, pg.port, forward_to=None)
        props = base.WorkloadProps(
            name=name,
            component="database",
            layer=layer,
            version=pg.image.tag,
            containers=[container],
            run_as=POSTGRES_RUN_AS,
            volumes=[*(v.volume() for v in ((run, tmp, init) if persistent else (data, run, tmp, init))), shm],
            # The image's STOPSIGNAL is SIGINT (fast shutdown); give it time to checkpoint.
            termination_grace_period=pg.termination_grace_seconds,
            fs_group_change_policy="OnRootMismatch" if persistent else None,
            services=[
                base.ExposedService(
                    name=name,
                    ports=[service],
                    description="PostgreSQL (Dagster, Marquez and Polaris databases)",
                )
            ],
        )
        if persistent:
            # One server, its data on a claim that outlives the pod (StatefulSet: the claim follows
            # the pod to whichever node it is rescheduled on; it is never shared by two pods).
            base.StatefulWorkload(
                self,
                "workload",
                props=props,
                governing_service=base.ExposedService(config.names.postgres_headless, [service], headless=True),
                volume_claims=[data.claim(lbls)],
            )
        else:
            base.Workload(self, "workload", props=props)
