"""PostgreSQL backups (``postgres.backup``): a CronJob that dumps every application database to the
object store and keeps the newest ``keep`` sets (demo/backup.py; restore in docs/production.md).

One pod per run: the init container ``dump`` runs the PostgreSQL image's own pg_dump (the server's
major version) as the superuser, one ``--format=custom`` file per database into an emptyDir; the
container ``upload`` (the project image, boto3) uploads them as one set and prunes old sets. A
failed dump fails the pod before anything is uploaded, so an incomplete set is never written.
"""

from __future__ import annotations


from constructs import base, k8s, plain
from constructs.secrets import StackSecrets
from demo.backup import ENDPOINT_ENV, REGION_ENV, SUFFIX
from floe.config import StackConfig

DUMP_DIR = "/backup"
PG_HOST_ENV = "FLOE_BACKUP_PG_HOST"
PG_PORT_ENV = "FLOE_BACKUP_PG_PORT"
DATABASES_ENV = "FLOE_BACKUP_DATABASES"


def dump_script() -> str:
    """pg_dump of each database to ``<db>.dump`` (renamed from a partial file once complete)."""
    return (
        "set -euo pipefail\n"
        f'export PGHOST="${PG_HOST_ENV}" PGPORT="${PG_PORT_ENV}" PGCONNECT_TIMEOUT=10\n'
        f"for db in ${DATABASES_ENV}; do\n"
        f'  pg_dump --format=custom --compress=6 --dbname="$db" --file="{DUMP_DIR}/$db{SUFFIX}.partial"\n'
        f'  mv "{DUMP_DIR}/$db{SUFFIX}.partial" "{DUMP_DIR}/$db{SUFFIX}"\n'
        f'  echo "dumped $db ($(stat -c %s "{DUMP_DIR}/$db{SUFFIX}") bytes)"\n'
        "done\n"
    )


class PostgresBackup(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        b, names, pg = config.postgres.backup, config.names, config.postgres
        assert b is not None
        secrets = StackSecrets(config)
        lbls = base.labels(names.postgres_backup, component="backup", layer=layer, version=config.project_image.tag)
        dumps = base.ScratchVolume("dumps", DUMP_DIR, size_limit=b.scratch_size)
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="64Mi")
        dump = k8s.Container(
            name="dump",
            **base.image_fields(pg.image),
            command=["bash", "-c", dump_script()],
            env=[
                base.env(PG_HOST_ENV, config.endpoints.postgres_host),
                base.env(PG_PORT_ENV, config.endpoints.postgres_port),
                base.env(DATABASES_ENV, " ".join(config.endpoints.database_name(db) for db in pg.databases)),
                secrets.postgres_user.env("PGUSER"),
                secrets.postgres_password.env("PGPASSWORD"),
            ],
            resources=base.resources(b.resources),
            volume_mounts=[dumps.mount(), tmp.mount()],
            security_context=base.container_security(),
        )
        upload = k8s.Container(
            name="upload",
            **base.image_fields(config.project_image),
            command=[
                "python", "-m", "demo.backup", "--bucket", b.bucket, "--prefix", b.prefix,
                "upload", "--dir", DUMP_DIR, "--keep", str(b.keep),
            ],
            env=[
                base.env(ENDPOINT_ENV, config.endpoints.s3_url),
                base.env(REGION_ENV, config.endpoints.s3_region),
                # Its own key (demo/bootstrap/identities.py "backup"): the backup bucket only.
                *secrets.s3_env("backup", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            ],
            resources=base.resources(b.resources),
            volume_mounts=[dumps.mount(), tmp.mount()],
            security_context=base.container_security(),
        )
        self.cron_job = base.cron_job(
            self, "cronjob",
            name=names.postgres_backup, lbls=lbls, schedule=b.schedule,
            containers=[upload], init_containers=[dump], volumes=[dumps.volume(), tmp.volume()],
            run_as=base.PROJECT_RUN_AS,
            # Two more attempts (a PostgreSQL restart mid-dump); then the next schedule.
            backoff_limit=2,
            active_deadline_seconds=b.active_deadline_seconds,
            starting_deadline_seconds=600,
            successful_jobs_history_limit=1,
            failed_jobs_history_limit=3,
        )
