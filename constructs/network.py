"""NetworkPolicies derived from the stack's own wiring: default deny, DNS, and exactly the edges used.

Nothing here lists who talks to whom. :func:`derive` reads the synthesized objects of every other
chart, the way the ``endpoints`` wiring check does (floe/manifest_checks.py, with the same parsers):
every host:port or URL in a container's env, command and args, in ``FOO_HOST``/``FOO_PORT`` pairs,
in the ``/dev/tcp/<host>/<port>`` checks of the wait-for-deps init containers, and in the ConfigMaps
the pod mounts or reads. Each address resolves to a Service, its selector to the pods behind it,
its port to the container port. That gives the edges, client workload -> server workload:port, and
the policies follow from them: a new workload (a CronJob, a verification Job) gets its rules by
having its endpoints in env like every other pod, and a switched-off service leaves no rule behind
because no env names it any more.

Policies (all in the namespace chart, so they are applied before any pod exists):

- ``<prefix>-default-deny``: every pod of the namespace, ingress and egress, no rule.
- ``<prefix>-allow-dns``: every pod may ask the cluster DNS, UDP and TCP 53 (see :data:`DNS_POD_LABELS`).
- one per workload that has edges, named like it: egress to each server's pods on the ports used,
  ingress from each client's pods on the ports served, and internet egress only where derived.

What NetworkPolicies don't filter, so needs no rule (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
a pod's traffic to itself, and traffic between a pod and its own node: kubelet probes, and
``kubectl port-forward``, which the kubelet's container runtime opens inside the pod's network
namespace to 127.0.0.1:<port> (it never crosses the pod's interface, so the UIs stay reachable).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from cdk8s import Chart

from constructs import base, k8s, plain
from constructs.gateway import DATA_PLANE_LABELS_ANNOTATION, DATA_PLANE_NAMESPACE_ANNOTATION
from constructs.ingress import CONTROLLER_LABELS_ANNOTATION, CONTROLLER_NAMESPACE_ANNOTATION
from demo.bootstrap.settings import PolarisInitSettings
from floe.config import ExternalEndpoint, StackConfig
from floe.deploy.manifests import pods_at_once
from floe.manifest_checks import (
    LOCAL_HOSTS,
    Manifests,
    Pod,
    _hostports,
    _references,
    _resolve_host,
    container_addresses,
    _structured_hostports,
    token_pods,
)

#: The cluster DNS. CoreDNS carries the label ``k8s-app: kube-dns`` (kept from the kube-dns days, so
#: that the ``kube-dns`` Service selects it) in kube-system on Docker Desktop, kind, k3d/k3s and
#: minikube alike, and on kubeadm clusters. Selecting those pods (rather than any destination on port
#: 53) keeps DNS from being a way out; the ``kubernetes.io/metadata.name`` label is set on every
#: namespace by the API server (1.22+). Policies apply after the Service's DNAT, so this matches
#: queries to the ``kube-dns`` ClusterIP. These are the defaults of ``network.dns`` (floe/config.py),
#: which types the peers: a cluster with NodeLocal DNSCache answers on a link-local address of the
#: node (and intercepts the kube-dns ClusterIP there, before any DNAT), which no pod selector
#: matches: its addresses go into ``network.dns.cidrs`` (docs/production.md).
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}
DNS_PORT = 53

#: Internet egress (only where derived): any address but private, shared, link-local (cloud metadata)
#: and loopback ranges, so this rule can never reach a pod, a node or the host.
INTERNET = "0.0.0.0/0"
NOT_INTERNET = ("10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16")
#: The internet as an edge's server.
INTERNET_PEER = "internet"
#: A declared external service (postgres.external, minio.external) as an edge's server:
#: ``external-service:<service>``. Its policy rule is an ipBlock on the service's port only: the
#: declared ``cidr`` (or the host's own /32 when the host is an IPv4 address), else any address but
#: the private, shared, loopback and link-local ranges (:data:`NOT_INTERNET`). Why not "any address":
#: a NetworkPolicy cannot say "outside the cluster" (the pod, Service and node ranges are the
#: cluster's and unknown at synth time), and 0.0.0.0/0 would also open that port towards every pod
#: and node the CNI matches by IP. Without the private ranges the rule reaches nothing inside; a
#: server on a private address (a managed database in the same VPC) therefore needs ``cidr``.
EXTERNAL_SERVICE_PREFIX = "external-service:"
#: Any address outside the namespace, as the client of a NodePort/LoadBalancer Service: the node
#: forwards external traffic (SNAT-ed to a node address with externalTrafficPolicy Cluster), so no
#: narrower source can be relied on.
EXTERNAL_PEER = "external"
EXTERNAL_TYPES = ("NodePort", "LoadBalancer")
#: Prefix of the peer standing for an ingress controller's pods (``ingress-controller:<namespace>``).
INGRESS_PEER_PREFIX = "ingress-controller:"
#: Prefix of the peer standing for a Gateway's data-plane pods (``gateway-data-plane:<namespace>``),
#: the proxies that forward the HTTPRoutes' requests (ingress.gateway).
GATEWAY_PEER_PREFIX = "gateway-data-plane:"

#: Env vars whose presence makes a container download at run time, and the ports it needs.
#: CUBEJS_DB_DUCKDB_EXTENSIONS (cube.duckdb_extensions: download): Cube's DuckDB driver runs INSTALL
#: for each extension from DuckDB's core repository, http://extensions.duckdb.org (signed files over
#: HTTP; 443 for a redirect or an https repository).
DOWNLOADS: dict[str, tuple[int, ...]] = {"CUBEJS_DB_DUCKDB_EXTENSIONS": (80, 443)}

#: Addresses a pod hands to a server instead of connecting to them: {env: env naming that server}.
#: The Polaris init Job writes the S3 endpoints into the catalog's storage config; Polaris itself
#: then reads and writes table metadata at ``endpointInternal`` (the Job never calls S3).
_polaris = PolarisInitSettings.env_name
HANDED_OVER: dict[str, str] = {
    _polaris("s3_endpoint"): _polaris("polaris_url"),
    _polaris("s3_endpoint_internal"): _polaris("polaris_url"),
}


@dataclass(frozen=True, order=True)
class Edge:
    """``client`` connects to ``server`` (a workload, or :data:`INTERNET_PEER`) on ``port``."""

    client: str
    server: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Graph:
    """Who talks to whom, at the pods' own ports (after Service port -> targetPort)."""

    edges: tuple[Edge, ...]
    #: workload name -> the labels that select exactly its pods
    selectors: dict[str, dict[str, str]]
    #: workload name -> how many pods it runs (replicas, Job parallelism)
    pods: dict[str, int]
    #: clients that are no workload of the namespace -> {"namespace", "labels"} or {"cidr"}
    peers: dict[str, dict] = field(default_factory=dict)
    #: declared external services (``external-service:<service>``) -> their CIDR, or None
    #: (non-private addresses); servers only
    externals: dict[str, str | None] = field(default_factory=dict)

    def servers(self, client: str) -> list[Edge]:
        return [e for e in self.edges if e.client == client]

    def clients(self, server: str) -> list[Edge]:
        return [e for e in self.edges if e.server == server]


