"""Dagster: webserver, daemon and the user-code gRPC server running the demo pipeline.

All three run the project image. ``dagster.yaml`` (PostgreSQL storage, daemon scheduler, queued run
coordinator, compute logs on MinIO, telemetry off) and ``workspace.yaml`` are rendered from the
typed config into ConfigMaps. By default (``dagster.run_launcher: default``, the local profile) runs
are launched inside the user-code pod, so no RBAC is needed and that pod is sized for dbt + DuckDB.
With ``k8s`` (config/cluster.yaml) dagster-k8s's K8sRunLauncher starts one Job per run from the
project image (:func:`run_pod`, declared in dist/ as a PodTemplate), and the daemon and webserver
mount the token of a ServiceAccount whose Role is exactly :data:`LAUNCHER_RULES`. Either way run
stdout/stderr go to MinIO (S3ComputeLogManager), where the webserver reads them.
"""

from __future__ import annotations

import re

import yaml

from constructs import base, k8s, plain
from constructs.placement import toleration
from constructs.secrets import StackSecrets
from demo.bootstrap.image import APP_DIR, DUCKDB_EXTENSION_DIR
from demo.lakehouse.settings import DbtSettings, LakehouseSettings
from demo.orchestration import daemon_liveness
from demo.orchestration.instance import S3_ENV, s3_compute_logs
from demo.orchestration.settings import PipelineSettings
from floe.config import StackConfig
from floe.memory import duckdb_spill_mib
from floe.quantities import memory_bytes

DAGSTER_HOME = "/opt/dagster/home"
WORKSPACE_DIR = "/opt/dagster/workspace"
INSTANCE_FILE = "dagster.yaml"
WORKSPACE_FILE = "workspace.yaml"
# Variables our dagster.yaml reads ({env: ...}): the connection to its PostgreSQL database (the
# daemon's liveness probe connects with the same ones).
PG_ENV = daemon_liveness.PG_ENV
# Daemon types our dagster.yaml makes required (DagsterInstance.get_required_daemon_types() of the
# rendered instance, checked by tests/contract/test_dagster_pods.py): sensors, backfills, schedules
# (DagsterDaemonScheduler), the run queue (QueuedRunCoordinator), declarative automation, freshness;
# then, in Dagster's order, run monitoring and run retries where the config turns them on
# (:func:`required_daemons`).
REQUIRED_DAEMONS = ("SENSOR", "BACKFILL", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "ASSET", "FRESHNESS_DAEMON")
MONITORING_DAEMON = "MONITORING"
RUN_RETRIES_DAEMON = "EVENT_LOG_CONSUMER"


def required_daemons(config: StackConfig) -> tuple[str, ...]:
    """The daemons the rendered dagster.yaml requires, in DagsterInstance.get_required_daemon_types()'s
    order: the liveness probe fails when any of them stops posting heartbeats."""
    d = config.dagster
    base_daemons = REQUIRED_DAEMONS[:4]
    extra = (MONITORING_DAEMON,) * d.run_monitoring.enabled + (RUN_RETRIES_DAEMON,) * (d.run_retries.max_retries > 0)
    return (*base_daemons, *extra, *REQUIRED_DAEMONS[4:])
# The daemon's liveness: every required daemon posted a heartbeat within 30 s (its interval) + this.
# A sensor evaluation or run launch can hold a daemon's loop for up to a minute, so less restarts a
# busy, healthy daemon; `dagster-daemon liveness-check` itself allows 1800 s.
DAEMON_HEARTBEAT_TOLERANCE_SECONDS = 90
# Each process stages a step's logs here (its /tmp emptyDir) before the upload to MinIO.
COMPUTE_LOG_STAGING_DIR = "/tmp/dagster/compute_logs"


def daemon_liveness_command(config: StackConfig | None = None, *, startup: bool = False) -> list[str]:
    """The daemon's liveness probe: heartbeats read from PostgreSQL by psycopg2 alone, the same
    rule as `dagster-daemon liveness-check` at a thirtieth of the CPU (demo.orchestration.daemon_liveness).
    ``config``: the daemons its dagster.yaml requires (:func:`required_daemons`); None: the base set.
    ``startup``: only heartbeats newer than this container's PID 1 (the daemon) count, so the previous
    pod's recent heartbeats cannot pass the startup probe of a daemon that has not posted any yet."""
    daemons = required_daemons(config) if config is not None else REQUIRED_DAEMONS
    since = ["--since-start-of-pid", "1"] if startup else []
    return [
        "python", "-m", "demo.orchestration.daemon_liveness",
        "--tolerance", str(DAEMON_HEARTBEAT_TOLERANCE_SECONDS), *since, *daemons,
    ]


