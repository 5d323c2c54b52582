"""Helpers every floe construct shares: labels, probes, resources, security context, env, waiting.

Written once so that every pod in the stack gets the same policy: requests and limits, probes that
detect a failure within :data:`DETECTION_BUDGET_SECONDS`, a restrictive security context, emptyDir for
each writable path, and an init container that waits for what the pod depends on.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field

from cdk8s import Chart

from constructs import k8s, plain

from demo.bootstrap.image import IMAGE_GID, IMAGE_UID
from floe import config_checksum
from floe.config import AvailabilityConfig, Image, Resources, StackConfig

PART_OF = "floe"
LAYER_LABEL = "floe.dev/layer"
#: Selects the pods of objects floe does not apply itself (the k8s run launcher's Jobs), in place of
#: app.kubernetes.io/instance: Argo CD's label tracking owns that key (the Application's name), and
#: an object created at run time that carried the Application's name would be pruned as drift.
STACK_LABEL = "floe.dev/stack"
# Annotations read by the deploy tool (floe.deploy) to build its port-forward table.
PORT_FORWARD_ANNOTATION = "floe.dev/port-forward"
PORT_FORWARD_PORT_ANNOTATION = "floe.dev/port-forward-port"
DESCRIPTION_ANNOTATION = "floe.dev/description"

#: failureThreshold x periodSeconds + timeoutSeconds of liveness/readiness must stay within this.
DETECTION_BUDGET_SECONDS = 30


# --- labels -------------------------------------------------------------------------------------


def selector_labels(name: str) -> dict[str, str]:
    """The labels a Service selects on: stable for the life of the object (never the version)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": PART_OF}


def labels(name: str, *, component: str, layer: str, version: str | None = None) -> dict[str, str]:
    result = {
        **selector_labels(name),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "cdk8s",
        LAYER_LABEL: layer,
    }
    if version:
        result["app.kubernetes.io/version"] = label_value(version)
    return result


def label_value(value: str) -> str:
    """A label-safe form of ``value`` (image tags may hold characters labels don't allow)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in value)[:63]
    return cleaned.strip("-_.") or "unknown"


def meta(name: str, lbls: dict[str, str], annotations: dict[str, str] | None = None) -> k8s.ObjectMeta:
    return k8s.ObjectMeta(name=name, labels=lbls, annotations=annotations or None)


# --- resources and probes -----------------------------------------------------------------------


# Quantity and IntOrString are immutable jsii value objects, and each ``from_*`` is a round trip to
# the jsii node process: one object per distinct value serves every construct (synth time).
@functools.lru_cache(maxsize=None)
def quantity(value: str) -> k8s.Quantity:
    return k8s.Quantity.from_string(value)


@functools.lru_cache(maxsize=None)
def int_or_string(value: int | str) -> k8s.IntOrString:
    return k8s.IntOrString.from_number(value) if isinstance(value, int) else k8s.IntOrString.from_string(value)


def resources(r: Resources) -> k8s.ResourceRequirements:
    return k8s.ResourceRequirements(
        requests={"cpu": quantity(r.cpu_request), "memory": quantity(r.memory_request)},
        limits={"cpu": quantity(r.cpu_limit), "memory": quantity(r.memory_limit)},
    )


@dataclass(frozen=True)
class ProbeTiming:
    period: int
    failure_threshold: int
    timeout: int
    initial_delay: int = 0

    @property
    def detection_seconds(self) -> int:
        return self.failure_threshold * self.period + self.timeout


# Liveness: restart after 2 missed checks 10 s apart (25 s worst case).
LIVENESS = ProbeTiming(period=10, failure_threshold=2, timeout=5)
# Readiness: out of the Service after 3 missed checks 5 s apart (18 s worst case).
READINESS = ProbeTiming(period=5, failure_threshold=3, timeout=3)
# Slow starters (JVMs, migrations): up to 5 minutes before liveness takes over.
STARTUP = ProbeTiming(period=5, failure_threshold=60, timeout=3)
# Exec probes that open a database connection (pg_isready, the daemon's heartbeat query): the same
# 25 s detection, with room for a connect timeout of 3 s. What each exec probe costs per call is
# recorded in floe/probe_costs.py; the "probe-cost" check keeps cost / period well inside the limit.
EXEC_LIVENESS = ProbeTiming(period=10, failure_threshold=2, timeout=5)
EXEC_STARTUP = ProbeTiming(period=10, failure_threshold=30, timeout=5)
assert max(t.detection_seconds for t in (LIVENESS, READINESS, EXEC_LIVENESS)) <= DETECTION_BUDGET_SECONDS


def http_get(path: str, port: int | str, timing: ProbeTiming) -> k8s.Probe:
    return _probe(timing, http_get=k8s.HttpGetAction(path=path, port=_port(port)))


def tcp(port: int | str, timing: ProbeTiming) -> k8s.Probe:
    return _probe(timing, tcp_socket=k8s.TcpSocketAction(port=_port(port)))


def exec_command(command: list[str], timing: ProbeTiming) -> k8s.Probe:
    return _probe(timing, exec=k8s.ExecAction(command=command))


def _port(port: int | str) -> k8s.IntOrString:
    return int_or_string(port)


def _probe(timing: ProbeTiming, **action: object) -> k8s.Probe:
    return k8s.Probe(
        period_seconds=timing.period,
        failure_threshold=timing.failure_threshold,
        timeout_seconds=timing.timeout,
        initial_delay_seconds=timing.initial_delay or None,
        success_threshold=1,
        **action,  # type: ignore[arg-type]
    )


# --- security -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunAs:
    """The identity a pod runs under. Must match the image's user where the image expects one."""

    uid: int
    gid: int
    fs_group: int | None = None


