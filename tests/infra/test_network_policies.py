"""The NetworkPolicies in dist/ allow exactly the stack's edges, as computed by a real analyzer.

IBM's network-config-analyzer (``nca``, from PyPI) reads dist/ the way a cluster would: it expands
Deployments, StatefulSets, Jobs and CronJobs into pods with their labels, evaluates every
NetworkPolicy, and prints the connections they allow between every pair of endpoints. We add a
minimal rest of the cluster (kube-system with CoreDNS labelled ``k8s-app: kube-dns``, and a stranger
pod in another namespace) and compare the result with the edges :func:`constructs.network.derive`
finds in the wiring: every edge allowed, on its port only, nothing else from or to a pod of ours
(DNS excepted, internet egress only where configured). Mutating a policy in dist/ (a peer dropped,
a rule widened, the default deny removed) makes the comparison fail.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from constructs.network import (
    DNS_NAMESPACE,
    EXTERNAL_SERVICE_PREFIX,
    INTERNET,
    INTERNET_PEER,
    NOT_INTERNET,
    TABLE_BEGIN,
    TABLE_END,
    Graph,
    derive,
    edge_table,
)
from floe.manifest_checks import check_manifests
from floe.synth import SynthResult, load_documents
from tests.infra.conftest import REPO, make_config, synth
from tests.infra.test_cluster_storage import EXTERNAL

NAMESPACE = "floe"
STRANGER_NAMESPACE = "other"

# The rest of a cluster, as Docker Desktop, kind, k3d and minikube run it: CoreDNS in kube-system
# (label k8s-app=kube-dns, port 53 UDP+TCP), and some other namespace's pod.
CLUSTER = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {DNS_NAMESPACE}, labels: {{kubernetes.io/metadata.name: {DNS_NAMESPACE}}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: coredns, namespace: {DNS_NAMESPACE}, labels: {{k8s-app: kube-dns}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{k8s-app: kube-dns}}}}
  template:
    metadata: {{labels: {{k8s-app: kube-dns}}}}
    spec:
      containers:
        - name: coredns
          image: registry.k8s.io/coredns/coredns:v1.11.3
          ports: [{{name: dns, containerPort: 53, protocol: UDP}}, {{name: dns-tcp, containerPort: 53, protocol: TCP}}]
---
apiVersion: v1
kind: Namespace
metadata: {{name: {STRANGER_NAMESPACE}, labels: {{kubernetes.io/metadata.name: {STRANGER_NAMESPACE}}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: stranger, namespace: {STRANGER_NAMESPACE}, labels: {{app: stranger}}}}
spec:
  selector: {{matchLabels: {{app: stranger}}}}
  template:
    metadata: {{labels: {{app: stranger}}}}
    spec:
      containers: [{{name: stranger, image: busybox:1.37, ports: [{{containerPort: 8080}}]}}]
"""

DNS_PEER = f"{DNS_NAMESPACE}/coredns"
DNS_CONNS = frozenset({"TCP/53", "UDP/53"})
LINE = re.compile(r"^(?P<src>\S+) => (?P<dst>\S+) : (?P<conn>.+)$")
CONN = re.compile(r"\{protocols:(?P<protocols>[A-Z]+(?:, [A-Z]+)*)(?:,dst_ports:(?P<ports>[0-9,\-]+))?\}")
POD = re.compile(r"^(?P<ns>[a-z0-9-]+)/(?P<workload>.+)-\d+$")


# --- running the analyzer -----------------------------------------------------------------------


def _conns(text: str) -> frozenset[str]:
    """'{protocols:TCP, UDP,dst_ports:53}' -> {'TCP/53', 'UDP/53'}; anything wider stays visible."""
    if text.strip() == "All connections":
        return frozenset({"ALL"})
    found = set()
    for match in CONN.finditer(text):
        ports = match["ports"]
        for protocol in match["protocols"].split(", "):
            if ports is None:
                found.add(f"{protocol}/*")
                continue
            for piece in ports.split(","):
                low, _, high = piece.partition("-")
                if high and int(high) - int(low) > 64:
                    found.add(f"{protocol}/{piece}")
                else:
                    found.update(f"{protocol}/{p}" for p in range(int(low), int(high or low) + 1))
    return frozenset(found) or frozenset({f"UNPARSED {text}"})


