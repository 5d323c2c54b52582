"""DNS egress peers typed (network.dns, issue 18 item 7): the default is today's CoreDNS pod
selector; NodeLocal DNSCache and other resolvers get their addresses, OpenShift its own pods and
port; a config with no peer at all is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from floe.config import StackConfig
from floe.manifest_checks import check_manifests
from tests.infra.conftest import synth
from tests.support.manifests import find


def dns_rule(tmp_path: Path, **overrides: object) -> dict:
    result = synth(tmp_path, **overrides)
    assert check_manifests(result.documents, namespace="floe", only=["schema"]) == []
    (rule,) = find(result.documents, "NetworkPolicy", "floe-allow-dns")["spec"]["egress"]
    return rule


def test_default_is_the_coredns_pods(tmp_path: Path) -> None:
    rule = dns_rule(tmp_path)
    assert rule["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                           "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert rule["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]


def test_nodelocal_dnscache_addresses_are_added(tmp_path: Path) -> None:
    rule = dns_rule(tmp_path, network__dns__cidrs=["169.254.20.10/32", "10.96.0.10/32"])
    assert rule["to"][1:] == [{"ipBlock": {"cidr": "169.254.20.10/32"}}, {"ipBlock": {"cidr": "10.96.0.10/32"}}]
    assert "podSelector" in rule["to"][0]


def test_openshift_dns(tmp_path: Path) -> None:
    rule = dns_rule(tmp_path, network__dns__namespace="openshift-dns", network__dns__pod_labels={"dns.operator.openshift.io/daemonset-dns": "default"}, network__dns__port=5353)
    assert rule["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}},
                           "podSelector": {"matchLabels": {"dns.operator.openshift.io/daemonset-dns": "default"}}}]
    assert {p["port"] for p in rule["ports"]} == {5353}


def test_no_dns_peer_is_refused() -> None:
    with pytest.raises(ValueError, match="no peer would block every lookup"):
        StackConfig.model_validate({"network": {"dns": {"pod_labels": {}}}})
    StackConfig.model_validate({"network": {"dns": {"namespace": None, "cidrs": ["169.254.20.10/32"]}}})
