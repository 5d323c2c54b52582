"""Totals of CPU/memory requests and limits over synthesized manifests."""

from __future__ import annotations

from dataclasses import dataclass

from floe.quantities import cpu_millicores, memory_bytes

LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}


@dataclass
class Totals:
    cpu_request: int = 0  # millicores
    memory_request: int = 0  # bytes
    cpu_limit: int = 0
    memory_limit: int = 0
    containers: int = 0


def pod_templates(documents: list[dict], kinds: set[str] = LONG_RUNNING) -> list[tuple[dict, dict, int]]:
    """(object, pod spec, replicas) for every workload of the given kinds."""
    found = []
    for doc in documents:
        if doc.get("kind") in kinds:
            spec = doc["spec"]
            found.append((doc, spec["template"]["spec"], int(spec.get("replicas", 1))))
    return found


def totals(documents: list[dict], kinds: set[str] = LONG_RUNNING) -> Totals:
    """Sum over the main containers of long-running workloads, times their replicas.

    Init containers run before the main ones and their requests never add to a running pod's
    (Kubernetes takes the max of init vs. sum of main), so the steady state is the main containers.
    """
    t = Totals()
    for _, pod, replicas in pod_templates(documents, kinds):
        for container in pod["containers"]:
            res = container.get("resources", {})
            req, lim = res.get("requests", {}), res.get("limits", {})
            t.cpu_request += replicas * cpu_millicores(req.get("cpu", "0"))
            t.memory_request += replicas * memory_bytes(req.get("memory", "0"))
            t.cpu_limit += replicas * cpu_millicores(lim.get("cpu", "0"))
            t.memory_limit += replicas * memory_bytes(lim.get("memory", "0"))
            t.containers += replicas
    return t
