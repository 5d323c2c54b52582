"""What the synthesized manifests in ``dist/`` say: phases, namespace, images, forwards, resources, probes.

Everything the deploy tool needs to know about the stack is read from ``dist/`` (the lead's cdk8s
output), never duplicated: one file per chart, ``NNNN-<chart>.k8s.yaml``, applied in byte order, each
object labelled ``floe.dev/layer: <chart>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from floe.quantities import cpu_millicores, format_cpu, memory_bytes

LAYER_LABEL = "floe.dev/layer"
PART_OF_LABEL = "app.kubernetes.io/part-of"
PORT_FORWARD_ANNOTATION = "floe.dev/port-forward"
PORT_FORWARD_PORT_ANNOTATION = "floe.dev/port-forward-port"
DESCRIPTION_ANNOTATION = "floe.dev/description"
DEFAULT_NAMESPACE = "floe"
#: The verification Job's chart lives in ``dist/verify/verify.k8s.yaml``: ``kubectl apply -f dist/``
#: does not recurse, so a deploy never starts it; ``floe.deploy verify`` creates a run of it.
VERIFY_CHART = "verify"
VERIFY_DIR = "verify"
VERIFY_FILE = "verify.k8s.yaml"

# The verification Job's template (constructs/verify.py makes it; floe/deploy/verify.py runs it):
# here, not in floe/deploy/verify.py, so the synth imports none of the deploy tool.
#: What the Job runs (the project image's Python); ``args`` are :func:`verify_args`.
VERIFY_COMMAND = ("python", "-m", "demo.verify")
VERIFY_CONTAINER = "verify"
#: The verifier's own bound when ``--timeout`` is not given (it checks its checks' deadlines).
DEFAULT_TIMEOUT_SECONDS = 600
#: What the Job may spend before the verifier's clock starts (scheduling, image pull, start-up):
#: its activeDeadlineSeconds is the run's timeout plus this.
START_ALLOWANCE_SECONDS = 180
#: A finished Job (and its pod's log) is deleted an hour later; the report is kept in the ConfigMap.
TTL_SECONDS_AFTER_FINISHED = 3600


def verify_args(*, timeout: float, trigger: bool) -> list[str]:
    return ["--timeout", str(int(timeout)), *(["--trigger"] if trigger else [])]


# Kinds the tool waits for, in the order a person reads them.
WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet", "Job")
_FILE_NAME = re.compile(r"^(?:\d+-)?(?P<chart>.+?)\.k8s\.ya?ml$")


def describe_cpu(millicores: int) -> str:
    """``"2 CPU"`` / ``"250m CPU"``: floe.quantities.format_cpu names whole cores only."""
    text = format_cpu(millicores)
    return text if text.endswith("CPU") else f"{text} CPU"


class ManifestError(Exception):
    """``dist/`` is missing, empty or not what the deploy tool expects; the message says what to run."""


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


@dataclass(frozen=True)
class Phase:
    """One chart of ``dist/``: the files to apply and the workloads to wait for before the next one."""

    name: str
    files: tuple[Path, ...]
    objects: tuple[dict[str, Any], ...]

    @property
    def workloads(self) -> list[ObjectRef]:
        refs = [ObjectRef(o["kind"], o["metadata"]["name"]) for o in self.objects if o.get("kind") in WORKLOAD_KINDS]
        return sorted(refs, key=lambda r: (WORKLOAD_KINDS.index(r.kind), r.name))


@dataclass(frozen=True)
class PortForwardSpec:
    """A Service the port-forward command exposes, from its ``floe.dev/port-forward*`` annotations."""

    service: str
    service_port: int
    preferred_local_port: int
    description: str
    port_name: str | None = None

    @property
    def key(self) -> str:
        return f"{self.service}:{self.service_port}"


@dataclass(frozen=True)
class ContainerResources:
    workload: ObjectRef
    container: str
    replicas: int
    cpu_request_m: int
    memory_request: int
    cpu_limit_m: int | None
    memory_limit: int | None
    run_to_completion: bool  # a Job's container: holds its requests only while the Job runs


@dataclass(frozen=True)
class ResourceTotals:
    """Requests/limits summed over containers x replicas (pods' effective requests)."""

    rows: tuple[ContainerResources, ...] = field(default=())

    def _sum(self, attr: str, jobs: bool | None) -> int:
        total = 0
        for row in self.rows:
            if jobs is not None and row.run_to_completion != jobs:
                continue
            value = getattr(row, attr)
            total += (value or 0) * row.replicas
        return total

    @property
    def cpu_request_m(self) -> int:
        """Long-running workloads only: what must fit once the Jobs are done."""
        return self._sum("cpu_request_m", jobs=False)

    @property
    def memory_request(self) -> int:
        return self._sum("memory_request", jobs=False)

    @property
    def peak_cpu_request_m(self) -> int:
        """Long-running workloads plus every Job pod at once (the worst case while a phase starts)."""
        return self._sum("cpu_request_m", jobs=None)

    @property
    def peak_memory_request(self) -> int:
        return self._sum("memory_request", jobs=None)

    @property
    def cpu_limit_m(self) -> int:
        return self._sum("cpu_limit_m", jobs=False)

    @property
    def memory_limit(self) -> int:
        return self._sum("memory_limit", jobs=False)

    @property
    def unlimited_containers(self) -> list[str]:
        return [f"{r.workload}/{r.container}" for r in self.rows if r.memory_limit is None]


@dataclass(frozen=True)
class ProbeSpec:
    """One probe with Kubernetes' defaults filled in (core/v1 Probe: period 10, timeout 1, failure 3)."""

    kind: str  # startup | liveness | readiness
    handler: str  # httpGet | tcpSocket | exec | grpc
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_manifest(cls, kind: str, probe: dict[str, Any]) -> ProbeSpec:
        handler = next((h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in probe), "unknown")
        return cls(
            kind=kind,
            handler=handler,
            initial_delay_seconds=int(probe.get("initialDelaySeconds", 0)),
            period_seconds=int(probe.get("periodSeconds", 10)),
            timeout_seconds=int(probe.get("timeoutSeconds", 1)),
            failure_threshold=int(probe.get("failureThreshold", 3)),
        )

    @property
    def seconds_to_fail(self) -> int:
        """Worst case from the first probe to the kubelet acting: failureThreshold consecutive failures,
        the last one only counted once its timeout expires."""
        return self.initial_delay_seconds + (self.failure_threshold - 1) * self.period_seconds + self.timeout_seconds


@dataclass(frozen=True)
class ContainerProbes:
    workload: ObjectRef
    container: str
    probes: tuple[ProbeSpec, ...]

    def get(self, kind: str) -> ProbeSpec | None:
        return next((p for p in self.probes if p.kind == kind), None)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return (spec.get("template") or {}).get("spec")
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec")
    if kind == "Pod":
        return spec
    return None


def pods_at_once(obj: dict[str, Any]) -> int:
    spec = obj.get("spec") or {}
    if obj["kind"] in ("Deployment", "StatefulSet", "ReplicaSet"):
        return int(spec.get("replicas", 1))
    if obj["kind"] in ("Job", "CronJob"):
        # Pods running at once: parallelism (default 1), never more than completions; a CronJob runs
        # one Job at a time here (concurrencyPolicy Forbid), with its template's parallelism.
        job = ((spec.get("jobTemplate") or {}).get("spec") or {}) if obj["kind"] == "CronJob" else spec
        parallelism = int(job.get("parallelism", 1))
        completions = job.get("completions")
        return min(parallelism, int(completions)) if completions is not None else parallelism
    return 1  # DaemonSet on a single-node cluster, a bare Pod, a PodTemplate


def _requests(container: dict[str, Any]) -> tuple[int, int, int | None, int | None]:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    # A limit without a request makes the request equal to the limit (core/v1 ResourceRequirements).
    cpu_req = requests.get("cpu", limits.get("cpu"))
    mem_req = requests.get("memory", limits.get("memory"))
    return (
        cpu_millicores(cpu_req) if cpu_req is not None else 0,
        memory_bytes(mem_req) if mem_req is not None else 0,
        cpu_millicores(limits["cpu"]) if "cpu" in limits else None,
        memory_bytes(limits["memory"]) if "memory" in limits else None,
    )


def pod_effective_requests(spec: dict[str, Any]) -> tuple[int, int]:
    """(cpu millicores, memory bytes) the scheduler reserves for a pod: max(sum of app containers and
    sidecars, largest regular init container), per the Kubernetes 'Resource sharing within containers'
    rules (init containers run one at a time; restartPolicy: Always init containers are sidecars)."""
    cpu = mem = 0
    init_cpu = init_mem = 0
    for container in spec.get("initContainers") or []:
        c, m, _, _ = _requests(container)
        if container.get("restartPolicy") == "Always":
            cpu, mem = cpu + c, mem + m
        else:
            init_cpu, init_mem = max(init_cpu, c + cpu), max(init_mem, m + mem)
    for container in spec.get("containers") or []:
        c, m, _, _ = _requests(container)
        cpu, mem = cpu + c, mem + m
    overhead = spec.get("overhead") or {}
    cpu += cpu_millicores(overhead["cpu"]) if "cpu" in overhead else 0
    mem += memory_bytes(overhead["memory"]) if "memory" in overhead else 0
    return max(cpu, init_cpu), max(mem, init_mem)


@dataclass(frozen=True)
class Stack:
    """The parsed contents of ``dist/``."""

    dist: Path
    phases: tuple[Phase, ...]

    @classmethod
    def load(cls, dist: Path) -> Stack:
        if not dist.is_dir():
            raise ManifestError(f"{dist}/ does not exist: synthesize first (`.venv/bin/python main.py` or `make synth`)")
        files = sorted(p for p in dist.iterdir() if _FILE_NAME.match(p.name))  # byte order, like kubectl apply -f dir/
        if not files:
            raise ManifestError(f"{dist}/ holds no *.k8s.yaml files: synthesize first")
        phases: list[Phase] = []
        for path in files:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
            layers = {(d.get("metadata", {}).get("labels") or {}).get(LAYER_LABEL) for d in docs} - {None}
            chart = _FILE_NAME.match(path.name)["chart"]  # type: ignore[index]
            if len(layers) > 1:
                raise ManifestError(f"{path.name} mixes layers {sorted(layers)}: one chart per layer expected")
            name = layers.pop() if layers else chart
            if phases and phases[-1].name == name:
                last = phases.pop()
                phases.append(Phase(name, last.files + (path,), last.objects + tuple(docs)))
            else:
                phases.append(Phase(name, (path,), tuple(docs)))
        names = [p.name for p in phases]
        if len(set(names)) != len(names):
            raise ManifestError(f"layers appear in non-adjacent files: {names}")
        return cls(dist=dist, phases=tuple(phases))

    # --- selection -------------------------------------------------------------------------------
    @property
    def phase_names(self) -> list[str]:
        return [p.name for p in self.phases]

    def select(self, names: Iterable[str] | None) -> list[Phase]:
        """The phases named, in apply order (the order given is irrelevant); all when ``names`` is None."""
        if names is None:
            return list(self.phases)
        wanted = list(dict.fromkeys(names))
        unknown = [n for n in wanted if n not in self.phase_names]
        if unknown:
            raise ManifestError(f"unknown phase(s) {unknown}; {self.dist}/ has {self.phase_names}")
        return [p for p in self.phases if p.name in wanted]

    def objects(self, phases: Iterable[Phase] | None = None) -> Iterator[dict[str, Any]]:
        for phase in self.phases if phases is None else phases:
            yield from phase.objects

    # --- facts -----------------------------------------------------------------------------------
    @property
    def namespace(self) -> str:
        """The Namespace object's name; else the namespace most objects are in; else ``floe``."""
        for obj in self.objects():
            if obj.get("kind") == "Namespace":
                return obj["metadata"]["name"]
        counts: dict[str, int] = {}
        for obj in self.objects():
            ns = obj.get("metadata", {}).get("namespace")
            if ns:
                counts[ns] = counts.get(ns, 0) + 1
        return max(counts, key=counts.__getitem__) if counts else DEFAULT_NAMESPACE

    @property
    def namespace_object(self) -> dict[str, Any] | None:
        return next((o for o in self.objects() if o.get("kind") == "Namespace"), None)

    def images(self, phases: Iterable[Phase] | None = None) -> dict[str, str]:
        """image -> imagePullPolicy as written (empty when unset) for every container."""
        found: dict[str, str] = {}
        for obj in self.objects(phases):
            spec = pod_spec(obj)
            for container in (spec or {}).get("initContainers", []) + (spec or {}).get("containers", []):
                found.setdefault(container["image"], container.get("imagePullPolicy", ""))
        return found

    def port_forwards(self, phases: Iterable[Phase] | None = None) -> list[PortForwardSpec]:
        specs: list[PortForwardSpec] = []
        for obj in self.objects(phases):
            if obj.get("kind") != "Service":
                continue
            annotations = obj["metadata"].get("annotations") or {}
            if PORT_FORWARD_ANNOTATION not in annotations:
                continue
            name = obj["metadata"]["name"]
            ports = obj.get("spec", {}).get("ports") or []
            wanted = annotations.get(PORT_FORWARD_PORT_ANNOTATION)
            port = _service_port(ports, wanted)
            if port is None:
                raise ManifestError(
                    f"Service {name}: {PORT_FORWARD_PORT_ANNOTATION}={wanted!r} names no port of {[p.get('name') or p['port'] for p in ports]}"
                )
            specs.append(
                PortForwardSpec(
                    service=name,
                    service_port=int(port["port"]),
                    preferred_local_port=int(annotations[PORT_FORWARD_ANNOTATION]),
                    description=annotations.get(DESCRIPTION_ANNOTATION, name),
                    port_name=port.get("name"),
                )
            )
        return sorted(specs, key=lambda s: s.preferred_local_port)

    def secrets(self) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.objects() if o.get("kind") == "Secret")

    def resource_totals(self, phases: Iterable[Phase] | None = None) -> ResourceTotals:
        rows: list[ContainerResources] = []
        for obj in self.objects(phases):
            spec = pod_spec(obj)
            if spec is None:
                continue
            ref = ObjectRef(obj["kind"], obj["metadata"]["name"])
            replicas = pods_at_once(obj)
            for container in spec.get("containers") or []:
                c, m, cl, ml = _requests(container)
                rows.append(ContainerResources(ref, container["name"], replicas, c, m, cl, ml, obj["kind"] in ("Job", "CronJob")))
        return ResourceTotals(tuple(rows))

    def pod_requests(self, phases: Iterable[Phase] | None = None, *, include_jobs: bool) -> tuple[int, int]:
        """Effective (cpu m, memory bytes) the scheduler must find for all pods x replicas."""
        cpu = mem = 0
        for obj in self.objects(phases):
            spec = pod_spec(obj)
            if spec is None or (not include_jobs and obj["kind"] in ("Job", "CronJob")):
                continue
            c, m = pod_effective_requests(spec)
            cpu, mem = cpu + c * pods_at_once(obj), mem + m * pods_at_once(obj)
        return cpu, mem

    def probes(self) -> list[ContainerProbes]:
        found: list[ContainerProbes] = []
        for obj in self.objects():
            spec = pod_spec(obj)
            if spec is None:
                continue
            ref = ObjectRef(obj["kind"], obj["metadata"]["name"])
            for container in spec.get("containers") or []:
                probes = tuple(
                    ProbeSpec.from_manifest(kind, container[f"{kind}Probe"])
                    for kind in ("startup", "liveness", "readiness")
                    if container.get(f"{kind}Probe")
                )
                found.append(ContainerProbes(ref, container["name"], probes))
        return found


def _service_port(ports: list[dict[str, Any]], wanted: str | None) -> dict[str, Any] | None:
    if wanted is None:
        return ports[0] if len(ports) == 1 else None
    for port in ports:
        if port.get("name") == wanted or str(port.get("port")) == str(wanted):
            return port
    return None