def run_monitoring_config(config: StackConfig) -> dict:
    """dagster.yaml ``run_monitoring`` (dagster/_core/instance/config.py): the daemon fails a run
    whose worker never started within the start timeout, or whose worker the launcher reports gone
    or failed (K8sRunLauncher.check_run_worker_health reads the run's Job). Never resumes a run."""
    m = config.dagster.run_monitoring
    if not m.enabled:
        return {"enabled": False}
    return {
        "enabled": True,
        "start_timeout_seconds": m.start_timeout_seconds,
        "poll_interval_seconds": m.poll_interval_seconds,
        "max_resume_run_attempts": 0,
    }


def run_retries_config(config: StackConfig) -> dict | None:
    r = config.dagster.run_retries
    if r.max_retries == 0:
        return None
    return {"enabled": True, "max_retries": r.max_retries, "retry_on_asset_or_op_failure": r.retry_on_asset_or_op_failure}


def instance_config(config: StackConfig) -> dict:
    """dagster.yaml. Credentials and endpoints come from env (never written into the ConfigMap)."""
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": {"env": PG_ENV["host"]},
                    "port": {"env": PG_ENV["port"]},
                    "db_name": {"env": PG_ENV["db"]},
                    "username": {"env": PG_ENV["user"]},
                    "password": {"env": PG_ENV["password"]},
                    # dagster-postgres ships psycopg2, but SQLAlchemy 2.1 maps a bare `postgresql://`
                    # to psycopg 3 (not installed): name the driver, or every process fails at start.
                    "scheme": "postgresql+psycopg2",
                }
            }
        },
        "scheduler": {"module": "dagster._core.scheduler", "class": "DagsterDaemonScheduler"},
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"max_concurrent_runs": config.dagster.max_concurrent_runs},
        },
        # default: each run is a subprocess of the user-code server; k8s: a Kubernetes Job per run.
        "run_launcher": run_launcher_config(config),
        # Run stdout/stderr on MinIO: runs execute in the user-code pod, the webserver shows them.
        # Endpoint and bucket only; the credentials are boto3's env (compute_log_env), from Secrets.
        "compute_logs": s3_compute_logs(
            bucket=config.minio.dagster_logs_bucket,
            endpoint_url=config.endpoints.s3_url,
            use_ssl=config.endpoints.s3_url.startswith("https://"),
            region=config.endpoints.s3_region,
            local_dir=COMPUTE_LOG_STAGING_DIR,
        ),
        # Artifacts on the pod's scratch volume (the image is read-only).
        "local_artifact_storage": {
            "module": "dagster._core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": "/tmp/dagster/storage"},
        },
        "run_monitoring": run_monitoring_config(config),
        **({"run_retries": retries} if (retries := run_retries_config(config)) else {}),
        "telemetry": {"enabled": False},
    }


def workspace_config(config: StackConfig) -> dict:
    d = config.dagster
    return {
        "load_from": [
            {"grpc_server": {"host": config.names.dagster_user_code, "port": d.grpc_port, "location_name": d.location_name}}
        ]
    }


#: The object-store client of each Dagster process: the pods that run steps write the tables and
#: the run logs; the webserver and the daemon only read the logs (demo/bootstrap/identities.py).
PIPELINE_CLIENT = "dagster_pipeline"
LOG_READER_CLIENT = "dagster_webserver"


def instance_env(config: StackConfig, s3_client: str = PIPELINE_CLIENT) -> list[k8s.EnvVar]:
    """What every Dagster process needs to open the instance, with ``s3_client``'s key for the logs."""
    secrets = StackSecrets(config)
    return [
        base.env("DAGSTER_HOME", DAGSTER_HOME),
        base.env(PG_ENV["host"], config.endpoints.postgres_host),
        base.env(PG_ENV["port"], config.endpoints.postgres_port),
        base.env(PG_ENV["db"], config.endpoints.database_name("dagster")),
        secrets.database_user("dagster").env(PG_ENV["user"]),
        secrets.database_password("dagster").env(PG_ENV["password"]),
        # libpq's own variable: psycopg2 (Dagster's storage, the liveness probe) honours it.
        *([base.env("PGSSLMODE", config.endpoints.postgres_sslmode)] if config.endpoints.postgres_sslmode else []),
        *compute_log_env(config, s3_client),
    ]


def compute_log_env(config: StackConfig, s3_client: str = PIPELINE_CLIENT) -> list[k8s.EnvVar]:
    """boto3's credentials and region for the S3 compute log manager. Every Dagster process loads
    the same instance: the user-code pod writes run logs, the webserver reads them, and the daemon
    (sensor and schedule evaluations) may do either."""
    secrets = StackSecrets(config)
    return [
        *secrets.s3_env(s3_client, S3_ENV["access_key_id"], S3_ENV["secret_access_key"]),
        base.env(S3_ENV["region"], config.endpoints.s3_region),
    ]


