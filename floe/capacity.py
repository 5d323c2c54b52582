"""The node the default profile must fit: the plan's minimum, a Docker Desktop VM with 4 GB.

Figures from the plan and issue 9: of a 4 GB VM, about 3.15 CPU and 3.6 GiB stay allocatable once
kube-system's own pods have their requests (Docker Desktop's default VM is half the host's memory,
so this is the default on an 8 GB laptop). Every pod of the stack must schedule there at once, the
bootstrap Jobs and one reconcile run included, computed as the scheduler does
(floe.deploy.manifests.pod_effective_requests: init containers by their maximum, x replicas).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floe.deploy.manifests import _replicas, pod_effective_requests, pod_spec
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
        replicas = _replicas(doc)
        cpu, mem = pod_effective_requests(spec)
        pods.append((f"{doc['kind']}/{doc['metadata']['name']} x{replicas}", cpu * replicas, mem * replicas))
    return Fit(node, sum(p[1] for p in pods), sum(p[2] for p in pods), tuple(pods))


def load_all(dist: Path) -> list[dict[str, Any]]:
    """Every object under ``dist/``, subfolders included (the verification Job lives in one)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for path in sorted(dist.rglob("*.yaml")) for d in yaml.load_all(path.read_text(), Loader=loader) if d]
