"""The reconcile CronJob: the stack heals itself after a PostgreSQL or MinIO pod is replaced.

Both keep their data on emptyDirs, so a new pod starts empty. Every ``reconcile.schedule`` a Job:

1. waits (init container) until PostgreSQL, MinIO and Polaris accept connections;
2. asks Polaris whether the realm is intact (init container ``check-realm``: one token request as
   root, demo/bootstrap/realm_check.py) and only if it is not, runs the Polaris admin tool's realm
   bootstrap (init container ``bootstrap-realm``, the very container of the Polaris pod: idempotent
   since 1.7.0, apache/polaris#4996), with the root credentials from the same Secret. An intact
   realm starts no JVM and takes no lock: the admin tool's bootstrap re-runs Polaris' schema script,
   whose ``CREATE INDEX IF NOT EXISTS`` holds a ShareLock on ``entities``/``grant_records`` until it
   commits, blocking Polaris' writes every run;
3. runs ``python -m demo.bootstrap reconcile``: buckets, Polaris entities with the Secrets'
   credentials, orphaned-table clean-up, Dagster storage (demo/bootstrap/reconcile.py), ending with
   one ``floe-reconcile {json}`` summary line that ``make status`` reads.

Nothing is written twice: the container env is the union of the bucket Job's, the Polaris init
Job's and the Dagster daemon's (instance env), and the realm container, the instance ConfigMap mount
and the home volume are copied from the synthesized objects, so a change to any of them reaches the
reconcile too. It lives in the orchestration chart: everything it mounts exists by then.
"""

from __future__ import annotations

from typing import Any

from cdk8s import App

from constructs import base, k8s, plain
from floe.config import StackConfig

CONTAINER = "reconcile"
REALM_CONTAINER = "bootstrap-realm"
CHECK_CONTAINER = "check-realm"
#: The admin tool image's ENTRYPOINT (apache/polaris runtime/admin/src/main/docker/Dockerfile.jvm:
#: the UBI OpenJDK runtime image's run-java.sh, which starts the JVM with JAVA_APP_JAR). The realm
#: container calls it only when the check left the marker; the image's bash runs the test.
ADMIN_TOOL_ENTRYPOINT = "/opt/jboss/container/java/run/run-java.sh"
#: Shared between the check and the admin tool: present = the realm must be bootstrapped.
REALM_STATE = base.ScratchVolume("realm-state", "/var/run/floe-realm", size_limit="1Mi")
REALM_MARKER = f"{REALM_STATE.path}/run-admin-tool"