def observability_env(config: StackConfig, service_name: str) -> list[k8s.EnvVar]:
    """OTLP and OpenLineage endpoints, derived from the config; absent when the service is off
    (the pipeline then logs once that tracing/lineage is off instead of sending to nowhere)."""
    endpoints = config.endpoints
    result: list[k8s.EnvVar] = []
    if endpoints.otlp_http_url:
        result += [
            base.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoints.otlp_http_url),
            base.env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            base.env("OTEL_SERVICE_NAME", service_name),
            base.env("OTEL_METRICS_EXPORTER", "none"),
            base.env("OTEL_LOGS_EXPORTER", "none"),
        ]
    if endpoints.openlineage_url:
        result += [
            base.env("OPENLINEAGE_URL", endpoints.openlineage_url),
            base.env("OPENLINEAGE_NAMESPACE", config.marquez.lineage_namespace),
        ]
    return result


def lakehouse_env(config: StackConfig) -> list[k8s.EnvVar]:
    """The writer principal's view of the lakehouse: Polaris + MinIO (LakehouseSettings fields)."""
    secrets, endpoints, p = StackSecrets(config), config.endpoints, config.polaris
    name = LakehouseSettings.env_name
    return [
        base.env(name("catalog_uri"), endpoints.catalog_uri),
        base.env(name("catalog_warehouse"), p.catalog),
        base.env(name("catalog_oauth2_uri"), endpoints.catalog_oauth2_uri),
        secrets.catalog_writer_client_id.env(name("catalog_client_id")),
        secrets.catalog_writer_client_secret.env(name("catalog_client_secret")),
        base.env(name("s3_endpoint"), endpoints.s3_url),
        *secrets.s3_env(PIPELINE_CLIENT, name("s3_access_key_id"), name("s3_secret_access_key")),
        base.env(name("s3_region"), config.endpoints.s3_region),
        base.env(name("namespace_raw"), p.namespaces["raw"]),
        base.env(name("namespace_staging"), p.namespaces["staging"]),
        base.env(name("namespace_marts"), p.namespaces["marts"]),
        base.env(name("marts_snapshot_retention_s"), config.dagster.marts_snapshot_retention_s),
        # Pre-installed in the image from the duckdb-extension-* wheels: nothing is downloaded.
        base.env(name("duckdb_extension_directory"), DUCKDB_EXTENSION_DIR),
    ]


# DuckDB in the user-code pod (dbt's connection through the plugin, and the pipeline's own, both
# through demo.lakehouse.duckdb.init_sql): each instance may use this share of the container's memory
# limit, so two at once (a sensor's read during a dbt build) still leave room for the Python
# processes (code server, run worker, dbt); beyond it DuckDB spills to the /tmp emptyDir, up to this
# share of that volume.
DUCKDB_MEMORY_SHARE = 0.4
DUCKDB_TEMP_DIRECTORY = "/tmp/duckdb"
USER_CODE_SCRATCH_SIZE = "2Gi"
# The rest of that /tmp (dbt's DuckDB file, target/ and logs/, compute-log staging, Python's temp
# files) is floe.memory.SCRATCH_RESERVED_MIB, which the memory audit reads too.


def duckdb_instances(config: StackConfig) -> int:
    """DuckDB instances that may spill into the user-code pod's /tmp at once: the sensor's read, and
    with the default launcher one dbt build per concurrent run (runs execute in this pod)."""
    runs = config.dagster.max_concurrent_runs if config.dagster.run_launcher == "default" else 0
    return 1 + runs


def duckdb_env(config: StackConfig, resources: base.Resources | None = None) -> list[k8s.EnvVar]:
    """DuckDB's memory_limit and spill directory, derived from the limits of the container that runs
    the steps (the user-code container, or a run pod's with the k8s launcher: one run, one DuckDB)."""
    limit = (resources or config.dagster.user_code_resources).memory_limit
    instances = 1 if resources is not None else duckdb_instances(config)
    return duckdb_sizing_env(memory_limit=limit, scratch_size=USER_CODE_SCRATCH_SIZE, memory_share=DUCKDB_MEMORY_SHARE, instances=instances)