def pod_security(run_as: RunAs, *, fs_group_change_policy: str | None = None) -> k8s.PodSecurityContext:
    """``fs_group_change_policy`` ``OnRootMismatch`` for pods with a PersistentVolume: without it the
    kubelet chowns every file of the volume to the fsGroup on each start (minutes for a large MinIO
    volume); with it only when the volume's root does not match already."""
    return k8s.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=run_as.uid,
        run_as_group=run_as.gid,
        fs_group=run_as.fs_group if run_as.fs_group is not None else run_as.gid,
        fs_group_change_policy=fs_group_change_policy,
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
    )


def container_security(*, read_only_root: bool = True, run_as: RunAs | None = None) -> k8s.SecurityContext:
    """The container's side of the policy; ``run_as`` where one container of a pod must run as
    another identity than the pod's (its image expects that user)."""
    return k8s.SecurityContext(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=read_only_root,
        capabilities=k8s.Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
        run_as_user=run_as.uid if run_as else None,
        run_as_group=run_as.gid if run_as else None,
    )


# --- env ----------------------------------------------------------------------------------------


def env(name: str, value: str | int) -> k8s.EnvVar:
    return k8s.EnvVar(name=name, value=str(value))


def env_secret(name: str, secret: str, key: str) -> k8s.EnvVar:
    return k8s.EnvVar(
        name=name, value_from=k8s.EnvVarSource(secret_key_ref=k8s.SecretKeySelector(name=secret, key=key))
    )


# --- volumes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScratchVolume:
    """An emptyDir mounted at ``path``: every writable path of every pod is one of these."""

    name: str
    path: str
    size_limit: str = "256Mi"

    def volume(self) -> k8s.Volume:
        return k8s.Volume(name=self.name, empty_dir=k8s.EmptyDirVolumeSource(size_limit=quantity(self.size_limit)))

    def mount(self) -> k8s.VolumeMount:
        return k8s.VolumeMount(name=self.name, mount_path=self.path)


@dataclass(frozen=True)
class PersistentVolume:
    """A volumeClaimTemplate mounted at ``path``: the cluster profile's state that survives the pod
    (``Persistence`` in floe/config.py). Only a StatefulSet can carry it."""

    name: str
    path: str
    size: str
    storage_class: str | None = None

    def claim(self, lbls: dict[str, str]) -> k8s.KubePersistentVolumeClaimProps:
        # volumeClaimTemplates are immutable: no version label, or an image upgrade could not be applied.
        stable = {k: v for k, v in lbls.items() if k != "app.kubernetes.io/version"}
        return k8s.KubePersistentVolumeClaimProps(
            metadata=k8s.ObjectMeta(name=self.name, labels=stable),
            spec=k8s.PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                storage_class_name=self.storage_class,
                resources=k8s.ResourceRequirements(requests={"storage": quantity(self.size)}),
            ),
        )

    def mount(self) -> k8s.VolumeMount:
        return k8s.VolumeMount(name=self.name, mount_path=self.path)