def _synthesized(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """An object already added to the app (any chart), found by kind and name (a Job by its base
    name: its object name carries a content digest, base.job_name)."""
    for doc in documents:
        if doc.get("kind") != kind:
            continue
        labels = doc["metadata"].get("labels") or {}
        if doc["metadata"]["name"] == name or (kind == "Job" and labels.get(base.JOB_BASE_NAME_LABEL) == name):
            return doc
    raise LookupError(f"{kind}/{name} must be synthesized before the reconcile CronJob")


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def _resolved(value: Any, where: str) -> Any:
    """``to_json()`` during construction leaves cdk8s value objects (Quantity) as null: refuse them."""
    if value is None:
        raise ValueError(f"reconcile: {where} is not resolved at construction time; build it from the config")
    if isinstance(value, dict):
        return {k: _resolved(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _env_var(var: dict[str, Any]) -> k8s.EnvVar:
    """An env entry of a synthesized container, back as an L1 object (plain values and Secret keys)."""
    if "value" in var:
        return k8s.EnvVar(name=var["name"], value=var["value"])
    ref = var["valueFrom"]["secretKeyRef"]
    if set(var["valueFrom"]) != {"secretKeyRef"}:
        raise ValueError(f"reconcile: unsupported env source for {var['name']}: {var['valueFrom']}")
    return base.env_secret(var["name"], ref["name"], ref["key"])


def _merge_env(*lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Concatenate env lists; a variable set twice must mean the same thing (same settings contract)."""
    merged: dict[str, dict[str, Any]] = {}
    for env in lists:
        for var in env:
            known = merged.setdefault(var["name"], var)
            if known != var:
                raise ValueError(f"reconcile: {var['name']} differs between the Jobs it combines: {known} vs {var}")
    return list(merged.values())


class Reconcile(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        r, names = config.reconcile, config.names
        # Every earlier chart's objects, from the documents kept beside them (constructs/plain.py).
        documents = plain.documents(App.of(plain.chart_of(scope)).charts)
        buckets_job = _synthesized(documents, "Job", names.minio_buckets_job)
        polaris_job = _synthesized(documents, "Job", names.polaris_init_job)
        polaris = _synthesized(documents, "Deployment", names.polaris)
        daemon = _synthesized(documents, "Deployment", names.dagster_daemon)

        # What the daemon needs to open the Dagster instance: its env, dagster.yaml and DAGSTER_HOME.
        daemon_container = _pod(daemon)["containers"][0]
        instance_mount = next(m for m in daemon_container["volumeMounts"] if m["name"] == "instance")
        home_mount = next(m for m in daemon_container["volumeMounts"] if m["name"] == "home")
        instance_config_map = next(v for v in _pod(daemon)["volumes"] if v["name"] == "instance")["configMap"]["name"]
        env = _merge_env(
            _pod(buckets_job)["containers"][0]["env"],
            _pod(polaris_job)["containers"][0]["env"],
            daemon_container["env"],
        )
        # The realm bootstrap exactly as the Polaris pod runs it, under the Polaris image's own user.
        realm_json = next(c for c in _pod(polaris)["initContainers"] if c["name"] == REALM_CONTAINER)
        polaris_identity = _pod(polaris)["securityContext"]
        if [m["mountPath"] for m in realm_json.get("volumeMounts") or []] not in ([], ["/tmp"]):
            raise ValueError("reconcile: the realm bootstrap container mounts more than /tmp; extend the copy")
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="64Mi")
        home = base.ScratchVolume("home", home_mount["mountPath"], size_limit="64Mi")
        if realm_json.get("command"):
            raise ValueError("reconcile: the realm bootstrap container sets a command; the skip wrapper assumes the image's entrypoint")
        # The JVM starts only when check-realm left the marker; else one line and exit 0.
        skip_unless_needed = (
            f'if [ -e {REALM_MARKER} ]; then cat {REALM_MARKER}; exec {ADMIN_TOOL_ENTRYPOINT} "$@"; fi; '
            'echo "realm intact (check-realm): admin tool not started"'
        )
        realm = k8s.Container(
            name=REALM_CONTAINER,
            image=realm_json["image"],
            image_pull_policy=realm_json.get("imagePullPolicy"),
            command=["bash", "-c", skip_unless_needed, "bash"],
            args=realm_json.get("args"),
            env=[_env_var(v) for v in realm_json.get("env") or []],
            resources=base.resources(config.polaris.admin_tool_resources),
            volume_mounts=[tmp.mount(), k8s.VolumeMount(name=REALM_STATE.name, mount_path=REALM_STATE.path, read_only=True)],
            security_context=base.container_security(
                run_as=base.RunAs(uid=polaris_identity["runAsUser"], gid=polaris_identity["runAsGroup"])
            ),
        )

        lbls = base.labels(names.reconcile, component="reconcile", layer=layer, version=config.project_image.tag)
        wait = base.wait_for(
            [
                base.Dependency(config.endpoints.postgres_host, config.endpoints.postgres_port),
                base.Dependency(config.endpoints.s3_host, config.endpoints.s3_port),
                base.Dependency(names.polaris, config.polaris.port),
            ],
            image=config.postgres.image,
        )
        check = k8s.Container(
            name=CHECK_CONTAINER,
            **base.image_fields(config.project_image),
            command=["python", "-m", "demo.bootstrap", "realm-check", "--marker", REALM_MARKER],
            env=[_env_var(v) for v in _pod(polaris_job)["containers"][0]["env"]],
            resources=base.resources(config.bootstrap_resources),
            volume_mounts=[tmp.mount(), REALM_STATE.mount()],
            security_context=base.container_security(),
        )
        main = k8s.Container(
            name=CONTAINER,
            **base.image_fields(config.project_image),
            command=["python", "-m", "demo.bootstrap", "reconcile"],
            env=[_env_var(v) for v in env],
            resources=base.resources(r.resources),
            volume_mounts=[
                tmp.mount(),
                home.mount(),
                k8s.VolumeMount(name="instance", mount_path=instance_mount["mountPath"], sub_path=instance_mount.get("subPath"), read_only=True),
            ],
            security_context=base.container_security(),
        )
        self.cron_job = base.cron_job(
            self, "cronjob",
            name=names.reconcile, lbls=lbls, schedule=r.schedule,
            containers=[main], init_containers=[wait, check, realm],
            volumes=[
                tmp.volume(),
                REALM_STATE.volume(),
                home.volume(),
                k8s.Volume(name="instance", config_map=k8s.ConfigMapVolumeSource(name=instance_config_map)),
            ],
            run_as=base.PROJECT_RUN_AS,
            # One attempt per schedule: the next schedule is the retry.
            backoff_limit=0,
            active_deadline_seconds=r.active_deadline_seconds,
            starting_deadline_seconds=r.starting_deadline_seconds,
            successful_jobs_history_limit=r.successful_jobs_history_limit,
            failed_jobs_history_limit=r.failed_jobs_history_limit,
        )