def _peer(endpoint: str) -> str:
    """'floe/floe-cube-1' -> 'floe/floe-cube'; an IP range stays as it is."""
    match = POD.match(endpoint)
    return f"{match['ns']}/{match['workload']}" if match else endpoint


def analyze(dist: Path, work: Path, extra: str = "") -> dict[tuple[str, str], frozenset[str]]:
    """nca's connectivity map of dist/ in the CLUSTER (plus ``extra``: more namespaces and pods, no
    policies), per (source, destination) workload or IP range."""
    world = work / "world"
    shutil.rmtree(world, ignore_errors=True)
    world.mkdir(parents=True)
    # The verification Job's template (dist/verify/) is a pod of the stack for the policies too.
    for path in [*dist.glob("*.yaml"), *dist.glob("verify/*.yaml")]:
        shutil.copy(path, world / path.name)
    (world / "zz-cluster.yaml").write_text(CLUSTER + (f"---\n{extra}" if extra else ""))
    out = work / "connectivity.txt"
    command = [
        sys.executable, "-m", "nca",
        "--connectivity", str(dist),  # the policies: ours only
        "--pod_list", str(world), "--ns_list", str(world),  # the endpoints: ours and the cluster's
        "--output_format", "txt_no_fw_rules", "--output_endpoints", "pods", "--file_out", str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.exists(), f"nca failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    # nca names a pod after its owner; a Job's object name carries a content digest, the graph
    # uses the workload's stable name (Pod.workload).
    stable = {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}": f"{d['metadata']['namespace']}/{d['metadata']['labels']['app.kubernetes.io/name']}"
        for d in load_documents(dist) if d["kind"] == "Job"
    }
    allowed: dict[tuple[str, str], set[str]] = defaultdict(set)
    for line in out.read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            src, dst = (stable.get(_peer(match[k]), _peer(match[k])) for k in ("src", "dst"))
            allowed[(src, dst)] |= _conns(match["conn"])
    assert allowed, f"nca printed no connections:\n{out.read_text()}\n{done.stderr}"
    return {key: frozenset(value) for key, value in allowed.items()}


def _in_cluster(peer: str) -> bool:
    return "/" in peer