def duckdb_sizing_env(*, memory_limit: str, scratch_size: str, memory_share: float, instances: int = 1) -> list[k8s.EnvVar]:
    """The FLOE_DUCKDB_* settings (demo.lakehouse.settings) of a container running our DuckDB:
    ``memory_share`` of its memory limit, spilling to DUCKDB_TEMP_DIRECTORY on its /tmp emptyDir of
    ``scratch_size``. DuckDB caps each instance's spill (max_temp_directory_size), not their sum, so
    the volume is shared by construction: ``instances`` spills of
    floe.memory.duckdb_spill_mib(scratch, instances) each, plus SCRATCH_RESERVED_MIB for the rest,
    never exceed the emptyDir's sizeLimit (where the kubelet evicts the pod before DuckDB's own cap
    applies). floe/memory_audit.py checks the same sum from dist/."""
    name = LakehouseSettings.env_name
    memory_mib = memory_bytes(memory_limit) // 2**20
    spill_mib = duckdb_spill_mib(memory_bytes(scratch_size) // 2**20, instances)
    return [
        base.env(name("duckdb_memory_limit"), f"{int(memory_mib * memory_share)}MiB"),
        base.env(name("duckdb_temp_directory"), DUCKDB_TEMP_DIRECTORY),
        base.env(name("duckdb_max_temp_directory_size"), f"{spill_mib}MiB"),
    ]


def pipeline_env(config: StackConfig) -> list[k8s.EnvVar]:
    d = config.dagster
    name = PipelineSettings.env_name
    return [
        base.env(name("schedule_cron"), d.schedule_cron),
        base.env(name("orders_per_tick"), d.orders_per_tick),
        base.env(name("dbt_target"), "cluster"),
        # dbt's local DuckDB file (staging views) on the scratch volume.
        base.env(DbtSettings.env_name("duckdb_path"), DbtSettings.model_fields["duckdb_path"].default),
    ]


# --- runs as Kubernetes Jobs (dagster.run_launcher: k8s) ----------------------------------------

#: The run pod's container: construct_dagster_k8s_job's default name (dagster_k8s/job.py).
RUN_CONTAINER = "dagster"
RUN_COMPONENT = "run-worker"
#: placement.components key of the run pods.
RUN_PLACEMENT = "dagster-run"
#: The cluster autoscaler's annotation: it never removes a node to evict a pod carrying "false".
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
ORCHESTRATION_LAYER = "orchestration"

#: (apiGroup, resource) -> verbs: every Kubernetes API call K8sRunLauncher makes in dagster-k8s
#: 0.29.27, in the job namespace, and nothing else (tests/contract/test_k8s_run_launcher.py derives
#: the same table from the installed package's source). launcher.py -> client.py:
#:   launch_run / resume_run -> create_namespaced_job_with_retries -> batch_api.create_namespaced_job
#:   terminate -> delete_job -> core_api.list_namespaced_pod (get_pods_in_job),
#:       batch_api.delete_namespaced_job, core_api.delete_namespaced_pod
#:   check_run_worker_health -> get_job_status -> batch_api.read_namespaced_job_status
#:   get_run_worker_debug_info -> get_pod_names_in_job (list pods), get_pod_debug_info
#:       (core_api.list_namespaced_pod, read_namespaced_pod_log, list_namespaced_event),
#:       get_job_debug_info (batch_api.list_namespaced_job, core_api.list_namespaced_event)
LAUNCHER_RULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("batch", "jobs"): ("create", "delete", "list"),
    ("batch", "jobs/status"): ("get",),
    ("", "pods"): ("delete", "list"),
    ("", "pods/log"): ("get",),
    ("", "events"): ("list",),
}


#: The webserver's own Role (k8s launcher): terminating a run from the UI is QueuedRunCoordinator
#: .cancel_run -> K8sRunLauncher.terminate -> delete_job: list the Job's pods, delete the Job, delete
#: the pods (the same calls as in LAUNCHER_RULES' terminate line). It never creates a Job; with
#: dagster.webserver_read_only it terminates nothing, so its Role is empty (the token is still
#: mounted: loading the instance builds the launcher, which reads the in-cluster config).
WEBSERVER_RULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("batch", "jobs"): ("delete",),
    ("", "pods"): ("delete", "list"),
}


def run_pod_env(config: StackConfig) -> tuple[list[k8s.EnvVar], list[k8s.EnvVar]]:
    """(literal values, values from Secrets) of a run pod: the user-code container's env (a run does
    what the default launcher's run did there), DuckDB sized to ``dagster.run_resources``. The
    literal ones go to a ConfigMap (``names.dagster_run_env``, read with envFrom); the Secret
    references are written into dagster.yaml (names and keys only, never a value). DAGSTER_HOME is
    dagster-k8s's own (``dagster_home``). Traces keep the user-code service name: the pipeline's."""
    everything = [
        *instance_env(config),
        *lakehouse_env(config),
        *duckdb_env(config, config.dagster.run_resources),
        *pipeline_env(config),
        *observability_env(config, config.names.dagster_user_code),
    ]
    everything = [e for e in everything if e.name != "DAGSTER_HOME"]
    return [e for e in everything if e.value_from is None], [e for e in everything if e.value_from is not None]