# --- deriving the edges -------------------------------------------------------------------------


def _selector(pod: Pod) -> dict[str, str]:
    """The owner's own selector; for Jobs (whose selector the API server generates) the stable
    name/instance labels of the pod template, as every floe workload has them (the run pods:
    name/stack, base.STACK_LABEL)."""
    match = (pod.owner.get("spec", {}).get("selector") or {}).get("matchLabels")
    if match:
        return dict(match)
    keys = base.selector_labels("").keys()
    if base.STACK_LABEL in pod.labels:
        keys = [next(iter(keys)), base.STACK_LABEL]
    stable = {k: pod.labels[k] for k in keys if k in pod.labels}
    return stable or dict(pod.labels)


def _config_map_texts(m: Manifests, pod: Pod) -> Iterator[str]:
    """Every ConfigMap value the pod reads: mounted files, envFrom, configMapKeyRef."""
    for kind, name, key, _optional in _references(pod):
        cm = m.config_maps.get(name) if kind == "ConfigMap" else None
        for k, text in ((cm or {}).get("data") or {}).items():
            if key is None or k == key:
                yield str(text)


def _env(m: Manifests, pod: Pod, container: dict) -> dict[str, str]:
    """A container's env with literal values, ConfigMap-sourced values and envFrom resolved."""
    values: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref and ref["name"] in m.config_maps:
            prefix = source.get("prefix", "")
            values.update({prefix + k: str(v) for k, v in (m.config_maps[ref["name"]].get("data") or {}).items()})
    for var in container.get("env") or []:
        if var.get("value") is not None:
            values[var["name"]] = str(var["value"])
        ref = (var.get("valueFrom") or {}).get("configMapKeyRef")
        if ref and ref["name"] in m.config_maps:
            value = (m.config_maps[ref["name"]].get("data") or {}).get(ref["key"])
            if value is not None:
                values[var["name"]] = str(value)
    return values


