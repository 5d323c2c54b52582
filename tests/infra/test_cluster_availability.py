"""The cluster profile (config/cluster.yaml) keeps serving on a real multi-node cluster (issue 11,
items 3 and 4): its pods fit three 4 CPU / 16 GiB nodes with every hard topology spread satisfied,
still fit on two when a node is drained, every PodDisruptionBudget lets a drain evict a pod, and the
Ingress and the external Cube SQL Service are wired and admitted by the derived NetworkPolicies.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from constructs.network import EXTERNAL_PEER, INGRESS_PEER_PREFIX, derive
from floe.capacity import CLUSTER_NODE, Node, PodLoad, pack
from floe.config import StackConfig, load_config
from floe.manifest_checks import _allowed_evictions, check_manifests
from floe.synth import SynthResult, synthesize
from tests.infra.conftest import REPO, write_fake_credentials

THREE_NODES = [Node(f"node-{i}", CLUSTER_NODE.cpu_millicores, CLUSTER_NODE.memory_bytes) for i in range(3)]
REPLICATED = {
    "Deployment/floe-polaris", "Deployment/floe-marquez", "Deployment/floe-marquez-web",
    "Deployment/floe-dagster-webserver", "Deployment/floe-cube", "StatefulSet/floe-cubestore-worker",
}


def cluster_config(folder: Path) -> StackConfig:
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    return StackConfig.model_validate(data)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    folder = tmp_path_factory.mktemp("cluster")
    return synthesize(cluster_config(folder), folder / "dist", root=folder)


def workloads(documents: list[dict]) -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents if d["kind"] in ("Deployment", "StatefulSet")}


def test_the_cluster_profile_replicates_the_stateless_services(cluster: SynthResult) -> None:
    found = {name for name, d in workloads(cluster.documents).items() if d["spec"].get("replicas", 1) > 1}
    assert found == REPLICATED
    # The router lists exactly the worker pods the StatefulSet runs.
    router = workloads(cluster.documents)["Deployment/floe-cubestore-router"]
    env = {v["name"]: v.get("value") for v in router["spec"]["template"]["spec"]["containers"][0]["env"]}
    workers = workloads(cluster.documents)["StatefulSet/floe-cubestore-worker"]["spec"]["replicas"]
    assert env["CUBESTORE_WORKERS"].split(",") == [f"floe-cubestore-worker-{i}.floe-cubestore-workers:9001" for i in range(workers)]


def test_the_cluster_profile_fits_three_nodes_with_the_spread_satisfied(cluster: SynthResult) -> None:
    packing = pack(cluster.documents, THREE_NODES)
    assert packing.fits, packing.summary()
    for name in REPLICATED:
        counts = packing.spread_of(name)
        assert max(counts.values()) - min(counts.values()) <= 1, (name, counts)
        assert max(counts.values()) == 1, f"{name}: two replicas share a node: {counts}"


def test_every_disruption_budget_allows_an_eviction_that_can_reschedule(cluster: SynthResult) -> None:
    by_name = workloads(cluster.documents)
    budgets = [d for d in cluster.documents if d["kind"] == "PodDisruptionBudget"]
    assert {f"{k}" for k in by_name if by_name[k]["metadata"]["name"] in {b["metadata"]["name"] for b in budgets}} == REPLICATED
    for budget in budgets:
        owner = next(d for k, d in by_name.items() if d["metadata"]["name"] == budget["metadata"]["name"])
        assert _allowed_evictions(budget["spec"], owner["spec"]["replicas"]) >= 1, budget["metadata"]["name"]
    # A drained node is no spread domain (nodeTaintsPolicy Honor): everything fits the other two.
    drained = pack(cluster.documents, THREE_NODES[:2])
    assert drained.fits, drained.summary()


def test_the_packer_can_say_no(cluster: SynthResult) -> None:
    """Three nodes of 500m / 1 GiB allocatable cannot hold the profile: the computation above is
    not vacuous. One node of the full size can (a single node is a single spread
    domain, where every replica may go)."""
    quarter = [Node(f"small-{i}", 500, 2**30) for i in range(3)]
    assert not pack(cluster.documents, quarter).fits
    assert pack(cluster.documents, THREE_NODES[:1]).fits


def test_the_packer_honours_max_skew() -> None:
    small = Node("small", 100, 2**20)
    big = Node("big", 10_000, 100 * 2**30)
    pods = [{"kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": 3, "template": {"spec": {
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}],
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
    }}}}]
    # Only "big" has room: the first pod lands there; a second would make the skew 2 - 0 > 1.
    assert len(pack(pods, [big, small]).unplaced) == 2
    soft = copy.deepcopy(pods)
    soft[0]["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["whenUnsatisfiable"] = "ScheduleAnyway"
    assert pack(soft, [big, small]).fits
    assert PodLoad("x", 1, 1, 1).max_skew == 1


def test_ingress_and_external_sql_are_checked_and_admitted(cluster: SynthResult) -> None:
    ingress = next(d for d in cluster.documents if d["kind"] == "Ingress")
    assert all(rule["host"] for rule in ingress["spec"]["rules"])
    assert ingress["spec"]["tls"][0]["secretName"] == "floe-ingress-tls"
    assert check_manifests(cluster.documents, namespace="floe", only=["schema", "ingress", "replicas"]) == []
    graph = derive(cluster.documents, "floe")
    from_controller = {(e.server, e.port) for e in graph.edges if e.client.startswith(INGRESS_PEER_PREFIX)}
    assert from_controller == {
        ("floe-dagster-webserver", 3000), ("floe-cube", 4000), ("floe-marquez-web", 3000),
        ("floe-jaeger", 16686), ("floe-minio", 9001),
    }
    assert {(e.server, e.port) for e in graph.edges if e.client == EXTERNAL_PEER} == {("floe-cube", 15432)}
    sql = next(d for d in cluster.documents if d["kind"] == "Service" and d["metadata"]["name"] == "floe-cube-sql")
    assert sql["spec"]["type"] == "LoadBalancer"
    policy = next(d for d in cluster.documents if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "floe-jaeger")
    controller = [r for r in policy["spec"]["ingress"] if any("namespaceSelector" in p for p in r["from"])]
    assert [r["ports"] for r in controller] == [[{"port": 16686, "protocol": "TCP"}]]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/component": "controller", "app.kubernetes.io/name": "ingress-nginx"}},
    } in controller[0]["from"]