def run_labels(config: StackConfig, layer: str = ORCHESTRATION_LAYER) -> dict[str, str]:
    """Labels of the run Jobs and pods (K8sRunLauncher ``labels``), selected by name and
    base.STACK_LABEL, never by app.kubernetes.io/instance.

    The launcher creates these Jobs at run time, with no ownerReferences. Under Argo CD's label
    tracking an object whose app.kubernetes.io/instance is an Application's name belongs to that
    Application: it is OutOfSync, and with prune it is deleted while it runs. dagster-k8s always
    writes the key (get_common_labels: ``dagster``, the name the official chart's Application
    usually has), and our labels can only override its value: the run's own name, which no
    Application of floe is called (tests/contract/test_run_monitoring.py checks the Job against
    docs/examples/argocd-application.yaml)."""
    lbls = base.labels(config.names.dagster_run, component=RUN_COMPONENT, layer=layer, version=config.project_image.tag)
    return {**lbls, "app.kubernetes.io/instance": config.names.dagster_run, base.STACK_LABEL: base.PART_OF}


def run_pod(config: StackConfig, layer: str = ORCHESTRATION_LAYER) -> k8s.PodTemplateSpec:
    """The pod dagster-k8s builds for each run (construct_dagster_k8s_job, from the launcher config
    that :func:`k8s_run_launcher` derives from this): hardened like every pod of the stack, no
    ServiceAccount token, labels that select exactly the run pods. Declared in dist/ as a
    PodTemplate, so the checks and the NetworkPolicy derivation see the run pods."""
    names = config.names
    _, secret_env = run_pod_env(config)
    tmp = base.ScratchVolume("tmp", "/tmp", size_limit=USER_CODE_SCRATCH_SIZE)
    home = base.ScratchVolume("home", DAGSTER_HOME, size_limit="64Mi")
    instance = base.ConfigFiles("instance", names.dagster_instance_config, f"{DAGSTER_HOME}/{INSTANCE_FILE}", sub_path=INSTANCE_FILE)
    container = k8s.Container(
        name=RUN_CONTAINER,
        **base.image_fields(config.project_image),
        working_dir=APP_DIR,
        env=[base.env("DAGSTER_HOME", DAGSTER_HOME), *secret_env],
        env_from=[k8s.EnvFromSource(config_map_ref=k8s.ConfigMapEnvSource(name=names.dagster_run_env))],
        resources=base.resources(config.dagster.run_resources),
        volume_mounts=[tmp.mount(), home.mount(), instance.mount()],
        security_context=base.container_security(),
    )
    placement = config.placement.of(RUN_PLACEMENT)
    return k8s.PodTemplateSpec(
        # A run cannot be resumed (max_resume_run_attempts 0): the cluster autoscaler must not
        # evict a run pod to scale a node down (a drain still does: run monitoring then fails it).
        metadata=k8s.ObjectMeta(labels=run_labels(config, layer), annotations={SAFE_TO_EVICT: "false"}),
        spec=k8s.PodSpec(
            image_pull_secrets=[k8s.LocalObjectReference(name=n) for n in config.placement.image_pull_secrets] or None,
            node_selector=dict(placement.node_selector) or None,
            tolerations=[k8s.Toleration(**_snake_kwargs(toleration(t))) for t in placement.tolerations] or None,
            priority_class_name=placement.priority_class_name,
            restart_policy="Never",
            containers=[container],
            volumes=[tmp.volume(), home.volume(), instance.volume()],
            security_context=base.pod_security(base.PROJECT_RUN_AS),
            service_account_name=names.dagster_run,
            automount_service_account_token=False,
            enable_service_links=False,
        ),
    )


def _snake_kwargs(fields: dict) -> dict:
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in fields.items()}


def _snake(value: object) -> object:
    """Kubernetes' camelCase keys in dagster-k8s's snake_case (its k8s_model_from_dict rejects
    anything else). Only for objects without free-form maps (labels, annotations)."""
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