@dataclass(frozen=True)
class ConfigFiles:
    """A ConfigMap mounted read-only at ``path`` (optionally just one ``sub_path`` file)."""

    name: str
    config_map: str
    path: str
    sub_path: str | None = None

    def volume(self) -> k8s.Volume:
        return k8s.Volume(name=self.name, config_map=k8s.ConfigMapVolumeSource(name=self.config_map))

    def mount(self) -> k8s.VolumeMount:
        return k8s.VolumeMount(name=self.name, mount_path=self.path, read_only=True, sub_path=self.sub_path)


# --- waiting for dependencies -------------------------------------------------------------------


@dataclass(frozen=True)
class Dependency:
    """A TCP endpoint a pod must reach before its main container starts."""

    host: str
    port: int

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"


def wait_for(dependencies: list[Dependency], *, image: Image) -> k8s.Container:
    """An init container that blocks until every dependency accepts TCP connections.

    Uses bash's /dev/tcp from the given image (the PostgreSQL image: already pulled for the stack,
    so waiting costs no extra image). It loops forever by design: the pod stays in Init with a clear
    log line ("waiting for floe-postgres:5432") instead of crash-looping, and starts as soon as the
    dependency is up, whatever order the objects were applied in.
    """
    checks = " && ".join(f"timeout 2 bash -c '</dev/tcp/{d.host}/{d.port}'" for d in dependencies)
    targets = ", ".join(d.label for d in dependencies)
    script = (
        f"until {checks}; do echo 'waiting for {targets}'; sleep 2; done 2>/dev/null; "
        f"echo 'reached {targets}'"
    )
    return k8s.Container(
        name="wait-for-deps",
        image=image.ref,
        image_pull_policy=image.pull_policy,
        command=["bash", "-c", script],
        resources=resources(Resources(cpu_request="10m", memory_request="16Mi", cpu_limit="100m", memory_limit="64Mi")),
        security_context=container_security(),
    )


# --- workloads ----------------------------------------------------------------------------------


@dataclass
class ServicePort:
    name: str
    port: int
    target_port: int
    # Preferred local port for `make port-forward` (None: not forwarded).
    forward_to: int | None = None


@dataclass
class ExposedService:
    """A Service in front of (some of) a workload's ports."""

    name: str
    ports: list[ServicePort]
    description: str = ""
    headless: bool = False
    # ClusterIP (every Service of the local profile), NodePort or LoadBalancer (cube.sql_service).
    type: str = "ClusterIP"
    # NodePort only: a fixed node port for the first port (None: the API server picks one).
    node_port: int | None = None
    # LoadBalancer only: spec.loadBalancerSourceRanges (empty: unset, every client address).
    load_balancer_source_ranges: tuple[str, ...] = ()


@dataclass
class WorkloadProps:
    name: str
    component: str
    layer: str
    version: str
    containers: list[k8s.Container]
    run_as: RunAs
    init_containers: list[k8s.Container] = field(default_factory=list)
    volumes: list[k8s.Volume] = field(default_factory=list)
    services: list[ExposedService] = field(default_factory=list)
    replicas: int = 1
    # Recreate: a single-replica stateful pod must not overlap with its successor.
    strategy: str = "Recreate"
    enable_service_links: bool = False
    termination_grace_period: int = 30
    # A ServiceAccount whose token the pod mounts (only one bound by a Role we synthesize: the
    # "security" check). None: the namespace's default account, and no token.
    service_account: str | None = None
    # Required when replicas > 1: spread, PodDisruptionBudget and rolling update (see replication).
    availability: AvailabilityConfig | None = None
    # OnRootMismatch where the pod mounts a PersistentVolume (see pod_security).
    fs_group_change_policy: str | None = None


def replicated(props: WorkloadProps) -> bool:
    """More than one pod: spread over nodes, a PodDisruptionBudget, rolling updates."""
    if props.replicas > 1 and props.availability is None:
        raise ValueError(f"{props.name}: {props.replicas} replicas need props.availability (spread and disruption budget)")
    return props.replicas > 1