def _addresses(m: Manifests, pod: Pod) -> Iterator[tuple[str, str, int]]:
    """(who connects: '' for the pod itself, else the env naming the server it hands the address
    to; host; port) for every address the pod's containers (init containers too) use."""
    for _, container in pod.containers():
        env = _env(m, pod, container)
        for address in container_addresses(env, container):
            if address.paired:
                if address.port.isdigit():
                    yield "", address.host, int(address.port)
                continue
            via = HANDED_OVER.get(address.env, "") if HANDED_OVER.get(address.env) in env else ""
            yield via, address.host, int(address.port)
    for text in _config_map_texts(m, pod):
        for host, port in [*_hostports(text), *_structured_hostports(text)]:
            yield "", host, port


def _targets(m: Manifests, host: str, port: int) -> list[tuple[Pod, int]] | None:
    """(server pod, container port) for an in-cluster address; None for an address outside the
    cluster; [] when nothing is behind it (the endpoints check reports that case)."""
    resolved = _resolve_host(m, host)
    if resolved is None:
        return None
    service, pod_name = resolved
    svc = m.services.get(service)
    if svc is None:
        return []
    pods = m.selected_pods(svc)
    if pod_name:  # <pod>.<headless service>: straight to the container port
        return [(p, port) for p in pods if pod_name.rsplit("-", 1)[0] == p.workload]
    found = []
    for sp in svc["spec"].get("ports") or []:
        if sp.get("port") != port:
            continue
        target = sp.get("targetPort", port)
        for p in pods:
            if isinstance(target, int) or str(target).isdigit():
                found.append((p, int(target)))
                continue
            for _, c in p.containers(init=False):
                found.extend((p, cp["containerPort"]) for cp in c.get("ports") or [] if cp.get("name") == target)
    return found


def derive(documents: Iterable[dict], namespace: str, external: Iterable[ExternalEndpoint] = ()) -> Graph:
    """The edges of the stack in ``documents`` (the objects of every chart but the policies), and
    to the declared ``external`` services (config.endpoints.external)."""
    declared = {(e.host, e.port): e for e in external}
    m = Manifests([d for d in documents if d.get("kind") != "NetworkPolicy"], namespace, external_endpoints=set(declared))
    owners = {p.workload: p for p in m.pods}
    selectors = {name: _selector(p) for name, p in owners.items()}
    for name, selector in selectors.items():
        others = [o for o, p in owners.items() if o != name and selector.items() <= p.labels.items()]
        if others:
            raise ValueError(f"labels {selector} of {name} also select the pods of {', '.join(others)}: no policy can tell them apart")
    pods = {name: pods_at_once(p.owner) for name, p in owners.items()}
    edges: set[Edge] = set()
    for pod in m.pods:
        client = pod.workload
        env_names = {n for _, c in pod.containers() for n in _env(m, pod, c)}
        for port in sorted({p for n in env_names & DOWNLOADS.keys() for p in DOWNLOADS[n]}):
            edges.add(Edge(client, INTERNET_PEER, port))
        for handed_to, host, port in _addresses(m, pod):
            if host in LOCAL_HOSTS:
                continue
            clients = [client]
            if handed_to:  # the server named by that env connects, not this pod
                server_env = {k: v for _, c in pod.containers() for k, v in _env(m, pod, c).items()}[handed_to]
                clients = sorted({
                    p.workload
                    for h, pt in _hostports(server_env)
                    for p, _ in _targets(m, h, pt) or []
                })
            if (host, port) in declared:  # outside the cluster, where the config says it is
                edges.update(Edge(who, EXTERNAL_SERVICE_PREFIX + declared[(host, port)].service, port) for who in clients)
                continue
            targets = _targets(m, host, port)
            for who in clients:
                if targets is None:
                    edges.add(Edge(who, INTERNET_PEER, port))
                    continue
                for server_pod, target_port in targets:
                    server = server_pod.workload
                    # A pod's traffic to itself is never filtered: a self edge matters only
                    # between two pods of the same workload.
                    if server == who and pods[server] < 2:
                        continue
                    edges.add(Edge(who, server, target_port))
    peers: dict[str, dict] = {}
    for client, peer, server, port in _exposed(m):
        peers[client] = peer
        edges.add(Edge(client, server, port))
    externals = {EXTERNAL_SERVICE_PREFIX + e.service: e.cidr for e in declared.values()}
    return Graph(tuple(sorted(edges)), selectors, pods, peers, externals)