def _ip_range(peer: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    if "/" in peer:
        network = ipaddress.IPv4Network(peer)
        return network[0], network[-1]
    low, high = peer.split("-")
    return ipaddress.IPv4Address(low), ipaddress.IPv4Address(high)


Block = tuple[ipaddress.IPv4Network, tuple[ipaddress.IPv4Network, ...]]


def _block(cidr: str | None) -> Block:
    """An egress ipBlock as the policies write it: the CIDR, or the internet without NOT_INTERNET."""
    if cidr:
        return ipaddress.IPv4Network(cidr), ()
    return ipaddress.IPv4Network(INTERNET), tuple(ipaddress.IPv4Network(n) for n in NOT_INTERNET)


def _covers(block: Block, low: ipaddress.IPv4Address, high: ipaddress.IPv4Address) -> bool:
    network, excepted = block
    inside = network[0] <= low and high <= network[-1]
    return inside and not any(low <= n[-1] and n[0] <= high for n in excepted)


def problems(allowed: dict[tuple[str, str], frozenset[str]], graph: Graph) -> list[str]:
    """Every difference between what nca says is allowed and the stack's edges (+ DNS, internet,
    declared external services: egress to their ipBlock on their port only)."""
    ours = f"{NAMESPACE}/"
    expected: dict[tuple[str, str], set[str]] = defaultdict(set)
    internet: dict[str, set[str]] = defaultdict(set)
    # client -> [(ipBlock, connection, server)]: what egress to addresses outside the cluster may do
    outside: dict[str, list[tuple[Block, str, str]]] = defaultdict(list)
    for e in graph.edges:
        conn = f"{e.protocol}/{e.port}"
        if e.server == INTERNET_PEER:
            internet[ours + e.client].add(conn)
            outside[ours + e.client].append((_block(None), conn, e.server))
        elif e.server.startswith(EXTERNAL_SERVICE_PREFIX):
            outside[ours + e.client].append((_block(graph.externals[e.server]), conn, e.server))
        else:
            expected[(ours + e.client, ours + e.server)].add(conn)
    for workload in graph.selectors:
        expected[(ours + workload, DNS_PEER)] |= DNS_CONNS
    found: list[str] = []
    for (src, dst), conns in sorted(allowed.items()):
        if not (src.startswith(ours) or dst.startswith(ours)):
            continue  # the rest of the cluster has no policies of ours
        if not _in_cluster(dst) and src.startswith(ours):  # egress to an IP range
            low, high = _ip_range(dst)
            want = {conn for block, conn, _ in outside.get(src, []) if _covers(block, low, high)}
            if conns != want:
                found.append(f"over-broad: {src} -> {dst}: {sorted(conns)} (egress expected there: {sorted(want)})")
            continue
        want = expected.get((src, dst), set())
        if conns != want:
            extra, missing = sorted(conns - want), sorted(want - conns)
            found.append(f"{src} -> {dst}: allowed {sorted(conns)}; expected {sorted(want)}" + (f"; over-broad {extra}" if extra else "") + (f"; missing {missing}" if missing else ""))
    for (src, dst), want in sorted(expected.items()):
        if (src, dst) not in allowed:
            found.append(f"missing: {src} -> {dst}: {sorted(want)} not allowed")
    for src, want in sorted(internet.items()):
        if not any(s == src and not _in_cluster(d) for s, d in allowed):
            found.append(f"missing: {src} -> internet: {sorted(want)} not allowed")
    for src, rules in sorted(outside.items()):
        for block, conn, server in rules:
            ranges = [_ip_range(d) for (s, d), conns in allowed.items() if s == src and not _in_cluster(d) and conn in conns]
            if not any(_covers(block, low, high) for low, high in ranges):
                found.append(f"missing: {src} -> {server} ({block[0]}): {conn} not allowed")
    return found


# --- fixtures -----------------------------------------------------------------------------------


#: Storage variants of the cluster profile (issue 11): in-cluster StatefulSets on claims, and
#: external PostgreSQL (private, CIDR declared) and S3 (public, no CIDR) instead.
PERSISTENT = {"profile": "cluster", "postgres__persistence": {"size": "20Gi"}, "minio__persistence": {"size": "100Gi"}}
EXTERNAL_SERVICES = {"profile": "cluster", "postgres__external": EXTERNAL["postgres"]["external"], "minio__external": EXTERNAL["minio"]["external"]}
#: dist/ folder -> the external services its config declares (what derive() is told, as synth does).
_EXTERNAL_ENDPOINTS: dict[Path, tuple] = {}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, default_synth: SynthResult) -> dict[str, SynthResult]:
    results = {"default": default_synth}
    for name, overrides in {
        "no-jaeger": {"jaeger__enabled": False},
        "no-marquez": {"marquez__enabled": False},
        "download": {"cube__duckdb_extensions": "download"},
        "two-workers": {"cubestore__workers": 2},
        "cluster-persistent": PERSISTENT,
        "cluster-external": EXTERNAL_SERVICES,
    }.items():
        folder = tmp_path_factory.mktemp(name)
        results[name] = synth(folder, **overrides)
        _EXTERNAL_ENDPOINTS[results[name].out_dir] = make_config(folder, **overrides).endpoints.external
    return results


def graph_of(result: SynthResult) -> Graph:
    return derive(result.documents, NAMESPACE, _EXTERNAL_ENDPOINTS.get(result.out_dir, ()))


def policies(result: SynthResult) -> list[dict]:
    return [d for d in result.documents if d["kind"] == "NetworkPolicy"]