def topology_spread(props: WorkloadProps) -> list[k8s.TopologySpreadConstraint] | None:
    """One constraint over ``availability.topology_key`` for a replicated workload, None otherwise.

    whenUnsatisfiable and maxSkew come from the config (DoNotSchedule, 1 by default). nodeTaintsPolicy
    Honor: a node the pod does not tolerate (a cordoned node under drain carries
    node.kubernetes.io/unschedulable) is not a domain, so it cannot hold the global minimum at 0 and
    keep an evicted replica Pending (the default, Ignore, counts it)."""
    if not replicated(props):
        return None
    a = props.availability
    assert a is not None
    return [
        k8s.TopologySpreadConstraint(
            max_skew=a.max_skew,
            topology_key=a.topology_key,
            when_unsatisfiable=a.when_unsatisfiable,
            label_selector=k8s.LabelSelector(match_labels=selector_labels(props.name)),
            node_taints_policy="Honor",
        )
    ]


def disruption_budget(scope: plain.Scope, props: WorkloadProps, lbls: dict[str, str]) -> k8s.KubePodDisruptionBudget | None:
    """maxUnavailable 1 for a replicated workload: a drain evicts one pod at a time, and always
    may evict one (minAvailable = replicas would block every voluntary eviction)."""
    if not replicated(props):
        return None
    return plain.api_object(
        k8s.KubePodDisruptionBudget,
        scope,
        "disruption-budget",
        metadata=meta(props.name, lbls),
        spec=k8s.PodDisruptionBudgetSpec(
            max_unavailable=int_or_string(1),
            selector=k8s.LabelSelector(match_labels=selector_labels(props.name)),
        ),
    )


def deployment_strategy(props: WorkloadProps) -> k8s.DeploymentStrategy:
    """``props.strategy`` for one pod; for a replicated Deployment a rolling update that starts one
    new pod before it stops an old one (maxSurge 1, maxUnavailable 0): it never serves with fewer.

    A RollingUpdate always names its ``rollingUpdate``: ``strategy`` has the ``retainKeys`` patch
    strategy, so with ``{type: RollingUpdate}`` alone the API server defaults ``rollingUpdate`` in and
    every ``kubectl apply`` sends ``$retainKeys`` to clear it again (``configured`` on each re-apply;
    tests/infra/test_apply.py). maxSurge 1 / maxUnavailable 0 is what the 25 %/25 % default rounds to
    for one pod, so written out it changes nothing but the noise.
    """
    if not replicated(props) and props.strategy != "RollingUpdate":
        return k8s.DeploymentStrategy(type=props.strategy)
    return k8s.DeploymentStrategy(
        type="RollingUpdate",
        rolling_update=k8s.RollingUpdateDeployment(max_surge=int_or_string(1), max_unavailable=int_or_string(0)),
    )


def pod_spec(props: WorkloadProps) -> k8s.PodSpec:
    return k8s.PodSpec(
        topology_spread_constraints=topology_spread(props),
        containers=props.containers,
        init_containers=props.init_containers or None,
        volumes=props.volumes or None,
        security_context=pod_security(props.run_as, fs_group_change_policy=props.fs_group_change_policy),
        service_account_name=props.service_account,
        automount_service_account_token=props.service_account is not None,
        enable_service_links=props.enable_service_links,
        termination_grace_period_seconds=props.termination_grace_period,
    )


class Workload(plain.PlainConstruct):
    """A Deployment and the Services in front of it, labelled and selected consistently."""

    def __init__(self, scope: plain.Scope, id: str, *, props: WorkloadProps) -> None:
        super().__init__(scope, id)
        pod_labels = labels(props.name, component=props.component, layer=props.layer, version=props.version)
        self.deployment = plain.api_object(
            k8s.KubeDeployment,
            self,
            "deployment",
            metadata=meta(props.name, pod_labels),
            spec=k8s.DeploymentSpec(
                replicas=props.replicas,
                selector=k8s.LabelSelector(match_labels=selector_labels(props.name)),
                strategy=deployment_strategy(props),
                template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(labels=pod_labels), spec=pod_spec(props)),
            ),
        )
        disruption_budget(self, props, pod_labels)
        for service in props.services:
            expose(self, service, selector=selector_labels(props.name), lbls=pod_labels)