def _service_targets(m: Manifests, service: str, port: int | str) -> list[tuple[Pod, int]]:
    """(pod, container port) behind a Service port given by number or name."""
    svc = m.services.get(service)
    if svc is None:
        return []
    numbers = [p["port"] for p in svc["spec"].get("ports") or [] if port in (p.get("port"), p.get("name"))]
    return [t for number in numbers for t in _targets(m, service, number) or []]


def _outside_peer(obj: dict, namespace_annotation: str, labels_annotation: str) -> tuple[str, dict]:
    """The pods outside the namespace that forward to ``obj``'s backends (the ingress controller's
    for an Ingress, the Gateway's data plane for an HTTPRoute), from the object's own annotations."""
    annotations = obj["metadata"].get("annotations") or {}
    namespace = annotations.get(namespace_annotation)
    if not namespace:
        raise ValueError(f"{obj['kind']} {obj['metadata']['name']}: no {namespace_annotation} annotation")
    return namespace, {"namespace": namespace, "labels": json.loads(annotations[labels_annotation])}


def _exposed(m: Manifests) -> Iterator[tuple[str, dict, str, int]]:
    """(client peer, its definition, server workload, container port) for what is reached from
    outside the namespace: each Ingress backend from the ingress controller's pods (namespace and
    labels from the Ingress' own annotations), each HTTPRoute backend from the Gateway's data-plane
    pods (likewise from the route's annotations), each NodePort/LoadBalancer Service from anywhere."""
    for ingress in m.of_kind("Ingress"):
        namespace, peer = _outside_peer(ingress, CONTROLLER_NAMESPACE_ANNOTATION, CONTROLLER_LABELS_ANNOTATION)
        spec = ingress.get("spec") or {}
        backends = [spec["defaultBackend"]] if spec.get("defaultBackend") else []
        backends += [p["backend"] for r in spec.get("rules") or [] for p in (r.get("http") or {}).get("paths") or []]
        for backend in backends:
            service = backend.get("service") or {}
            port = (service.get("port") or {}).get("number", (service.get("port") or {}).get("name"))
            for pod, target in _service_targets(m, service.get("name", ""), port):
                yield f"{INGRESS_PEER_PREFIX}{namespace}", peer, pod.workload, target
    for route in m.of_kind("HTTPRoute"):
        namespace, peer = _outside_peer(route, DATA_PLANE_NAMESPACE_ANNOTATION, DATA_PLANE_LABELS_ANNOTATION)
        for rule in (route.get("spec") or {}).get("rules") or []:
            for backend in rule.get("backendRefs") or []:
                for pod, target in _service_targets(m, backend.get("name", ""), backend.get("port")):
                    yield f"{GATEWAY_PEER_PREFIX}{namespace}", peer, pod.workload, target
    for name, svc in sorted(m.services.items()):
        if svc["spec"].get("type") in EXTERNAL_TYPES:
            for sp in svc["spec"].get("ports") or []:
                for pod, target in _service_targets(m, name, sp["port"]):
                    yield EXTERNAL_PEER, {"cidr": INTERNET}, pod.workload, target


# --- the policies -------------------------------------------------------------------------------


def _ports(ports: Iterable[int], protocol: str = "TCP") -> list[k8s.NetworkPolicyPort]:
    return [k8s.NetworkPolicyPort(port=base.int_or_string(p), protocol=protocol) for p in sorted(set(ports))]


