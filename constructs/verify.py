"""The verification Job: ``python -m demo.verify`` from the project image, inside the namespace.

It reaches every Service by its cluster DNS name (no port-forward), so ``make verify`` works the
same on a laptop and in CI. It is synthesized with the stack and checked like every pod (schema,
wiring, security, resources), but written to ``dist/verify/`` (floe/synth.py): ``kubectl apply -f
dist/`` is not recursive, so a deploy never starts it before the stack is up. ``python -m
floe.deploy verify`` creates one per run under a unique name, with its own ``--timeout`` and
``--trigger`` args (floe/deploy/verify.py).

Its NetworkPolicy comes from the same derivation as everybody's (constructs/network.py): the
endpoints below are in its env, so its egress, and the servers' ingress from it, land in the
namespace chart, applied before anything else. A switched-off Jaeger or Marquez leaves no variable
(and so no rule); the verifier reports that check as skipped.
"""

from __future__ import annotations


from constructs import base, k8s, plain
from constructs import cube as cube_construct
from constructs import dagster as dagster_construct
from constructs.secrets import StackSecrets
from demo.lakehouse.settings import LakehouseSettings
from demo.verify.settings import VerifySettings
from floe.config import StackConfig
from floe.deploy.manifests import (
    DEFAULT_TIMEOUT_SECONDS,
    START_ALLOWANCE_SECONDS,
    TTL_SECONDS_AFTER_FINISHED,
    VERIFY_COMMAND,
    VERIFY_CONTAINER,
    verify_args,
)

#: DuckDB's share of the container's memory limit; beyond it DuckDB spills to the /tmp emptyDir.
DUCKDB_MEMORY_SHARE = 0.5
SCRATCH = base.ScratchVolume("tmp", "/tmp", size_limit="1Gi")

def _renamed(var: k8s.EnvVar, name: str) -> k8s.EnvVar:
    """The same value or Secret key under another variable name."""
    return k8s.EnvVar(name=name, value=var.value, value_from=var.value_from)


def verify_env(config: StackConfig) -> list[k8s.EnvVar]:
    """EVERY variable the verification Job gets, derived from the typed config: the one list to
    align with demo/verify/settings.py (``VerifySettings.env_name`` raises on a field it does not
    have, so a rename there fails the synth here). Endpoints come from ``config.endpoints`` and
    credentials from the stack's Secrets, through the env builders the services themselves use."""
    endpoints, names, secrets = config.endpoints, config.names, StackSecrets(config)
    lake, verify = LakehouseSettings.env_name, VerifySettings.env_name
    # The writer principal (Dagster's): catalog, the three namespaces, DuckDB's extensions; but S3
    # with the verifier's own read-only key (it only lists and reads the warehouse and Cube Store's bucket).
    s3_key_vars = {lake("s3_access_key_id"), lake("s3_secret_access_key")}
    writer = [
        *(v for v in dagster_construct.lakehouse_env(config) if v.name not in s3_key_vars),
        *secrets.s3_env("verify", lake("s3_access_key_id"), lake("s3_secret_access_key")),
    ]
    # The reader principal (Cube's): same catalog, its own client; it must be refused a write.
    reader = {v.name: v for v in cube_construct.lakehouse_env(config, extension_directory=None)}
    env = [
        *writer,
        _renamed(reader[lake("catalog_client_id")], verify("reader_client_id")),
        _renamed(reader[lake("catalog_client_secret")], verify("reader_client_secret")),
        *dagster_construct.duckdb_sizing_env(
            memory_limit=config.verify_resources.memory_limit, scratch_size=SCRATCH.size_limit, memory_share=DUCKDB_MEMORY_SHARE
        ),
        # MinIO: the buckets that must exist and hold objects.
        base.env(verify("warehouse_bucket"), config.minio.warehouse_bucket),
        base.env(verify("cubestore_bucket"), config.minio.cubestore_bucket),
        # Dagster GraphQL: the code location, its sensor and schedule, the last runs.
        base.env(verify("dagster_url"), endpoints.dagster_webserver_url),
        base.env(verify("dagster_location"), config.dagster.location_name),
        # Cube REST + GraphQL (token signed with the API secret) and the SQL API (psycopg2).
        base.env(verify("cube_api_url"), endpoints.cube_api_url),
        secrets.cube_api_secret.env(verify("cube_api_secret")),
        base.env(verify("cube_sql_host"), names.cube_sql),
        base.env(verify("cube_sql_port"), config.cube.sql_port),
        secrets.cube_sql_user.env(verify("cube_sql_user")),
        secrets.cube_sql_password.env(verify("cube_sql_password")),
    ]
    # Switchable services: absent when off, so the verifier skips the check (and no rule is derived).
    if endpoints.openlineage_url:
        env += [
            base.env(verify("marquez_url"), endpoints.openlineage_url),
            base.env(verify("lineage_namespace"), config.marquez.lineage_namespace),
        ]
    if endpoints.jaeger_query_url:
        env += [
            base.env(verify("jaeger_url"), endpoints.jaeger_query_url),
            # The service the pipeline's traces carry: OTEL_SERVICE_NAME of the user-code pod
            # (constructs/dagster.py observability_env), whose subprocesses run the runs.
            base.env(verify("jaeger_service"), names.dagster_user_code),
            # OTEL_SERVICE_NAME of the Cube API (constructs/cube.py tracing_env): the verifier's own
            # Cube query must show up in Jaeger under it.
            base.env(verify("jaeger_cube_service"), names.cube),
        ]
    return env


class VerifyJob(plain.PlainConstruct):
    """The Job template ``floe.deploy verify`` creates a run from: one attempt, no retries (a
    retry would re-run ``--trigger``), deleted an hour after it ends (the CLI keeps the report)."""

    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        name = config.names.verify
        lbls = base.labels(name, component="verify", layer=layer, version=config.project_image.tag)
        container = k8s.Container(
            name=VERIFY_CONTAINER,
            **base.image_fields(config.project_image),
            command=list(VERIFY_COMMAND),
            args=verify_args(timeout=DEFAULT_TIMEOUT_SECONDS, trigger=False),
            env=verify_env(config),
            resources=base.resources(config.verify_resources),
            volume_mounts=[SCRATCH.mount()],
            security_context=base.container_security(),
        )
        # One attempt (a retry would re-run --trigger); named after its content like every Job of
        # the stack (base.job_name), and each run gets its own name anyway (floe.deploy.verify.run_manifest).
        self.job = base.job(
            self, "job", name=name, lbls=lbls, container=container, run_as=base.PROJECT_RUN_AS,
            volumes=[SCRATCH.volume()], backoff_limit=0, restart_policy="Never",
            active_deadline_seconds=DEFAULT_TIMEOUT_SECONDS + START_ALLOWANCE_SECONDS,
            ttl_seconds_after_finished=TTL_SECONDS_AFTER_FINISHED,
        )