# --- the analyzer agrees with the edges ---------------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "no-jaeger", "no-marquez", "download", "two-workers", "cluster-persistent", "cluster-external"])
def test_analyzer_allows_exactly_the_edges(variants: dict[str, SynthResult], variant: str, tmp_path: Path) -> None:
    result = variants[variant]
    graph = graph_of(result)
    started = time.perf_counter()
    allowed = analyze(result.out_dir, tmp_path)
    elapsed = time.perf_counter() - started
    assert problems(allowed, graph) == []
    in_namespace = {k: v for k, v in allowed.items() if k[0].startswith(f"{NAMESPACE}/") and k[1].startswith(f"{NAMESPACE}/")}
    edges = [e for e in graph.edges if e.server != INTERNET_PEER and not e.server.startswith(EXTERNAL_SERVICE_PREFIX)]
    print(f"{variant}: nca allows {sum(len(v) for v in in_namespace.values())} pod-to-pod connections "
          f"(workload pairs x ports) in {NAMESPACE}; the graph has {len(edges)} edges; nca ran {elapsed:.1f}s")
    assert sum(len(v) for v in in_namespace.values()) == len(edges)


def test_the_edges_are_the_stacks(variants: dict[str, SynthResult]) -> None:
    """Spot checks of the derivation, one per source of addresses (the analyzer test covers all)."""
    edges = {(e.client, e.server, e.port) for e in graph_of(variants["default"]).edges}
    assert ("floe-dagster-user-code", "floe-postgres", 5432) in edges  # FLOE_DAGSTER_PG_HOST/_PORT
    assert ("floe-dagster-webserver", "floe-dagster-user-code", 3030) in edges  # workspace.yaml ConfigMap
    assert ("floe-marquez", "floe-postgres", 5432) in edges  # config.yml ConfigMap
    assert ("floe-polaris", "floe-minio", 9000) in edges  # handed over by the init Job (endpointInternal)
    assert not any(c == "floe-polaris-init" and s == "floe-minio" for c, s, _ in edges)  # ... which never calls S3
    assert ("floe-cubestore-router", "floe-cubestore-worker", 9001) in edges  # <pod>.<headless Service>
    assert ("floe-cube", "floe-cubestore-router", 3030) in edges
    assert not any(c == s for c, s, _ in edges)  # one pod per workload by default: no self edges
    two = {(e.client, e.server, e.port) for e in graph_of(variants["two-workers"]).edges}
    assert ("floe-cubestore-worker", "floe-cubestore-worker", 9001) in two  # two workers: pod to pod
    assert not any(c == s and c != "floe-cubestore-worker" for c, s, _ in two)
    assert not any(s == INTERNET_PEER for _, s, _ in edges)  # bundled extensions: no internet


