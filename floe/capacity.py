"""The node the default profile must fit: the plan's minimum, a Docker Desktop VM with 4 GB.

Figures from the plan and issue 9: of a 4 GB VM, about 3.15 CPU and 3.6 GiB stay allocatable once
kube-system's own pods have their requests (Docker Desktop's default VM is half the host's memory,
so this is the default on an 8 GB laptop). Every pod of the stack must schedule there at once, the
bootstrap Jobs and one reconcile run included, computed as the scheduler does
(floe.deploy.manifests.pod_effective_requests: init containers by their maximum, x replicas).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from floe.deploy.manifests import pods_at_once, pod_effective_requests, pod_spec
from floe.quantities import format_memory

GiB = 2**30


@dataclass(frozen=True)
class Node:
    name: str
    cpu_millicores: int
    memory_bytes: int


DOCKER_DESKTOP_4GB = Node("Docker Desktop with 4 GB (allocatable less kube-system)", 3150, int(3.6 * GiB))


@dataclass(frozen=True)
class Fit:
    node: Node
    cpu_millicores: int
    memory_bytes: int
    pods: tuple[tuple[str, int, int], ...]  # (kind/name x replicas, cpu m, memory bytes)

    @property
    def cpu_headroom(self) -> int:
        return self.node.cpu_millicores - self.cpu_millicores

    @property
    def memory_headroom(self) -> int:
        return self.node.memory_bytes - self.memory_bytes

    @property
    def fits(self) -> bool:
        return self.cpu_headroom >= 0 and self.memory_headroom >= 0

    def summary(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        return (
            f"all pods + Jobs request {self.cpu_millicores}m CPU / {format_memory(self.memory_bytes)}: {verdict} "
            f"{self.node.name} ({self.node.cpu_millicores}m / {format_memory(self.node.memory_bytes)}); "
            f"headroom {self.cpu_headroom}m / {format_memory(abs(self.memory_headroom))}"
            + ("" if self.memory_headroom >= 0 else " short")
        )


def fit(documents: list[dict[str, Any]], node: Node = DOCKER_DESKTOP_4GB) -> Fit:
    """Every pod of ``documents`` at once (a CronJob counts as one running Job)."""
    pods = []
    for doc in documents:
        spec = pod_spec(doc)
        if spec is None:
            continue
        replicas = pods_at_once(doc)
        cpu, mem = pod_effective_requests(spec)
        pods.append((f"{doc['kind']}/{doc['metadata']['name']} x{replicas}", cpu * replicas, mem * replicas))
    return Fit(node, sum(p[1] for p in pods), sum(p[2] for p in pods), tuple(pods))


# --- a multi-node cluster (the cluster profile, issue 11) ---------------------------------------

#: A 4 CPU / 16 GiB node as a pod sees it. Allocatable is less than capacity: kube-reserved and
#: system-reserved (GKE's published formula for 4 cores / 16 GiB reserves 80m and ~2.6 GiB, AKS and
#: EKS are of the same order) plus the hard eviction threshold (100Mi), and every node runs
#: DaemonSets (kube-proxy, the CNI, a log or metrics agent; an ingress-nginx controller may land
#: there too). Taken together, conservatively: 3.5 CPU and 12.5 GiB for our pods.
CLUSTER_NODE = Node("4 CPU / 16 GiB node (allocatable less system reserve and DaemonSets)", 3500, int(12.5 * GiB))


@dataclass(frozen=True)
class PodLoad:
    """One pod to place: its workload, effective requests and hard spread (maxSkew) if any."""

    workload: str
    cpu_millicores: int
    memory_bytes: int
    max_skew: int | None  # DoNotSchedule over kubernetes.io/hostname; None: no hard spread


@dataclass
class Packing:
    nodes: list[Node]
    placed: dict[str, list[PodLoad]]  # node name -> pods
    unplaced: list[PodLoad]

    @property
    def fits(self) -> bool:
        return not self.unplaced

    def free(self, node: Node) -> tuple[int, int]:
        pods = self.placed[node.name]
        return node.cpu_millicores - sum(p.cpu_millicores for p in pods), node.memory_bytes - sum(p.memory_bytes for p in pods)

    def spread_of(self, workload: str) -> dict[str, int]:
        return {n.name: sum(p.workload == workload for p in self.placed[n.name]) for n in self.nodes}

    def summary(self) -> str:
        lines = []
        for node in self.nodes:
            cpu, mem = self.free(node)
            lines.append(f"{node.name}: {len(self.placed[node.name])} pods, free {cpu}m / {format_memory(max(mem, 0))}")
        lines += [f"UNPLACED {p.workload} ({p.cpu_millicores}m / {format_memory(p.memory_bytes)})" for p in self.unplaced]
        return "\n".join(lines)


def _hard_spread(spec: dict[str, Any]) -> int | None:
    """maxSkew of a DoNotSchedule spread over nodes; other topology keys are not modelled here
    (every node is its own domain), ScheduleAnyway is only a preference."""
    for constraint in spec.get("topologySpreadConstraints") or []:
        if constraint.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule":
            if constraint.get("topologyKey") != "kubernetes.io/hostname":
                raise ValueError(f"topologyKey {constraint.get('topologyKey')!r}: only kubernetes.io/hostname is modelled")
            return int(constraint["maxSkew"])
    return None


def pod_loads(documents: list[dict[str, Any]]) -> list[PodLoad]:
    """Every pod of ``documents`` at once: replicas of Deployments and StatefulSets, running Jobs,
    one run of each CronJob; init containers by their maximum (as :func:`fit`)."""
    loads = []
    for doc in documents:
        spec = pod_spec(doc)
        if spec is None:
            continue
        cpu, mem = pod_effective_requests(spec)
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        loads += [PodLoad(name, cpu, mem, _hard_spread(spec)) for _ in range(pods_at_once(doc))]
    return loads


def pack(documents: list[dict[str, Any]], nodes: list[Node]) -> Packing:
    """Place every pod as the scheduler's filters would: a node must have room for the requests,
    and a pod with a hard spread goes only where (its workload's pods on that node + 1) - (the fewest
    on any node) <= maxSkew. Largest pods first; among the allowed nodes, the one with the most free
    memory (the scheduler's spreading scores). A heuristic: "fits" is proof (it found a placement),
    "does not fit" means this order found none."""
    packing = Packing(list(nodes), {n.name: [] for n in nodes}, [])
    order = sorted(pod_loads(documents), key=lambda p: (-p.memory_bytes, -p.cpu_millicores, p.workload))
    for pod in order:
        counts = packing.spread_of(pod.workload)
        floor = min(counts.values()) if counts else 0
        candidates = []
        for node in nodes:
            cpu, mem = packing.free(node)
            if cpu < pod.cpu_millicores or mem < pod.memory_bytes:
                continue
            if pod.max_skew is not None and counts[node.name] + 1 - floor > pod.max_skew:
                continue
            candidates.append((mem, cpu, node.name))
        if not candidates:
            packing.unplaced.append(pod)
            continue
        packing.placed[max(candidates)[2]].append(pod)
    return packing


# --- the one resource total the docs give (docs/quickstart.md, generated; issue 16) ----------------

DOCS_BEGIN = "<!-- resource-totals: generated by `.venv/bin/python -m floe.capacity` from dist/; tests/infra/test_resource_docs.py keeps it true -->"
DOCS_END = "<!-- end resource-totals -->"
JOB_KINDS = ("Job", "CronJob")


def resource_rows(applied: list[dict[str, Any]], verify: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(what, cpu m, memory bytes) for the docs: ``applied`` is what `kubectl apply -f dist/` creates,
    ``verify`` the verification Job's objects (dist/verify/). Requests as the scheduler counts them
    (init containers by their maximum, x replicas): the same figures `make preflight` and
    `floe.deploy resources` print, and the same fit test_resource_fit.py proves."""
    from floe.resources_total import totals

    services = fit([d for d in applied if d.get("kind") not in JOB_KINDS])
    with_jobs = fit(applied)
    everything = fit(applied + verify)
    limits = totals(applied)
    return [
        ("requests of the long-running services", services.cpu_millicores, services.memory_bytes),
        ("requests with the bootstrap Jobs and a reconcile run (`make preflight` compares this with your node)",
         with_jobs.cpu_millicores, with_jobs.memory_bytes),
        ("requests with the verification Job too: every pod at once (`tests/infra/test_resource_fit.py`)",
         everything.cpu_millicores, everything.memory_bytes),
        ("limits of the long-running services (what bursts may reach)", limits.cpu_limit, limits.memory_limit),
        (f"{DOCKER_DESKTOP_4GB.name}: what the stack must fit in", DOCKER_DESKTOP_4GB.cpu_millicores, DOCKER_DESKTOP_4GB.memory_bytes),
    ]


def resource_markdown(applied: list[dict[str, Any]], verify: list[dict[str, Any]]) -> str:
    from floe.deploy.manifests import describe_cpu

    lines = [DOCS_BEGIN, "", "| default profile (`config/local.yaml`) | CPU | memory |", "|---|---|---|"]
    lines += [f"| {what} | {describe_cpu(cpu)} | {format_memory(mem)} |" for what, cpu, mem in resource_rows(applied, verify)]
    return "\n".join([*lines, "", DOCS_END])


def split_documents(file_documents: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(applied, verification Job) from a synth's documents by file (``verify/...`` is never applied)."""
    from floe.deploy.manifests import VERIFY_DIR

    applied = [d for name, docs in file_documents.items() if not name.startswith(f"{VERIFY_DIR}/") for d in docs]
    verify = [d for name, docs in file_documents.items() if name.startswith(f"{VERIFY_DIR}/") for d in docs]
    return applied, verify


if __name__ == "__main__":
    # `.venv/bin/python -m floe.capacity [dist]`: the block docs/quickstart.md holds, from a synthesized dist/.
    import sys
    from pathlib import Path

    from floe.synth import load_file, manifest_files

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "dist")
    if not folder.is_dir():
        sys.exit(f"{folder}/ not found: run `make synth` first")
    by_file = {path.relative_to(folder).as_posix(): load_file(path) for path in manifest_files(folder)}
    print(resource_markdown(*split_documents(by_file)))
