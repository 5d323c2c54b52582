"""Which local Kubernetes distribution a context points at, and how the project image gets into it.

:func:`detect` is pure: it reads what ``kubectl config view --minify -o json`` and ``kubectl get nodes
-o json`` returned. The node is the stronger signal (labels, providerID, nodeInfo, name); the context
(name, server, cluster/user entries and minikube's kubeconfig extension) is the fallback when the
node could not be read. Where each rule comes from (upstream source or docs):

=================  ==========================================================================================
distribution       signals
=================  ==========================================================================================
Docker Desktop     context/cluster/user ``docker-desktop``, server ``https://kubernetes.docker.internal:6443``;
                   node ``docker-desktop`` with the kubeadm provisioner, ``desktop-control-plane`` (and
                   ``desktop-worker…``) with the kind provisioner (docs.docker.com "Deploy on Kubernetes with
                   Docker Desktop": `kubectl get nodes` output and the "Cluster provisioning method" table)
kind               context/cluster/user ``kind-<cluster>``; node ``<cluster>-control-plane`` with
                   ``spec.providerID: kind://<provider>/<cluster>/<node>`` (kubernetes-sigs/kind
                   pkg/cluster/internal/kubeadm/config.go: ``provider-id: "kind://{{.NodeProvider}}/
                   {{.ClusterName}}/{{.NodeName}}"``)
k3d                context/cluster ``k3d-<cluster>``, user ``admin@k3d-<cluster>`` (k3d-io/k3d
                   pkg/client/kubeconfig.go); node ``k3d-<cluster>-server-0`` / ``-agent-N``, a k3s kubelet
                   (``v1.x.y+k3s1``) and ``providerID: k3s://<node>``
minikube           node label ``minikube.k8s.io/name=<profile>`` (minikube labels every node with it, next to
                   ``minikube.k8s.io/primary``/``version``/``commit``); kubeconfig cluster and context
                   extension ``provider: minikube.sigs.k8s.io``; context = profile name
OrbStack           context ``orbstack``, server ``https://127.0.0.1:26443``; node ``orbstack``, kubelet
                   ``v1.x.y+orb1``, osImage ``OrbStack`` (docs.orbstack.dev/kubernetes; `kubectl get nodes -o
                   wide` output)
Rancher Desktop    context ``rancher-desktop``; node ``lima-rancher-desktop`` (macOS/Linux, a Lima VM) with a
                   k3s kubelet; containerRuntimeVersion ``docker://…`` with the dockerd (moby) engine (k3s
                   ``--docker``), ``containerd://…`` with containerd (rancher-desktop issue #3286;
                   docs.rancherdesktop.io "Container Engine")
=================  ==========================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Distribution(StrEnum):
    DOCKER_DESKTOP = "Docker Desktop"
    KIND = "kind"
    K3D = "k3d"
    MINIKUBE = "minikube"
    ORBSTACK = "OrbStack"
    RANCHER_DESKTOP = "Rancher Desktop"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Detected:
    distribution: Distribution
    # kind/k3d cluster name, minikube profile; None where the tool has one cluster only.
    cluster: str | None = None
    # "docker" or "containerd", from the node's containerRuntimeVersion ("docker://28.3.2").
    runtime: str | None = None
    # Docker Desktop: "kubeadm" or "kind" provisioner.
    variant: str | None = None
    # What decided it, for the preflight line.
    evidence: str = ""

    def describe(self) -> str:
        if self.distribution is Distribution.UNKNOWN:
            return "unknown distribution"
        parts = [str(self.distribution)]
        if self.variant:
            parts.append(f"{self.variant} provisioner")
        if self.cluster:
            parts.append(f"{'profile' if self.distribution is Distribution.MINIKUBE else 'cluster'} {self.cluster}")
        if self.runtime:
            parts.append(f"{self.runtime} runtime")
        return f"{parts[0]} ({', '.join(parts[1:])})" if len(parts) > 1 else parts[0]


MINIKUBE_NAME_LABEL = "minikube.k8s.io/name"
MINIKUBE_PROVIDER = "minikube.sigs.k8s.io"
_KIND_PROVIDER_ID = re.compile(r"^kind://[^/]+/(?P<cluster>[^/]+)/")
_K3D_NODE = re.compile(r"^k3d-(?P<cluster>.+)-(?:server|agent)-\d+$")
_DESKTOP_KIND_NODE = re.compile(r"^desktop-(?:control-plane\d*|worker\d*)$")
_KIND_NODE = re.compile(r"^(?P<cluster>.+)-(?:control-plane|worker)\d*$")


@dataclass(frozen=True)
class KubeContext:
    """The parts of ``kubectl config view --minify -o json`` that tell a distribution apart."""

    name: str | None
    server: str | None = None
    cluster: str | None = None
    user: str | None = None
    providers: tuple[str, ...] = ()

    @classmethod
    def from_config_view(cls, view: Mapping[str, Any] | None, context: str | None = None) -> "KubeContext":
        view = view or {}
        name = context or view.get("current-context") or None
        ctx = next((c.get("context") or {} for c in view.get("contexts") or [] if c.get("name") == name), None)
        if ctx is None:
            ctx = ((view.get("contexts") or [{}])[0] or {}).get("context") or {}
        cluster_name = ctx.get("cluster")
        clusters = view.get("clusters") or []
        cluster = next((c for c in clusters if c.get("name") == cluster_name), clusters[0] if clusters else {})
        providers = tuple(
            str((e.get("extension") or {}).get("provider"))
            for entry in ((cluster.get("cluster") or {}), ctx)
            for e in entry.get("extensions") or []
            if (e.get("extension") or {}).get("provider")
        )
        return cls(name, (cluster.get("cluster") or {}).get("server"), cluster_name or cluster.get("name"), ctx.get("user"), providers)


def _runtime(node: Mapping[str, Any]) -> str | None:
    version = ((node.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion") or ""
    return version.split("://", 1)[0] or None if "://" in version else None


def _from_node(node: Mapping[str, Any], ctx: KubeContext) -> Detected | None:
    meta = node.get("metadata") or {}
    name = meta.get("name") or ""
    labels = meta.get("labels") or {}
    provider_id = (node.get("spec") or {}).get("providerID") or ""
    info = (node.get("status") or {}).get("nodeInfo") or {}
    kubelet, os_image = info.get("kubeletVersion") or "", info.get("osImage") or ""
    runtime = _runtime(node)

    if name == "docker-desktop":
        return Detected(Distribution.DOCKER_DESKTOP, None, runtime, "kubeadm", f"node {name}")
    if _DESKTOP_KIND_NODE.match(name) and ctx.name == "docker-desktop":
        return Detected(Distribution.DOCKER_DESKTOP, None, runtime, "kind", f"node {name} in context docker-desktop")
    if MINIKUBE_NAME_LABEL in labels:
        return Detected(Distribution.MINIKUBE, labels[MINIKUBE_NAME_LABEL], runtime, None, f"node label {MINIKUBE_NAME_LABEL}={labels[MINIKUBE_NAME_LABEL]}")
    if name == "orbstack" or "+orb" in kubelet or os_image == "OrbStack":
        return Detected(Distribution.ORBSTACK, None, runtime, None, f"node {name} (kubelet {kubelet or '?'}, {os_image or 'os ?'})")
    if name == "lima-rancher-desktop" or (ctx.name == "rancher-desktop" and "+k3s" in kubelet):
        return Detected(Distribution.RANCHER_DESKTOP, None, runtime, None, f"node {name} (kubelet {kubelet or '?'})")
    if m := _KIND_PROVIDER_ID.match(provider_id):
        return Detected(Distribution.KIND, m["cluster"], runtime, None, f"providerID {provider_id}")
    if (m := _K3D_NODE.match(name)) and ("+k3s" in kubelet or provider_id.startswith("k3s://")):
        return Detected(Distribution.K3D, m["cluster"], runtime, None, f"node {name} (kubelet {kubelet})")
    return None


def _from_context(ctx: KubeContext, runtime: str | None) -> Detected:
    name = ctx.name or ""
    if name == "docker-desktop" or ctx.cluster == "docker-desktop":
        return Detected(Distribution.DOCKER_DESKTOP, None, runtime, None, f"context {name}")
    if MINIKUBE_PROVIDER in ctx.providers:
        return Detected(Distribution.MINIKUBE, ctx.cluster or name, runtime, None, f"kubeconfig extension provider {MINIKUBE_PROVIDER}")
    if name.startswith("kind-"):
        return Detected(Distribution.KIND, name.removeprefix("kind-"), runtime, None, f"context {name}")
    if name.startswith("k3d-"):
        return Detected(Distribution.K3D, name.removeprefix("k3d-"), runtime, None, f"context {name}")
    if name == "minikube":
        return Detected(Distribution.MINIKUBE, "minikube", runtime, None, f"context {name}")
    if name == "orbstack":
        return Detected(Distribution.ORBSTACK, None, runtime, None, f"context {name}")
    if name == "rancher-desktop":
        return Detected(Distribution.RANCHER_DESKTOP, None, runtime, None, f"context {name}")
    return Detected(Distribution.UNKNOWN, None, runtime, None, f"context {name or '(none)'}")


def detect(ctx: KubeContext, nodes: Mapping[str, Any] | None) -> Detected:
    """The node decides when it can; else the context. A kind node without a providerID (old kind)
    still matches ``<cluster>-control-plane`` when the context is ``kind-<cluster>``."""
    items = list((nodes or {}).get("items") or [])
    for node in items:
        found = _from_node(node, ctx)
        if found:
            return found
    runtime = _runtime(items[0]) if items else None
    found = _from_context(ctx, runtime)
    if found.distribution is Distribution.KIND and items:
        names = [(n.get("metadata") or {}).get("name") or "" for n in items]
        if any((m := _KIND_NODE.match(n)) and m["cluster"] == found.cluster for n in names):
            return Detected(Distribution.KIND, found.cluster, runtime, None, f"context {ctx.name}, node {names[0]}")
    return found


# --- making the project image available -------------------------------------------------------------

@dataclass(frozen=True)
class LoadPlan:
    """What `make image` does after `docker build` for this distribution."""

    detected: Detected
    # The command to run (None: nothing to do, or refused).
    argv: tuple[str, ...] | None
    # Why nothing runs, or what the command does.
    reason: str
    # A distribution the image cannot reach this way: load-image exits 1 with ``reason``.
    refused: bool = False
    # The CLI ``argv`` needs, with where to get it (for a clear error when it is missing).
    tool: str | None = None
    install: str | None = None


def load_plan(detected: Detected, image: str, binaries: Mapping[str, str] | None = None) -> LoadPlan:
    """The right way per distribution (binaries: overrides for ``kind``/``k3d``/``minikube``)."""
    binaries = binaries or {}
    d, cluster = detected.distribution, detected.cluster
    if d is Distribution.KIND:
        # kind.sigs.k8s.io/docs/user/quick-start/#loading-an-image-into-your-cluster
        argv = (binaries.get("kind", "kind"), "load", "docker-image", image, "--name", cluster or "kind")
        return LoadPlan(detected, argv, f"kind nodes have their own containerd: loading {image} into cluster {cluster or 'kind'}",
                        tool="kind", install="https://kind.sigs.k8s.io/docs/user/quick-start/#installation")
    if d is Distribution.K3D:
        # k3d.io/stable/usage/commands/k3d_image_import: `k3d image import IMAGE -c CLUSTER`
        argv = (binaries.get("k3d", "k3d"), "image", "import", image, "-c", cluster or "k3s-default")
        return LoadPlan(detected, argv, f"k3d nodes have their own containerd: importing {image} into cluster {cluster or 'k3s-default'}",
                        tool="k3d", install="https://k3d.io/stable/#installation")
    if d is Distribution.MINIKUBE:
        # minikube.sigs.k8s.io/docs/commands/image/: `minikube image load IMAGE -p PROFILE`
        argv = (binaries.get("minikube", "minikube"), "image", "load", image, "-p", cluster or "minikube")
        return LoadPlan(detected, argv, f"minikube runs its own engine: loading {image} into profile {cluster or 'minikube'}",
                        tool="minikube", install="https://minikube.sigs.k8s.io/docs/start/")
    if d is Distribution.DOCKER_DESKTOP:
        if detected.variant == "kind" or detected.runtime == "containerd":
            return LoadPlan(detected, None, "Docker Desktop's kind provisioner sees images built with docker only with the containerd "
                            "image store on (Settings > General > 'Use containerd for pulling and storing images'; "
                            "docs.docker.com: 'Cluster provisioning method'); nothing to load")
        return LoadPlan(detected, None, "Docker Desktop's kubeadm cluster runs on the Docker engine: the image is already there")
    if d is Distribution.ORBSTACK:
        return LoadPlan(detected, None, "OrbStack's Kubernetes uses the same container engine as docker: the image is already there")
    if d is Distribution.RANCHER_DESKTOP:
        if detected.runtime == "containerd":
            return LoadPlan(
                detected, None,
                "Rancher Desktop runs the containerd engine, whose Kubernetes images live in containerd's k8s.io namespace, "
                "not in a docker image store. Either switch Preferences > Container Engine to dockerd (moby) and run "
                f"`make image` again, or build straight into Kubernetes' namespace: `nerdctl --namespace k8s.io build -t {image} .`",
                refused=True,
            )
        return LoadPlan(detected, None, "Rancher Desktop with dockerd (moby): k3s runs on that engine, the image is already there")
    return LoadPlan(detected, None, f"unknown distribution: nothing loaded. If this cluster does not share docker's image store, "
                    f"make {image} available to it yourself (push it to a registry it pulls from, or its own load command)")