def test_cube_reaches_jaeger_through_its_otlp_env_only_when_tracing(variants: dict[str, SynthResult]) -> None:
    """Cube's spans (issue 17): the edge to Jaeger's OTLP/HTTP port comes from OTEL_EXPORTER_OTLP_ENDPOINT
    in the Cube containers' env, like every other edge; without Jaeger there is no such env and no edge."""
    for cube in ("floe-cube", "floe-cube-refresh-worker"):
        on = graph_of(variants["default"])
        assert [(e.server, e.port) for e in on.servers(cube) if e.server == "floe-jaeger"] == [("floe-jaeger", 4318)]
        off = graph_of(variants["no-jaeger"])
        assert not [e for e in off.servers(cube) if e.server == "floe-jaeger"]
    docs = copy.deepcopy(variants["default"].documents)
    api = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "floe-cube")
    for c in api["spec"]["template"]["spec"]["containers"]:
        c["env"] = [e for e in c["env"] if e["name"] != "OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert not [e for e in derive(docs, NAMESPACE).servers("floe-cube") if e.server == "floe-jaeger"]


def test_init_containers_and_new_workloads_get_edges(variants: dict[str, SynthResult]) -> None:
    """A workload nobody told the policies about (a verification Job here) gets its edges from its
    own wiring: an init container's TCP wait and an env URL."""
    docs = copy.deepcopy(variants["default"].documents)
    job = copy.deepcopy(next(d for d in docs if d["kind"] == "Job"))
    job["metadata"]["name"] = "floe-verify"
    template = job["spec"]["template"]
    template["metadata"]["labels"]["app.kubernetes.io/name"] = "floe-verify"
    spec = template["spec"]
    spec["initContainers"][0]["command"] = ["bash", "-c", "until timeout 2 bash -c '</dev/tcp/floe-postgres/5432'; do sleep 2; done"]
    spec["containers"][0]["env"] = [{"name": "VERIFY_URL", "value": "http://floe-cube:4000/readyz"}]
    docs.append(job)
    edges = {(e.client, e.server, e.port) for e in derive(docs, NAMESPACE).edges}
    assert {("floe-verify", "floe-postgres", 5432), ("floe-verify", "floe-cube", 4000)} <= edges


def test_switched_off_services_leave_no_rule(variants: dict[str, SynthResult]) -> None:
    for variant, gone in (("no-jaeger", "floe-jaeger"), ("no-marquez", "floe-marquez")):
        result = variants[variant]
        text = yaml.safe_dump_all(policies(result))
        assert gone not in text, f"{variant}: a NetworkPolicy still names {gone}"
        pods = [d["spec"]["template"]["metadata"]["labels"] for d in result.documents if d["kind"] in ("Deployment", "StatefulSet", "Job")]
        pods += [d["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] for d in result.documents if d["kind"] == "CronJob"]
        for policy in policies(result):
            selectors = [policy["spec"]["podSelector"]]
            for rule in [*policy["spec"].get("ingress", []), *policy["spec"].get("egress", [])]:
                selectors += [p["podSelector"] for p in [*rule.get("from", []), *rule.get("to", [])] if "podSelector" in p and "namespaceSelector" not in p]
            for selector in selectors:
                match = selector.get("matchLabels") or {}
                assert any(match.items() <= labels.items() for labels in pods), f"{variant}: {policy['metadata']['name']} selects no pod: {match}"


def test_internet_egress_only_when_configured(variants: dict[str, SynthResult]) -> None:
    internet = lambda result: sorted({(e.client, e.port) for e in graph_of(result).edges if e.server == INTERNET_PEER})  # noqa: E731
    assert internet(variants["default"]) == []
    assert internet(variants["download"]) == [(c, p) for c in ("floe-cube", "floe-cube-refresh-worker") for p in (80, 443)]


def test_policies_pass_the_schema_and_every_check(variants: dict[str, SynthResult]) -> None:
    result = variants["default"]
    assert {p["metadata"]["name"] for p in policies(result)} >= {"floe-default-deny", "floe-allow-dns", "floe-postgres"}
    assert check_manifests(policies(result), namespace=NAMESPACE, only=["schema", "names", "labels", "namespace"]) == []
    deny = next(p for p in policies(result) if p["metadata"]["name"] == "floe-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


# --- mutations: the analyzer comparison catches a missing and an over-broad rule -----------------


def _mutated(result: SynthResult, tmp: Path, mutate) -> Path:  # noqa: ANN001 - a callable on the policies
    dist = tmp / "dist"
    shutil.copytree(result.out_dir, dist)
    path = dist / "0000-namespace.k8s.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    mutate({d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"})
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return dist


def test_mutation_missing_rule_is_caught(variants: dict[str, SynthResult], tmp_path: Path) -> None:
    def drop_webserver_from_postgres(policies: dict[str, dict]) -> None:
        for rule in policies["floe-postgres"]["spec"]["ingress"]:
            rule["from"] = [p for p in rule["from"] if p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] != "floe-dagster-webserver"]

    result = variants["default"]
    found = problems(analyze(_mutated(result, tmp_path, drop_webserver_from_postgres), tmp_path), graph_of(result))
    assert found == ["missing: floe/floe-dagster-webserver -> floe/floe-postgres: ['TCP/5432'] not allowed"]


def test_mutation_over_broad_rule_is_caught(variants: dict[str, SynthResult], tmp_path: Path) -> None:
    def any_pod_to_postgres(policies: dict[str, dict]) -> None:
        policies["floe-postgres"]["spec"]["ingress"][0]["from"] = [{"podSelector": {}}]
        policies["floe-cube"]["spec"]["egress"].append({"to": [{"podSelector": {}}]})  # and the egress side

    result = variants["default"]
    found = problems(analyze(_mutated(result, tmp_path, any_pod_to_postgres), tmp_path), graph_of(result))
    assert any(f.startswith("floe/floe-cube -> floe/floe-postgres: allowed ['TCP/5432']; expected []") for f in found), found


def test_mutation_without_default_deny_is_caught(variants: dict[str, SynthResult], tmp_path: Path) -> None:
    result = variants["default"]
    found = problems(analyze(_mutated(result, tmp_path, lambda p: p["floe-default-deny"]["spec"].update(policyTypes=["Egress"])), tmp_path), graph_of(result))
    # Pods that accept no connection (the daemon, the refresh worker, the Jobs) would accept all.
    assert any(f"{STRANGER_NAMESPACE}/stranger -> floe/floe-dagster-daemon: allowed ['ALL']" in f for f in found), found


def test_mutation_internet_for_all_is_caught(variants: dict[str, SynthResult], tmp_path: Path) -> None:
    def internet_for_postgres(policies: dict[str, dict]) -> None:
        policies["floe-postgres"]["spec"].setdefault("egress", []).append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
        policies["floe-postgres"]["spec"]["policyTypes"] = ["Ingress", "Egress"]

    result = variants["default"]
    found = problems(analyze(_mutated(result, tmp_path, internet_for_postgres), tmp_path), graph_of(result))
    assert found and all(f.startswith("over-broad: floe/floe-postgres -> ") for f in found), found


def test_mutation_external_service_rules_are_caught(variants: dict[str, SynthResult], tmp_path: Path) -> None:
    """The external variant: a database rule widened from its CIDR to any address, and the S3 rule
    of the Cube Store router dropped, are both found."""
    def widen_and_drop(policies: dict[str, dict]) -> None:
        for rule in policies["floe-polaris"]["spec"]["egress"]:
            for peer in rule.get("to", []):
                if peer.get("ipBlock", {}).get("cidr") == EXTERNAL["postgres"]["external"]["cidr"]:
                    peer["ipBlock"] = {"cidr": "0.0.0.0/0"}
        router = policies["floe-cubestore-router"]["spec"]
        router["egress"] = [r for r in router["egress"] if not any("ipBlock" in p for p in r.get("to", []))]

    result = variants["cluster-external"]
    found = problems(analyze(_mutated(result, tmp_path, widen_and_drop), tmp_path), graph_of(result))
    assert any(f.startswith("over-broad: floe/floe-polaris -> ") and "TCP/6432" in f for f in found), found
    assert "missing: floe/floe-cubestore-router -> external-service:s3 (0.0.0.0/0): TCP/443 not allowed" in found, found


# --- the doc ------------------------------------------------------------------------------------


def test_architecture_doc_lists_the_edges(variants: dict[str, SynthResult]) -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    assert TABLE_BEGIN in text and TABLE_END in text, "docs/architecture.md lost its generated edge table markers"
    documented = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip()
    table = edge_table(graph_of(variants["default"]))
    assert documented == table, (
        "docs/architecture.md's 'who talks to whom' table is out of date; replace the lines between the "
        f"markers with the output of `.venv/bin/python -m constructs.network`:\n{table}"
    )


def test_endpoints_check_reads_init_container_tcp_waits(variants: dict[str, SynthResult]) -> None:
    """The /dev/tcp/<host>/<port> waits the edges come from are wiring too: a wrong one fails synth."""
    docs = copy.deepcopy(variants["default"].documents)
    polaris = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "floe-polaris")
    wait = next(c for c in polaris["spec"]["template"]["spec"]["initContainers"] if c["name"] == "wait-for-deps")
    wait["command"] = ["bash", "-c", "until timeout 2 bash -c '</dev/tcp/floe-postgress/5432'; do sleep 2; done"]
    found = check_manifests(docs, namespace=NAMESPACE, only=["endpoints"])
    assert [v.message for v in found] == ["container wait-for-deps command: floe-postgress:5432 names no Service in dist/"]