def _grouped(pairs: Iterable[tuple[str, int]]) -> list[tuple[tuple[int, ...], list[str]]]:
    """Peers grouped by the exact set of ports they share: one rule per port set."""
    by_peer: dict[str, set[int]] = defaultdict(set)
    for peer, port in pairs:
        by_peer[peer].add(port)
    by_ports: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for peer, ports in sorted(by_peer.items()):
        by_ports[tuple(sorted(ports))].append(peer)
    return sorted(by_ports.items())


def _peer(graph: Graph, workload: str) -> k8s.NetworkPolicyPeer:
    outside = graph.peers.get(workload)
    if outside and "cidr" in outside:
        return k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=outside["cidr"]))
    if outside:
        # Pods of another namespace: both selectors in one peer (AND), never either alone.
        return k8s.NetworkPolicyPeer(
            namespace_selector=k8s.LabelSelector(match_labels={"kubernetes.io/metadata.name": outside["namespace"]}),
            pod_selector=k8s.LabelSelector(match_labels=outside["labels"]),
        )
    # No namespaceSelector: a podSelector alone means pods of the policy's own namespace.
    return k8s.NetworkPolicyPeer(pod_selector=k8s.LabelSelector(match_labels=graph.selectors[workload]))


def workload_policy_spec(graph: Graph, workload: str) -> k8s.NetworkPolicySpec | None:
    egress_pairs = [(e.server, e.port) for e in graph.servers(workload)]
    ingress_pairs = [(e.client, e.port) for e in graph.clients(workload)]
    if not egress_pairs and not ingress_pairs:
        return None
    egress = []
    for ports, servers in _grouped(egress_pairs):
        peers = [_peer(graph, s) for s in servers if s != INTERNET_PEER and s not in graph.externals]
        if peers:
            egress.append(k8s.NetworkPolicyEgressRule(to=peers, ports=_ports(ports)))
        for server in (s for s in servers if s in graph.externals):
            cidr = graph.externals[server]
            block = k8s.IpBlock(cidr=cidr) if cidr else k8s.IpBlock(cidr=INTERNET, except_=list(NOT_INTERNET))
            egress.append(k8s.NetworkPolicyEgressRule(to=[k8s.NetworkPolicyPeer(ip_block=block)], ports=_ports(ports)))
        if INTERNET_PEER in servers:
            internet = k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=INTERNET, except_=list(NOT_INTERNET)))
            egress.append(k8s.NetworkPolicyEgressRule(to=[internet], ports=_ports(ports)))
    ingress = [
        k8s.NetworkPolicyIngressRule(from_=[_peer(graph, c) for c in clients], ports=_ports(ports))
        for ports, clients in _grouped(ingress_pairs)
    ]
    return k8s.NetworkPolicySpec(
        pod_selector=k8s.LabelSelector(match_labels=graph.selectors[workload]),
        policy_types=[t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules],
        ingress=ingress or None,
        egress=egress or None,
    )


class NetworkPolicies(plain.PlainConstruct):
    """The namespace's NetworkPolicies, derived from the objects of ``charts``."""

    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, charts: list[Chart]) -> None:
        super().__init__(scope, id)
        # The documents kept beside the objects (constructs/plain.py), in the order cdk8s writes them.
        documents = plain.documents(charts)
        graph = derive(documents, config.namespace, config.endpoints.external)

        def meta(name: str, description: str) -> k8s.ObjectMeta:
            # Layer "infrastructure": applied with the first phase, before any pod exists.
            lbls = base.labels(name, component="network-policy", layer="infrastructure")
            return k8s.ObjectMeta(
                name=name, namespace=config.namespace, labels=lbls, annotations={base.DESCRIPTION_ANNOTATION: description}
            )

        everything = k8s.LabelSelector()  # synthesizes as {}: every pod of the namespace
        plain.api_object(
            k8s.KubeNetworkPolicy,
            self,
            "default-deny",
            metadata=meta(f"{config.name_prefix}-default-deny", "deny all ingress and egress but what another policy allows"),
            spec=k8s.NetworkPolicySpec(pod_selector=everything, policy_types=["Ingress", "Egress"]),
        )
        d = config.network.dns
        dns = [
            *([k8s.NetworkPolicyPeer(
                namespace_selector=k8s.LabelSelector(match_labels={"kubernetes.io/metadata.name": d.namespace}),
                pod_selector=k8s.LabelSelector(match_labels=dict(d.pod_labels)),
            )] if d.namespace and d.pod_labels else []),
            *[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr)) for cidr in d.cidrs],
        ]
        plain.api_object(
            k8s.KubeNetworkPolicy,
            self,
            "allow-dns",
            metadata=meta(f"{config.name_prefix}-allow-dns", "every pod may query the cluster DNS"),
            spec=k8s.NetworkPolicySpec(
                pod_selector=everything,
                policy_types=["Egress"],
                egress=[k8s.NetworkPolicyEgressRule(to=dns, ports=[*_ports([d.port], "UDP"), *_ports([d.port], "TCP")])],
            ),
        )
        for workload in sorted(graph.selectors):
            spec = workload_policy_spec(graph, workload)
            if spec is not None:
                plain.api_object(
                    k8s.KubeNetworkPolicy,
                    self,
                    f"policy-{workload}",
                    metadata=meta(workload, f"the connections {workload} makes and accepts, derived from the stack's wiring"),
                    spec=spec,
                )
        spec = kubernetes_api_policy_spec(documents, config)
        if spec is not None:
            plain.api_object(
                k8s.KubeNetworkPolicy,
                self,
                "allow-kubernetes-api",
                metadata=meta(f"{config.name_prefix}-allow-kubernetes-api", "pods that mount a ServiceAccount token may reach the Kubernetes API server"),
                spec=spec,
            )