def k8s_run_launcher(config: StackConfig, layer: str = ORCHESTRATION_LAYER) -> dict:
    """dagster_k8s.launcher.K8sRunLauncher's config (config_type_run_launcher in dagster_k8s/job.py),
    read off :func:`run_pod` so the Job dagster-k8s builds is that pod."""
    names = config.names
    pod = plain.to_json(run_pod(config, layer))
    spec = pod["spec"]
    container = spec["containers"][0]
    env = container["env"]
    return {
        "module": "dagster_k8s.launcher",
        "class": "K8sRunLauncher",
        "config": {
            "job_namespace": config.namespace,
            # The run worker exits non-zero when its run fails, so the pod and the Job (backoffLimit
            # 0) end Failed: `kubectl get jobs` and alerting on failed Jobs show failed runs.
            "fail_pod_on_run_failure": True,
            "service_account_name": spec["serviceAccountName"],
            "instance_config_map": names.dagster_instance_config,
            "dagster_home": next(e["value"] for e in env if e["name"] == "DAGSTER_HOME"),
            "job_image": container["image"],
            "image_pull_policy": container["imagePullPolicy"],
            **({"image_pull_secrets": spec["imagePullSecrets"]} if spec.get("imagePullSecrets") else {}),
            "env_config_maps": [source["configMapRef"]["name"] for source in container["envFrom"]],
            "labels": pod["metadata"]["labels"],
            "resources": container["resources"],
            "security_context": _snake(container["securityContext"]),
            "volume_mounts": _snake(container["volumeMounts"]),
            "volumes": _snake(spec["volumes"]),
            "run_k8s_config": {
                "container_config": {
                    "working_dir": container["workingDir"],
                    "env": _snake([e for e in env if e["name"] != "DAGSTER_HOME"]),
                },
                "pod_spec_config": {
                    "automount_service_account_token": spec["automountServiceAccountToken"],
                    "enable_service_links": spec["enableServiceLinks"],
                    "security_context": _snake(spec["securityContext"]),
                    # Placement (config.placement): free-form maps stay as they are.
                    **({"node_selector": spec["nodeSelector"]} if spec.get("nodeSelector") else {}),
                    **({"tolerations": _snake(spec["tolerations"])} if spec.get("tolerations") else {}),
                    **({"priority_class_name": spec["priorityClassName"]} if spec.get("priorityClassName") else {}),
                },
                "pod_template_spec_metadata": {"annotations": pod["metadata"]["annotations"]},
            },
            # A run's tags (dagster-k8s/config) may size its pod, nothing else: no other
            # ServiceAccount, security context or env than the ones above.
            "only_allow_user_defined_k8s_config_fields": {"container_config": {"resources": True}},
            "only_allow_user_defined_env_vars": [],
        },
    }


def run_launcher_config(config: StackConfig) -> dict:
    if config.dagster.run_launcher == "k8s":
        return k8s_run_launcher(config)
    return {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}


class RunLauncherObjects(plain.PlainConstruct):
    """What the k8s run launcher needs in the namespace: the run pods' env ConfigMap and
    ServiceAccount (no token, no Role), the PodTemplate declaring them, and the launcher's
    ServiceAccount with a Role of exactly :data:`LAUNCHER_RULES`, bound to it."""

    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        names, tag = config.names, config.project_image.tag
        literal_env, _ = run_pod_env(config)
        run_lbls = base.labels(names.dagster_run, component=RUN_COMPONENT, layer=layer, version=tag)
        base.config_map(self, "run-env", name=names.dagster_run_env, lbls=run_lbls, data={e.name: e.value for e in literal_env})
        plain.api_object(k8s.KubeServiceAccount, self, "run-account", metadata=base.meta(names.dagster_run, run_lbls), automount_service_account_token=False)
        plain.api_object(k8s.KubePodTemplate, self, "run-pod", metadata=base.meta(names.dagster_run, run_lbls), template=run_pod(config, layer))
        launcher_lbls = base.labels(names.dagster_launcher, component="run-launcher", layer=layer, version=tag)
        plain.api_object(k8s.KubeServiceAccount, self, "launcher-account", metadata=base.meta(names.dagster_launcher, launcher_lbls))
        plain.api_object(
            k8s.KubeRole,
            self, "launcher-role", metadata=base.meta(names.dagster_launcher, launcher_lbls),
            rules=[
                k8s.PolicyRule(api_groups=[group], resources=[resource], verbs=list(verbs))
                for (group, resource), verbs in LAUNCHER_RULES.items()
            ],
        )
        plain.api_object(
            k8s.KubeRoleBinding,
            self, "launcher-binding", metadata=base.meta(names.dagster_launcher, launcher_lbls),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=names.dagster_launcher),
            subjects=[k8s.Subject(kind="ServiceAccount", name=names.dagster_launcher, namespace=config.namespace)],
        )
        # The webserver (exposed by the Ingress) has its own account: it may terminate runs, never create Jobs.
        web = names.dagster_webserver
        web_lbls = base.labels(web, component="webserver", layer=layer, version=tag)
        plain.api_object(k8s.KubeServiceAccount, self, "webserver-account", metadata=base.meta(web, web_lbls))
        rules = {} if config.dagster.webserver_read_only else WEBSERVER_RULES
        plain.api_object(
            k8s.KubeRole,
            self, "webserver-role", metadata=base.meta(web, web_lbls),
            rules=[
                k8s.PolicyRule(api_groups=[group], resources=[resource], verbs=list(verbs))
                for (group, resource), verbs in rules.items()
            ],
        )
        plain.api_object(
            k8s.KubeRoleBinding,
            self, "webserver-binding", metadata=base.meta(web, web_lbls),
            role_ref=k8s.RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=web),
            subjects=[k8s.Subject(kind="ServiceAccount", name=web, namespace=config.namespace)],
        )