class StatefulWorkload(plain.PlainConstruct):
    """A StatefulSet, its governing headless Service and any other Services in front of it.

    Pods get stable DNS names ``<name>-N.<governing service>``. State lives in emptyDirs
    (``props.volumes``), except where the profile asks for persistent storage: then ``volume_claims``
    become volumeClaimTemplates (one PersistentVolumeClaim per pod, mounted by the claim's name).
    ``props.strategy`` is unused.
    """

    def __init__(
        self,
        scope: plain.Scope,
        id: str,
        *,
        props: WorkloadProps,
        governing_service: ExposedService,
        volume_claims: list[k8s.KubePersistentVolumeClaimProps] | None = None,
    ) -> None:
        super().__init__(scope, id)
        if not governing_service.headless:
            raise ValueError(f"governing Service {governing_service.name} of {props.name} must be headless")
        pod_labels = labels(props.name, component=props.component, layer=props.layer, version=props.version)
        self.stateful_set = plain.api_object(
            k8s.KubeStatefulSet,
            self,
            "statefulset",
            metadata=meta(props.name, pod_labels),
            spec=k8s.StatefulSetSpec(
                replicas=props.replicas,
                service_name=governing_service.name,
                # Parallel: members find each other by DNS and retry; ordered start only slows recovery.
                pod_management_policy="Parallel",
                selector=k8s.LabelSelector(match_labels=selector_labels(props.name)),
                template=k8s.PodTemplateSpec(metadata=k8s.ObjectMeta(labels=pod_labels), spec=pod_spec(props)),
                volume_claim_templates=volume_claims or None,
            ),
        )
        disruption_budget(self, props, pod_labels)
        for service in [governing_service, *props.services]:
            expose(self, service, selector=selector_labels(props.name), lbls=pod_labels)


def expose(scope: plain.Scope, service: ExposedService, *, selector: dict[str, str], lbls: dict[str, str]) -> k8s.KubeService:
    annotations: dict[str, str] = {}
    if service.description:
        annotations[DESCRIPTION_ANNOTATION] = service.description
    forwarded = [p for p in service.ports if p.forward_to is not None]
    if forwarded:
        # One forwarded port per Service keeps `make port-forward` one line per UI.
        annotations[PORT_FORWARD_ANNOTATION] = str(forwarded[0].forward_to)
        annotations[PORT_FORWARD_PORT_ANNOTATION] = forwarded[0].name
    return plain.api_object(
        k8s.KubeService,
        scope,
        f"service-{service.name}",
        metadata=meta(service.name, lbls, annotations),
        spec=k8s.ServiceSpec(
            type=service.type,
            cluster_ip="None" if service.headless else None,
            load_balancer_source_ranges=list(service.load_balancer_source_ranges) or None,
            selector=selector,
            ports=[
                k8s.ServicePort(
                    name=p.name,
                    port=p.port,
                    target_port=int_or_string(p.target_port),
                    protocol="TCP",
                    node_port=service.node_port if i == 0 and service.type == "NodePort" else None,
                )
                for i, p in enumerate(service.ports)
            ],
        ),
    )


def container_ports(ports: dict[str, int]) -> list[k8s.ContainerPort]:
    return [k8s.ContainerPort(name=name, container_port=port, protocol="TCP") for name, port in ports.items()]


def config_map(scope: plain.Scope, id: str, *, name: str, lbls: dict[str, str], data: dict[str, str]) -> k8s.KubeConfigMap:
    return plain.api_object(k8s.KubeConfigMap, scope, id, metadata=meta(name, lbls), data=data)


def secret(scope: plain.Scope, id: str, *, name: str, lbls: dict[str, str], data: dict[str, str]) -> k8s.KubeSecret:
    """A Secret written as base64 ``data``, never ``stringData``.

    ``stringData`` is write-only: the API server folds it into ``data`` and never returns it, so
    client-side ``kubectl apply`` sees it missing from the live object and reports the Secret
    ``configured`` on every re-apply of an unchanged ``dist/``. ``data`` round-trips unchanged.
    """
    encoded = {key: base64.b64encode(value.encode()).decode("ascii") for key, value in data.items()}
    return plain.api_object(k8s.KubeSecret, scope, id, metadata=meta(name, lbls), type="Opaque", data=encoded)