def kubernetes_api_policy_spec(documents: Iterable[dict], config: StackConfig) -> k8s.NetworkPolicySpec | None:
    """Egress to the API server (``dagster.kubernetes_api``: its addresses and ports, as policies see
    them after the ``kubernetes`` Service's DNAT) for exactly the pods the "security" check lets
    mount a ServiceAccount token (one bound to a Role of dist/: the k8s run launcher's daemon and
    webserver). None when no pod mounts one (the local profile)."""
    m = Manifests([d for d in documents if d.get("kind") != "NetworkPolicy"], config.namespace)
    workloads = sorted({p.workload for p in token_pods(m)})
    if not workloads:
        return None
    api = config.dagster.kubernetes_api
    if not api.cidrs:
        raise ValueError(f"{', '.join(workloads)} mount a ServiceAccount token but dagster.kubernetes_api.cidrs is empty")
    name_key = next(iter(base.selector_labels("")))
    selector = k8s.LabelSelector(
        match_labels={k: v for k, v in base.selector_labels("").items() if k != name_key},
        match_expressions=[k8s.LabelSelectorRequirement(key=name_key, operator="In", values=workloads)],
    )
    return k8s.NetworkPolicySpec(
        pod_selector=selector,
        policy_types=["Egress"],
        egress=[
            k8s.NetworkPolicyEgressRule(
                to=[k8s.NetworkPolicyPeer(ip_block=k8s.IpBlock(cidr=cidr)) for cidr in api.cidrs],
                ports=_ports(api.ports),
            )
        ],
    )


# --- the "who talks to whom" table in docs/architecture.md --------------------------------------

TABLE_BEGIN = "<!-- network-edges:begin (generated from constructs/network.py; tests/infra/test_network_policies.py keeps it in sync) -->"
TABLE_END = "<!-- network-edges:end -->"


def edge_table(graph: Graph) -> str:
    """Markdown: one row per client, its servers and ports (the edges the policies allow)."""
    rows = ["| client (pods of) | connects to (pods of) : port |", "|---|---|"]
    for client in sorted({e.client for e in graph.edges}):
        targets = defaultdict(list)
        for e in graph.servers(client):
            targets[e.server].append(e.port)
        rendered = ", ".join(f"{server} :{'/'.join(str(p) for p in sorted(ports))}" for server, ports in sorted(targets.items()))
        rows.append(f"| {client} | {rendered} |")
    return "\n".join(rows)


if __name__ == "__main__":
    # `.venv/bin/python -m constructs.network`: the table for docs/architecture.md, from the default
    # config (no credentials needed: the Secrets play no part in the wiring).
    import tempfile
    from pathlib import Path

    from floe.synth import load_documents, synth_to

    defaults = StackConfig(credentials={"source": "existing"})
    with tempfile.TemporaryDirectory() as folder:
        synth_to(Path(folder), defaults, None)
        print(edge_table(derive(load_documents(Path(folder)), defaults.namespace)))