class MigrationJob(plain.PlainConstruct):
    """``python -m demo.orchestration.migrate`` (DagsterInstance.upgrade: `dagster instance migrate`
    without building the run launcher) from the project image, once PostgreSQL answers. A bootstrap
    Job (base.job): named after its content, so a new project image (a Dagster upgrade) is a new Job
    that runs once, and an unchanged dist/ re-applies as unchanged. Idempotent: on an up-to-date
    schema it changes nothing. Labelled ``component: bootstrap``, so GitOps places it with the other
    bootstrap Jobs (docs/examples/flux-kustomization-bootstrap.yaml)."""

    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        names = config.names
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="64Mi")
        home = base.ScratchVolume("home", DAGSTER_HOME, size_limit="64Mi")
        instance = base.ConfigFiles("instance", names.dagster_instance_config, f"{DAGSTER_HOME}/{INSTANCE_FILE}", sub_path=INSTANCE_FILE)
        container = k8s.Container(
            name="migrate",
            **base.image_fields(config.project_image),
            command=["python", "-m", "demo.orchestration.migrate"],
            working_dir=APP_DIR,
            env=instance_env(config, LOG_READER_CLIENT),  # opens the instance; writes no logs
            # Opens the Dagster instance as the reconcile step does (141 MiB peak measured there).
            resources=base.resources(config.reconcile.resources),
            volume_mounts=[tmp.mount(), home.mount(), instance.mount()],
            security_context=base.container_security(),
        )
        base.job(
            self, "job",
            name=names.dagster_migrate,
            lbls=base.labels(names.dagster_migrate, component="bootstrap", layer=layer, version=config.project_image.tag),
            container=container,
            run_as=base.PROJECT_RUN_AS,
            init_containers=[base.wait_for([base.Dependency(config.endpoints.postgres_host, config.endpoints.postgres_port)], image=config.postgres.image)],
            volumes=[tmp.volume(), home.volume(), instance.volume()],
        )