#: Bootstrap Jobs have no activeDeadlineSeconds: it counts from the Job's start, image pulls included,
#: so a slow first pull of the project image (or of PostgreSQL and Polaris, which the step waits for)
#: ended in DeadlineExceeded, and since the Job's name is a digest of its content the next deploy
#: re-applied the same failed Job: stuck for good. Nothing needs the deadline to end a hang: the wait
#: container only waits for TCP, each step bounds its own wait (wait_timeout_seconds, 300 s) and
#: requests, and backoffLimit bounds the retries (an image that cannot be pulled fails no Job; the
#: deploy tool reports ImagePullBackOff). The reconcile CronJob runs the same steps again anyway.
JOB_ACTIVE_DEADLINE_SECONDS: int | None = None
#: A finished Job is deleted this long after it ends (batch/v1 ttlSecondsAfterFinished), so the Jobs
#: of earlier configs (other names, see job_name) do not pile up. One day: `make status` can still
#: show the deploy's Jobs; re-applying an unchanged dist/ within that day changes nothing, and after
#: it re-creates the Job, which re-runs its idempotent step.
JOB_TTL_SECONDS_AFTER_FINISHED = 86_400
#: Label holding a Job's name without its content suffix: how tools and tests find "the" bucket Job.
JOB_BASE_NAME_LABEL = "app.kubernetes.io/name"


def job_name(name: str, spec: k8s.JobSpec) -> str:
    """``<name>-<8 hex>``: the name carries a digest of the Job's spec.

    A Job's pod template is immutable, so a plain ``kubectl apply -f dist/`` of a changed template
    fails ("field is immutable"). With the digest in the name, a changed Job is a new object
    (created, and run) and an unchanged one keeps its name (``unchanged``): re-applying is safe by
    construction, with no delete-and-retry in any tool. :func:`add_config_checksums` names every Job
    again once its template carries the config checksum, so the digest covers what it consumes too.
    """
    return config_checksum.job_name(name, plain.to_json(spec))


# --- config checksums ---------------------------------------------------------------------------

_POD_OWNERS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "PodTemplate"}


def _template_pointer(kind: str) -> str:
    return {"PodTemplate": "/template", "CronJob": "/spec/jobTemplate/spec/template"}.get(kind, "/spec/template")


def add_config_checksums(charts: list[Chart]) -> None:
    """Put :data:`floe.config_checksum.ANNOTATION` on every pod template that reads a ConfigMap or
    Secret: a digest of exactly the keys it consumes (floe/config_checksum.py), so a content change
    rolls exactly the pods that read it. Called once, after every object of the app exists (it reads
    the objects of all charts); Jobs are named again over their final spec (:func:`job_name`), so a
    Job whose consumed config changed is a new Job, which runs.
    """
    # The documents kept beside the objects (constructs/plain.py): no serialization of the app in node.
    objects_of = {id(chart): plain.objects(chart) for chart in charts}
    objects = config_checksum.index([doc for found in objects_of.values() for _, doc in found])
    for chart in charts:
        # The ApiObjects of the chart's whole tree (nested constructs too) and their documents.
        for api_object, doc in objects_of[id(chart)]:
            if doc.get("kind") not in _POD_OWNERS:
                continue
            template = config_checksum.template_of(doc)
            value = config_checksum.digest(template.get("spec") or {}, objects)
            if value is not None:
                annotations = (template.get("metadata") or {}).get("annotations")
                pointer = f"{_template_pointer(doc['kind'])}/metadata/annotations"
                escaped = config_checksum.ANNOTATION.replace("~", "~0").replace("/", "~1")
                if annotations is None:
                    plain.patch(api_object, ("add", pointer, {config_checksum.ANNOTATION: value}))
                else:
                    plain.patch(api_object, ("add", f"{pointer}/{escaped}", value))
                template.setdefault("metadata", {}).setdefault("annotations", {})[config_checksum.ANNOTATION] = value
            if doc["kind"] == "Job":
                base_name = (doc["metadata"].get("labels") or {}).get(JOB_BASE_NAME_LABEL, doc["metadata"]["name"])
                plain.patch(api_object, ("replace", "/metadata/name", config_checksum.job_name(base_name, doc["spec"])))


