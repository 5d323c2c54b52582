"""The deploy preflight with ``ingress.gateway`` (issue 19 item 3): before anything is applied, the
cluster must have the Gateway API CRDs and the declared Gateway, with a listener that admits the UIs'
HTTPRoutes from the stack's namespace. Every stand-in Gateway below validates against the Gateway
API's own CRD (the vendored v1.3.0 schema and its CEL rules), so the decisions are tested on shapes
a real API server would hold."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from floe.deploy import preflight
from floe.deploy.kubectl import Completed, Kubectl
from floe.deploy.manifests import Stack
from floe.manifest_checks import cel_rule_violations, crd_defaulted, crd_schema, crd_validator
from floe.synth import synthesize
from tests.deploy.conftest import FakeRunner
from tests.infra.gateway_variant import GATEWAY_NAMESPACE, gateway_cluster_config

CRDS = frozenset(preflight.GATEWAY_API_CRDS.values())
KEY = f"{GATEWAY_NAMESPACE}/shared-gateway"


def gateway(*listeners: dict) -> dict:
    """A Gateway as the API server returns it (CRD defaults filled in), after checking it against
    the upstream CRD, so a stand-in cannot take a shape no cluster would hold."""
    doc = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "shared-gateway", "namespace": GATEWAY_NAMESPACE},
        "spec": {"gatewayClassName": "example", "listeners": list(listeners)},
    }
    errors = [e.message for e in crd_validator("Gateway", doc["apiVersion"]).iter_errors(doc)]
    schema = crd_schema("Gateway", doc["apiVersion"])
    stored = crd_defaulted(doc, schema)
    errors += list(cel_rule_violations(stored, schema))
    assert not errors, errors
    return stored


def https(name: str = "https", **allowed: object) -> dict:
    listener = {"name": name, "protocol": "HTTPS", "port": 443, "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "floe-ingress-tls", "namespace": "floe"}]}}
    if allowed:
        listener["allowedRoutes"] = allowed
    return listener


def http(name: str = "http", **allowed: object) -> dict:
    listener = {"name": name, "protocol": "HTTP", "port": 80}
    if allowed:
        listener["allowedRoutes"] = allowed
    return listener


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    folder = tmp_path_factory.mktemp("preflight-gateway")
    result = synthesize(gateway_cluster_config(folder), folder / "dist", root=folder)
    return Stack.load(result.out_dir)


def decide(stack: Stack, state: preflight.GatewayApiState) -> preflight.Check:
    phases = list(stack.phases)
    needed = {preflight.GATEWAY_API_CRDS[o["kind"]] for o in preflight.gateway_objects(phases)}
    labels = {**stack.namespace_object["metadata"]["labels"], "kubernetes.io/metadata.name": stack.namespace}
    return preflight.check_gateway_api(needed, preflight.route_parents(phases), state, stack.namespace, labels)


ALL = {"namespaces": {"from": "All"}}
CASES = {
    # name: (installed CRDs, the Gateway or None, ok, fragment of the message)
    "admitted from all namespaces": (CRDS, lambda: gateway(https(**ALL), http(**ALL)), True, "admitted by gateway-system/shared-gateway listener https (HTTPS)"),
    "admitted by a selector on the namespace name": (
        CRDS, lambda: gateway(https(namespaces={"from": "Selector", "selector": {"matchLabels": {"kubernetes.io/metadata.name": "floe"}}})), True, "listener https",
    ),
    "admitted by a selector on a namespace label": (
        CRDS, lambda: gateway(https(namespaces={"from": "Selector", "selector": {"matchExpressions": [{"key": "pod-security.kubernetes.io/enforce", "operator": "In", "values": ["restricted"]}]}})), True, "listener https",
    ),
    "no CRDs": (frozenset(), lambda: None, False, "no CRD httproutes.gateway.networking.k8s.io, referencegrants.gateway.networking.k8s.io: install the Gateway API's standard channel"),
    "no ReferenceGrant CRD": (frozenset({"httproutes.gateway.networking.k8s.io"}), lambda: gateway(https(**ALL)), False, "no CRD referencegrants"),
    "no such Gateway": (CRDS, lambda: None, False, f"Gateway {KEY} not found"),
    "no such listener": (CRDS, lambda: gateway(http(**ALL), https("websecure", **ALL)), False, "has no listener 'https' (it has: http, websecure)"),
    "routes from its own namespace only (the default)": (CRDS, lambda: gateway(https()), False, "allowedRoutes.namespaces.from: Same"),
    "a selector that does not match": (
        CRDS, lambda: gateway(https(namespaces={"from": "Selector", "selector": {"matchLabels": {"team": "platform"}}})), False, "does not match namespace floe",
    ),
    "GRPCRoutes only": (CRDS, lambda: gateway(https(namespaces={"from": "All"}, kinds=[{"kind": "GRPCRoute"}])), False, "admits only GRPCRoute, not HTTPRoute"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gateway_api_preflight(stack: Stack, case: str) -> None:
    installed, make, ok, fragment = CASES[case]
    found = make()
    check = decide(stack, preflight.GatewayApiState(installed, {KEY: found}))
    assert check.ok is ok and check.blocking
    assert fragment in check.message, check.message


def test_a_tls_listener_takes_no_httproute(stack: Stack) -> None:
    passthrough = {"name": "https", "protocol": "TLS", "port": 443, "tls": {"mode": "Passthrough"}, "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": [{"kind": "TLSRoute"}]}}
    check = decide(stack, preflight.GatewayApiState(CRDS, {KEY: gateway(passthrough)}))
    assert not check.ok and "speaks TLS, not HTTP or HTTPS" in check.message


def test_gather_reads_the_crds_and_the_declared_gateway(stack: Stack) -> None:
    """What gather asks kubectl, and how it reads the answers: the CRDs by name, then the Gateway
    each route attaches to; nothing when the phases hold no Gateway API object."""
    served = gateway(https(**ALL))
    runner = FakeRunner(rules=[
        (lambda argv: "customresourcedefinitions" in argv, lambda argv: Completed(tuple(argv), 0, "".join(f"customresourcedefinition.apiextensions.k8s.io/{n}\n" for n in sorted(CRDS)), "")),
        (lambda argv: "gateways.gateway.networking.k8s.io" in argv, lambda argv: Completed(tuple(argv), 0, json.dumps(served), "")),
    ])
    state = preflight.gather_gateway_api(Kubectl(runner=runner), stack.phases)
    assert state == preflight.GatewayApiState(CRDS, {KEY: served})
    assert runner.calls == [
        ["kubectl", "get", "customresourcedefinitions", *sorted(CRDS), "-o", "name", "--ignore-not-found"],
        ["kubectl", "get", "gateways.gateway.networking.k8s.io", "shared-gateway", "-n", GATEWAY_NAMESPACE, "-o", "json", "--ignore-not-found"],
    ]
    assert decide(stack, state).ok
    # Not found: kubectl prints nothing with --ignore-not-found.
    empty = FakeRunner(rules=[(lambda argv: "customresourcedefinitions" in argv, lambda argv: Completed(tuple(argv), 0, "", ""))])
    assert preflight.gather_gateway_api(Kubectl(runner=empty), stack.phases) == preflight.GatewayApiState(frozenset(), {})
    without = [dataclasses.replace(p, objects=tuple(o for o in p.objects if o["kind"] not in preflight.GATEWAY_API_CRDS)) for p in stack.phases]
    assert preflight.gather_gateway_api(Kubectl(runner=FakeRunner()), without) is None


def test_the_stand_in_gateways_are_checked_against_the_crd() -> None:
    """The helper refuses a Gateway the CRD refuses (openAPIV3Schema and CEL), so the cases above
    cannot rest on an impossible Gateway."""
    with pytest.raises(AssertionError, match="is not one of"):
        gateway({"name": "https", "protocol": "HTTPS", "port": 443, "allowedRoutes": {"namespaces": {"from": "Everywhere"}}})
    # TLS termination without a certificate: the rule reads fields that are absent, an evaluation
    # error, which rejects the object on an API server too ("no such key").
    with pytest.raises(AssertionError, match=r"size\(self.certificateRefs\) > 0 \|\| size\(self.options\) > 0"):
        gateway({"name": "https", "protocol": "HTTPS", "port": 443, "tls": {"mode": "Terminate"}})
    with pytest.raises(AssertionError, match="tls mode must be Terminate for protocol HTTPS"):
        gateway({"name": "https", "protocol": "HTTPS", "port": 443, "tls": {"mode": "Passthrough"}})