class Dagster(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        d, names, image = config.dagster, config.names, config.project_image
        lbls = base.labels(names.dagster_webserver, component="orchestration", layer=layer, version=image.tag)
        base.config_map(
            self, "instance", name=names.dagster_instance_config, lbls=lbls,
            data={INSTANCE_FILE: yaml.safe_dump(instance_config(config), sort_keys=False)},
        )
        base.config_map(
            self, "workspace", name=names.dagster_workspace_config, lbls=lbls,
            data={WORKSPACE_FILE: yaml.safe_dump(workspace_config(config), sort_keys=False)},
        )
        postgres = base.Dependency(config.endpoints.postgres_host, config.endpoints.postgres_port)
        user_code = base.Dependency(names.dagster_user_code, d.grpc_port)
        workspace_file = f"{WORKSPACE_DIR}/{WORKSPACE_FILE}"
        launcher_account = webserver_account = None
        if d.migration_job:
            MigrationJob(self, "migrate", config=config, layer=layer)
        if d.run_launcher == "k8s":
            RunLauncherObjects(self, "run-launcher", config=config, layer=layer)
            launcher_account, webserver_account = names.dagster_launcher, names.dagster_webserver

        self.user_code = DagsterProcess(
            self, "user-code", config=config, layer=layer, name=names.dagster_user_code, component="user-code",
            command=[
                "dagster", "api", "grpc",
                "--host", "0.0.0.0", "--port", str(d.grpc_port),
                "--module-name", d.module, "--working-directory", APP_DIR,
                "--location-name", d.location_name,
            ],
            env=[
                base.env("DAGSTER_CURRENT_IMAGE", image.ref),
                *lakehouse_env(config),
                *duckdb_env(config),
                *pipeline_env(config),
                *observability_env(config, names.dagster_user_code),
            ],
            ports={"grpc": d.grpc_port},
            # The stock chart's gRPC health probe (20 s x 15) cannot meet 30 s detection: TCP can.
            readiness=base.tcp("grpc", base.READINESS),
            liveness=base.tcp("grpc", base.LIVENESS),
            startup=base.tcp("grpc", base.STARTUP),
            resources=d.user_code_resources,
            depends_on=[postgres],
            scratch_size=USER_CODE_SCRATCH_SIZE,
            services=[
                base.ExposedService(
                    names.dagster_user_code,
                    [base.ServicePort("grpc", d.grpc_port, d.grpc_port)],
                    description="Dagster code server (gRPC) for the demo definitions",
                )
            ],
        )
        self.webserver = DagsterProcess(
            self, "webserver", config=config, layer=layer, name=names.dagster_webserver, component="webserver",
            command=[
                "dagster-webserver", "--host", "0.0.0.0", "--port", str(d.webserver_port), "--workspace", workspace_file,
                # One pooled connection per storage plus this many more each (its default is 20):
                # sized to fit postgres.max_connections (floe/connections.py).
                "--db-pool-max-overflow", str(d.webserver_db_pool_max_overflow),
                # Dagster's own read-only mode: no launching, terminating or toggling from the UI.
                *(["--read-only"] if d.webserver_read_only else []),
            ],
            env=[],  # the webserver runs none of our code: it only needs the instance
            s3_client=LOG_READER_CLIENT,  # shows run logs, writes none
            # k8s launcher: its own account (WEBSERVER_RULES): terminating a run deletes its Job and
            # pods (QueuedRunCoordinator.cancel_run -> K8sRunLauncher.terminate), and constructing the
            # launcher loads the in-cluster token. It cannot create Jobs: only the daemon launches.
            service_account=webserver_account,
            ports={"http": d.webserver_port},
            readiness=base.http_get("/server_info", "http", base.READINESS),
            liveness=base.http_get("/server_info", "http", base.LIVENESS),
            startup=base.http_get("/server_info", "http", base.STARTUP),
            resources=d.webserver_resources,
            depends_on=[postgres, user_code],
            replicas=d.webserver_replicas,
            services=[
                base.ExposedService(
                    names.dagster_webserver,
                    [base.ServicePort("http", d.service_port, d.webserver_port, forward_to=3000)],
                    description="Dagster UI and GraphQL API (/graphql)",
                )
            ],
        )
        liveness_check = daemon_liveness_command(config)
        self.daemon = DagsterProcess(
            self, "daemon", config=config, layer=layer, name=names.dagster_daemon, component="daemon",
            command=["dagster-daemon", "run", "--workspace", workspace_file],
            env=[],
            # Sensors and schedules are evaluated in the code server; the daemon captures no step logs.
            s3_client=LOG_READER_CLIENT,
            # k8s launcher: the daemon dequeues runs and launches their Jobs.
            service_account=launcher_account,
            ports={},
            # No Service selects the daemon: no readiness probe (nothing to route traffic away from).
            readiness=None,
            liveness=base.exec_command(liveness_check, base.EXEC_LIVENESS),
            startup=base.exec_command(daemon_liveness_command(config, startup=True), base.EXEC_STARTUP),
            resources=d.daemon_resources,
            depends_on=[postgres, user_code],
        )


class DagsterProcess(plain.PlainConstruct):
    """One Dagster process: the project image, the instance config, scratch space, its probes."""

    def __init__(
        self,
        scope: plain.Scope,
        id: str,
        *,
        config: StackConfig,
        layer: str,
        name: str,
        component: str,
        command: list[str],
        env: list[k8s.EnvVar],
        ports: dict[str, int],
        readiness: k8s.Probe | None,
        liveness: k8s.Probe,
        startup: k8s.Probe,
        resources: base.Resources,
        depends_on: list[base.Dependency],
        services: list[base.ExposedService] | None = None,
        scratch_size: str = "512Mi",
        replicas: int = 1,
        service_account: str | None = None,
        s3_client: str = PIPELINE_CLIENT,
    ) -> None:
        super().__init__(scope, id)
        names = config.names
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit=scratch_size)
        home = base.ScratchVolume("home", DAGSTER_HOME, size_limit="64Mi")
        instance = base.ConfigFiles("instance", names.dagster_instance_config, f"{DAGSTER_HOME}/{INSTANCE_FILE}", sub_path=INSTANCE_FILE)
        workspace = base.ConfigFiles("workspace", names.dagster_workspace_config, WORKSPACE_DIR)
        container = k8s.Container(
            name=component,
            **base.image_fields(config.project_image),
            command=command,
            working_dir=APP_DIR,
            ports=base.container_ports(ports) or None,
            env=[*instance_env(config, s3_client), *env],
            resources=base.resources(resources),
            readiness_probe=readiness,
            liveness_probe=liveness,
            startup_probe=startup,
            volume_mounts=[tmp.mount(), home.mount(), instance.mount(), workspace.mount()],
            security_context=base.container_security(),
        )
        base.Workload(
            self,
            "workload",
            props=base.WorkloadProps(
                name=name,
                component=component,
                layer=layer,
                version=config.project_image.tag,
                containers=[container],
                init_containers=[base.wait_for(depends_on, image=config.postgres.image)],
                run_as=base.PROJECT_RUN_AS,
                volumes=[tmp.volume(), home.volume(), instance.volume(), workspace.volume()],
                services=services or [],
                replicas=replicas,
                service_account=service_account,
                availability=config.availability,
            ),
        )