def cron_job(
    scope: plain.Scope,
    id: str,
    *,
    name: str,
    lbls: dict[str, str],
    schedule: str,
    containers: list[k8s.Container],
    init_containers: list[k8s.Container],
    volumes: list[k8s.Volume],
    run_as: RunAs,
    backoff_limit: int,
    active_deadline_seconds: int,
    starting_deadline_seconds: int,
    successful_jobs_history_limit: int,
    failed_jobs_history_limit: int,
) -> k8s.KubeCronJob:
    """A CronJob of the stack: UTC schedule, never two runs at once, pods that run once
    (``restart_policy: Never``: the Job's backoff or the next schedule is the retry) under ``run_as``,
    with no API token and no service links."""
    return plain.api_object(
        k8s.KubeCronJob,
        scope,
        id,
        metadata=meta(name, lbls),
        spec=k8s.CronJobSpec(
            schedule=schedule,
            time_zone="Etc/UTC",
            concurrency_policy="Forbid",
            starting_deadline_seconds=starting_deadline_seconds,
            successful_jobs_history_limit=successful_jobs_history_limit,
            failed_jobs_history_limit=failed_jobs_history_limit,
            job_template=k8s.JobTemplateSpec(
                metadata=k8s.ObjectMeta(labels=lbls),
                spec=k8s.JobSpec(
                    backoff_limit=backoff_limit,
                    active_deadline_seconds=active_deadline_seconds,
                    template=k8s.PodTemplateSpec(
                        metadata=k8s.ObjectMeta(labels=lbls),
                        spec=k8s.PodSpec(
                            restart_policy="Never",
                            containers=containers,
                            init_containers=init_containers,
                            volumes=volumes,
                            security_context=pod_security(run_as),
                            automount_service_account_token=False,
                            enable_service_links=False,
                        ),
                    ),
                ),
            ),
        ),
    )


def job(
    scope: plain.Scope,
    id: str,
    *,
    name: str,
    lbls: dict[str, str],
    container: k8s.Container,
    run_as: RunAs,
    init_containers: list[k8s.Container] | None = None,
    volumes: list[k8s.Volume] | None = None,
    backoff_limit: int = 20,
    active_deadline_seconds: int | None = JOB_ACTIVE_DEADLINE_SECONDS,
    restart_policy: str = "OnFailure",
    ttl_seconds_after_finished: int = JOB_TTL_SECONDS_AFTER_FINISHED,
) -> k8s.KubeJob:
    """A bootstrap Job: idempotent by contract, retried (with backoff) until its dependency is up,
    named after its content (:func:`job_name`) and removed a day after it finishes (by default)."""
    spec = k8s.JobSpec(
        backoff_limit=backoff_limit,
        active_deadline_seconds=active_deadline_seconds,
        ttl_seconds_after_finished=ttl_seconds_after_finished,
        template=k8s.PodTemplateSpec(
            metadata=k8s.ObjectMeta(labels=lbls),
            spec=k8s.PodSpec(
                restart_policy=restart_policy,
                containers=[container],
                init_containers=init_containers or None,
                volumes=volumes or None,
                security_context=pod_security(run_as),
                automount_service_account_token=False,
                enable_service_links=False,
            ),
        ),
    )
    if lbls.get(JOB_BASE_NAME_LABEL) != name:
        raise ValueError(f"Job {name}: label {JOB_BASE_NAME_LABEL} must be its base name")
    return plain.api_object(k8s.KubeJob, scope, id, metadata=meta(job_name(name, spec), lbls), spec=spec)


def bootstrap_job(
    scope: plain.Scope,
    id: str,
    *,
    config: StackConfig,
    layer: str,
    name: str,
    step: str,
    container_name: str,
    env: list[k8s.EnvVar],
    depends_on: Dependency,
) -> k8s.KubeJob:
    """A Job running ``python -m demo.bootstrap <step>`` from the project image, as the image's
    user, once ``depends_on`` accepts connections; the step itself waits for real readiness."""
    tmp = ScratchVolume("tmp", "/tmp", size_limit="64Mi")
    container = k8s.Container(
        name=container_name,
        **image_fields(config.project_image),
        command=["python", "-m", "demo.bootstrap", step],
        env=env,
        resources=resources(config.bootstrap_resources),
        volume_mounts=[tmp.mount()],
        security_context=container_security(),
    )
    return job(
        scope,
        id,
        name=name,
        lbls=labels(name, component="bootstrap", layer=layer, version=config.project_image.tag),
        container=container,
        run_as=PROJECT_RUN_AS,
        init_containers=[wait_for([depends_on], image=config.postgres.image)],
        volumes=[tmp.volume()],
    )


def image_fields(image: Image) -> dict[str, str]:
    return {"image": image.ref, "image_pull_policy": image.pull_policy}



#: The project image's user (Dockerfile, via demo.bootstrap.image): bootstrap Jobs and Dagster run as it.
PROJECT_RUN_AS = RunAs(uid=IMAGE_UID, gid=IMAGE_GID)
