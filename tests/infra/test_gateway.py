"""The UIs through the Gateway API (issue 19 item 3): HTTPRoutes attached to a declared, existing
Gateway instead of the Ingress, with the same hosts, path and backends; validated against the Gateway
API's published CRDs (vendored in floe/schemas/gateway-api/: their openAPIV3Schema with jsonschema,
their CEL rules with cel-python); wired (the ``gateway`` check) and
admitted by the derived NetworkPolicies for the Gateway's data-plane pods only, as a real policy
analyzer (IBM's nca) computes it."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import constructs.gateway as gateway_construct
from constructs.network import GATEWAY_PEER_PREFIX, INGRESS_PEER_PREFIX, derive
from floe.manifest_checks import CRD_DIR, CRD_FILES, GATEWAY_API_RELEASE, check_manifests
from floe.synth import ChecksFailed, SynthResult, check_options, synthesize
from tests.infra.conftest import REPO, write_fake_credentials
from tests.infra.gateway_variant import DATA_PLANE_LABELS, GATEWAY, GATEWAY_NAMESPACE, gateway_cluster_config
from tests.infra.test_cluster_availability import cluster_config
from tests.infra.test_network_policies import STRANGER_NAMESPACE, analyze

NAMESPACE = "floe"
UI_BACKENDS = {
    ("floe-dagster-webserver", 3000), ("floe-cube", 4000), ("floe-marquez-web", 3000), ("floe-jaeger", 16686), ("floe-minio", 9001),
}


@pytest.fixture(scope="module")
def gateway_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    folder = tmp_path_factory.mktemp("gateway")
    return synthesize(gateway_cluster_config(folder), folder / "dist", root=folder)


@pytest.fixture(scope="module")
def ingress_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    folder = tmp_path_factory.mktemp("ingress")
    return synthesize(cluster_config(folder), folder / "dist", root=folder)


def of_kind(result: SynthResult | list[dict], kind: str) -> list[dict]:
    documents = result.documents if isinstance(result, SynthResult) else result
    return [d for d in documents if d["kind"] == kind]


def declared(folder: Path) -> dict:
    return check_options(gateway_cluster_config(folder), generated=True)["gateway"]


# --- the vendored schema ------------------------------------------------------------------------


def test_the_vendored_crds_are_upstreams_bytes() -> None:
    """The files are the release's, unmodified: their SHA-256 are the ones the README records, and
    each says it is the standard channel of the pinned release."""
    readme = (CRD_DIR / "README.md").read_text()
    recorded = dict(re.findall(r"`(gateway\.networking\.k8s\.io_\w+\.yaml)` ([0-9a-f]{64})", readme))
    assert set(recorded) == {p.name for p in CRD_FILES.values()}
    for path in CRD_FILES.values():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded[path.name], path.name
        crd = yaml.safe_load(path.read_text())
        annotations = crd["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == GATEWAY_API_RELEASE
        assert annotations["gateway.networking.k8s.io/channel"] == "standard"
    assert f"**{GATEWAY_API_RELEASE}**" in readme and (CRD_DIR / "LICENSE").read_text().split()[:4] == ["Apache", "License", "Version", "2.0,"]


# --- the routes mirror the Ingress --------------------------------------------------------------


def test_routes_carry_the_ingress_hosts_paths_and_backends(gateway_synth: SynthResult, ingress_synth: SynthResult) -> None:
    """Same config, two APIs: every Ingress rule (host, /, Service:port) is exactly one HTTPRoute
    (hostname, PathPrefix /, Service backendRef:port), attached to the declared Gateway's listener."""
    (ingress,) = of_kind(ingress_synth, "Ingress")
    want = {
        (rule["host"], path["path"], path["backend"]["service"]["name"], path["backend"]["service"]["port"]["number"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    routes = of_kind(gateway_synth, "HTTPRoute")
    got = set()
    for route in routes:
        spec = route["spec"]
        assert spec["parentRefs"] == [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": GATEWAY_NAMESPACE, "name": "shared-gateway", "sectionName": "https"}
        ]
        (host,) = spec["hostnames"]
        (rule,) = spec["rules"]
        assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
        got |= {(host, rule["matches"][0]["path"]["value"], b["name"], b["port"]) for b in rule["backendRefs"]}
    assert got == want and len(routes) == len(want) == 5
    assert not of_kind(gateway_synth, "Ingress")
    # TLS terminates on the Gateway: the certificate's Secret stays in the namespace, granted to
    # Gateways of the Gateway's namespace, that Secret only.
    (grant,) = of_kind(gateway_synth, "ReferenceGrant")
    assert grant["metadata"]["namespace"] == NAMESPACE
    assert grant["spec"] == {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": GATEWAY_NAMESPACE}],
        "to": [{"group": "", "kind": "Secret", "name": ingress["spec"]["tls"][0]["secretName"]}],
    }


def test_every_check_passes_with_the_declared_gateway(gateway_synth: SynthResult, tmp_path: Path) -> None:
    options = check_options(gateway_cluster_config(tmp_path), generated=True)
    assert options["gateway"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": GATEWAY_NAMESPACE, "name": "shared-gateway", "sectionName": "https"}
    assert check_manifests(gateway_synth.documents, **options) == []


def test_no_grant_without_a_cross_namespace_certificate(tmp_path: Path) -> None:
    """A Gateway in the stack's own namespace reads the Secret without a grant; no tls_secret, no
    grant either (the certificate is the Gateway owner's). Without section_name the parentRef names
    the Gateway only."""
    config = gateway_cluster_config(tmp_path, namespace=NAMESPACE, section_name=None)
    result = synthesize(config, tmp_path / "dist", root=tmp_path)
    assert not of_kind(result, "ReferenceGrant")
    assert all(r["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": NAMESPACE, "name": "shared-gateway"}] for r in of_kind(result, "HTTPRoute"))
    data = config.model_dump(mode="json")
    data["ingress"]["tls_secret"] = None
    data["ingress"]["gateway"]["namespace"] = GATEWAY_NAMESPACE
    from floe.config import StackConfig

    plain = synthesize(StackConfig.model_validate(data), tmp_path / "dist-plain", root=tmp_path)
    assert not of_kind(plain, "ReferenceGrant") and len(of_kind(plain, "HTTPRoute")) == 5


@pytest.mark.parametrize(
    ("path", "message"),
    [
        # openAPIV3Schema: an Ingress-style path type.
        ({"type": "Prefix", "value": "/"}, "'Prefix' is not one of ['Exact', 'PathPrefix', 'RegularExpression']"),
        # The CRD's CEL rules (x-kubernetes-validations), evaluated with cel-python.
        ({"type": "PathPrefix", "value": "//ui"}, "must not contain '//' when type one of ['Exact', 'PathPrefix'] at /spec/rules/0/matches/0/path"),
    ],
    ids=["schema", "cel"],
)
def test_an_invalid_route_fails_the_synth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: dict, message: str) -> None:
    """The synth's own schema check covers HTTPRoute: a route the CRD refuses stops the synth, and
    no dist/ is written."""
    monkeypatch.setattr(gateway_construct, "ROUTE_MATCH", {"path": path})
    out = tmp_path / "dist"
    with pytest.raises(ChecksFailed) as failed:
        synthesize(gateway_cluster_config(tmp_path), out, root=tmp_path)
    messages = [str(v) for v in failed.value.violations]
    assert len(messages) == 5 and all(m.startswith("[schema] HTTPRoute/floe-ui-") for m in messages), messages
    assert f"Gateway API {GATEWAY_API_RELEASE} CRD: {message}" in messages[0]
    assert not out.exists()


# --- kubectl apply of an unchanged dist/ changes nothing -----------------------------------------


def api_server_defaults(doc: object, schema: dict) -> object:
    """``doc`` as the API server stores it: every ``default`` of the CRD schema filled in where its
    parent object exists (structural defaulting, apiextensions-apiserver), lists included."""
    if isinstance(doc, dict):
        out = dict(doc)
        for name, sub in (schema.get("properties") or {}).items():
            if name in out:
                out[name] = api_server_defaults(out[name], sub)
            elif "default" in sub:
                out[name] = api_server_defaults(copy.deepcopy(sub["default"]), sub)
        return out
    if isinstance(doc, list) and isinstance(schema.get("items"), dict):
        return [api_server_defaults(item, schema["items"]) for item in doc]
    return doc


def merge_patch(old: object, new: object) -> object:
    """RFC 7386: the JSON merge patch turning ``old`` into ``new`` (a list is one value)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value) if isinstance(old[key], dict) and isinstance(value, dict) else value
    return patch


def _keep(patch: dict, nulls: bool) -> dict:
    out = {}
    for key, value in patch.items():
        if isinstance(value, dict):
            sub = _keep(value, nulls)
            if sub:
                out[key] = sub
        elif (value is None) == nulls:
            out[key] = value
    return out


def kubectl_apply_patch(last_applied: dict, ours: dict, live: dict) -> dict:
    """What client-side ``kubectl apply`` sends for a custom resource: apimachinery's
    ``jsonmergepatch.CreateThreeWayJSONMergePatch`` (additions and changes from live to ours,
    deletions from last-applied to ours); ``{}`` is ``unchanged``."""
    changes = _keep(merge_patch(live, ours), nulls=False)
    deletions = _keep(merge_patch(last_applied, ours), nulls=True)
    return {**deletions, **changes}


def test_reapplying_the_routes_changes_nothing(gateway_synth: SynthResult) -> None:
    """Re-applying an unchanged dist/ sends an empty patch for each Gateway API object, against the
    object the API server stored (the CRD's defaults filled in); with a backendRef's weight left to
    the API server's default, kubectl would send the whole rules list on every apply."""
    from floe.manifest_checks import crd_schema

    docs = of_kind(gateway_synth, "HTTPRoute") + of_kind(gateway_synth, "ReferenceGrant")
    for doc in docs:
        live = api_server_defaults(doc, crd_schema(doc["kind"], doc["apiVersion"]))
        assert kubectl_apply_patch(doc, doc, live) == {}, doc["metadata"]["name"]
    lean = copy.deepcopy(route(gateway_synth.documents))
    lean["spec"]["rules"][0]["backendRefs"][0].pop("weight")
    live = api_server_defaults(lean, crd_schema("HTTPRoute", lean["apiVersion"]))
    assert live["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1
    assert list(kubectl_apply_patch(lean, lean, live)["spec"]) == ["rules"]


# --- mutations: the checks fail on broken wiring -------------------------------------------------


def route(documents: list[dict], ui: str = "jaeger") -> dict:
    return next(d for d in documents if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == f"floe-ui-{ui}")


def backend(documents: list[dict], ui: str = "jaeger") -> dict:
    return route(documents, ui)["spec"]["rules"][0]["backendRefs"][0]


def grant(documents: list[dict]) -> dict:
    return next(d for d in documents if d["kind"] == "ReferenceGrant")


MUTATIONS: dict[str, list[tuple[str, Callable[[list[dict]], object], str]]] = {
    "gateway": [
        ("another Gateway", lambda d: route(d)["spec"]["parentRefs"][0].update(name="other-gateway"), "is not the declared Gateway"),
        ("the Gateway's namespace left out", lambda d: route(d)["spec"]["parentRefs"][0].pop("namespace"), "parentRef Gateway floe/shared-gateway listener https is not the declared"),
        ("another listener", lambda d: route(d)["spec"]["parentRefs"][0].update(sectionName="http"), "listener http is not the declared"),
        ("every listener", lambda d: route(d)["spec"]["parentRefs"][0].pop("sectionName"), "is not the declared Gateway"),
        ("a Service as parent", lambda d: route(d)["spec"]["parentRefs"][0].update(group="", kind="Service"), "is not a Gateway"),
        ("no parent", lambda d: route(d)["spec"].update(parentRefs=[]), "attaches to nothing"),
        ("no hostnames", lambda d: route(d)["spec"].pop("hostnames"), "catch every host"),
        ("a host twice", lambda d: route(d)["spec"].update(hostnames=route(d, "cube")["spec"]["hostnames"]), "is also routed by"),
        ("backend names no Service", lambda d: backend(d).update(name="floe-jaeger-ui"), "Service 'floe-jaeger-ui' is not in dist/"),
        ("backend port the Service lacks", lambda d: backend(d).update(port=16687), "has no port 16687"),
        ("backend without port", lambda d: backend(d).pop("port"), "needs a port"),
        ("backend in another namespace", lambda d: backend(d).update(namespace="observability"), "not the stack's floe"),
        ("backend headless", lambda d: backend(d, "cube").update(name="floe-cubestore-workers", port=9001), "is headless"),
        ("backend not a Service", lambda d: backend(d).update(group="example.com", kind="Backend"), "not a Service"),
        ("no backends", lambda d: route(d)["spec"]["rules"][0].pop("backendRefs"), "routes nothing"),
        ("grant to the stack's own namespace", lambda d: grant(d)["spec"]["from"][0].update(namespace=NAMESPACE), "needs no grant"),
        ("grant to another namespace", lambda d: grant(d)["spec"]["from"][0].update(namespace="kube-system"), "not the declared Gateway's gateway-system"),
        ("grant of every Secret", lambda d: grant(d)["spec"]["to"][0].pop("name"), "only the one certificate Secret"),
        ("grant from routes", lambda d: grant(d)["spec"]["from"][0].update(kind="HTTPRoute"), "only the declared Gateway needs a grant"),
    ],
    "apply": [
        ("backendRef weight left to the API server", lambda d: backend(d).pop("weight"), "leaves out /spec/rules/0/backendRefs/0/weight, which the CRD defaults"),
    ],
    "schema": [
        ("Ingress path type", lambda d: route(d)["spec"]["rules"][0]["matches"][0]["path"].update(type="Prefix"), "'Prefix' is not one of"),
        ("Ingress-style backend", lambda d: route(d)["spec"]["rules"][0].update(backend={"service": {"name": "floe-jaeger"}}), "'backend' was unexpected"),
        ("port as a name", lambda d: backend(d).update(port="http"), "'http' is not of type 'integer'"),
        ("host not a DNS name", lambda d: route(d)["spec"].update(hostnames=["Traces_UI"]), "'Traces_UI' does not match"),
        ("unknown metadata field", lambda d: route(d)["metadata"].update(label={"a": "b"}), "'label' was unexpected"),
        ("label value not a string", lambda d: route(d)["metadata"]["labels"].update(replicas=2), "2 is not of type 'string'"),
        ("version the CRD does not serve", lambda d: route(d).update(apiVersion="gateway.networking.k8s.io/v1alpha2"), "not served at gateway.networking.k8s.io/v1alpha2"),
        ("a kind not vendored", lambda d: route(d).update(kind="GRPCRoute"), "no CRD for kind GRPCRoute"),
        ("grant of an unknown field", lambda d: grant(d)["spec"]["to"][0].update(namespace=NAMESPACE), "'namespace' was unexpected"),
        # The CRD's CEL rules.
        ("path with //", lambda d: route(d)["spec"]["rules"][0]["matches"][0]["path"].update(value="/ui//x"), "must not contain '//'"),
        ("relative path", lambda d: route(d)["spec"]["rules"][0]["matches"][0]["path"].update(value="ui"), "must be an absolute path and start with '/'"),
        ("Service backendRef without port", lambda d: backend(d).pop("port"), "Must have port for Service reference"),
        ("the same parent twice", lambda d: route(d)["spec"]["parentRefs"].append(dict(route(d)["spec"]["parentRefs"][0])), "sectionName must be unique"),
        ("redirect filter and backends", lambda d: route(d)["spec"]["rules"][0].update(
            filters=[{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]), "RequestRedirect filter must not be used together with backendRefs"),
    ],
}


@pytest.mark.parametrize(
    ("check", "mutate", "message"),
    [pytest.param(check, fn, message, id=f"{check}: {label}") for check, cases in MUTATIONS.items() for label, fn, message in cases],
)
def test_gateway_checks_fire_on_broken_wiring(gateway_synth: SynthResult, tmp_path: Path, check: str, mutate: Callable, message: str) -> None:
    documents = copy.deepcopy(gateway_synth.documents)
    gateway = declared(tmp_path)
    assert check_manifests(documents, namespace=NAMESPACE, gateway=gateway, only=[check]) == []
    mutate(documents)
    violations = check_manifests(documents, namespace=NAMESPACE, gateway=gateway, only=[check])
    assert any(message in str(v) for v in violations), violations


# --- NetworkPolicies: the Gateway's data-plane pods, to the UI ports only --------------------------


def test_data_plane_reaches_exactly_the_ui_backends(gateway_synth: SynthResult) -> None:
    graph = derive(gateway_synth.documents, NAMESPACE)
    peer = f"{GATEWAY_PEER_PREFIX}{GATEWAY_NAMESPACE}"
    assert {(e.server, e.port) for e in graph.edges if e.client == peer} == UI_BACKENDS
    assert graph.peers[peer] == {"namespace": GATEWAY_NAMESPACE, "labels": DATA_PLANE_LABELS}
    assert not any(e.client.startswith(INGRESS_PEER_PREFIX) for e in graph.edges)  # no ingress controller left admitted
    jaeger = next(d for d in gateway_synth.documents if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "floe-jaeger")
    data_plane = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": GATEWAY_NAMESPACE}}, "podSelector": {"matchLabels": DATA_PLANE_LABELS}}
    admitting = [r for r in jaeger["spec"]["ingress"] if data_plane in r["from"]]
    assert [r["ports"] for r in admitting] == [[{"port": 16686, "protocol": "TCP"}]]  # the UI port, not OTLP's
    # Namespace AND labels in one peer, never either alone.
    assert not [p for r in jaeger["spec"]["ingress"] for p in r["from"] if "namespaceSelector" in p and p != data_plane]
    # The peer comes from the route: without its data-plane annotation nothing could be admitted.
    broken = copy.deepcopy(gateway_synth.documents)
    route(broken)["metadata"]["annotations"].pop(gateway_construct.DATA_PLANE_NAMESPACE_ANNOTATION)
    with pytest.raises(ValueError, match="floe-ui-jaeger: no floe.dev/gateway-data-plane-namespace annotation"):
        derive(broken, NAMESPACE)


#: The Gateway's namespace as a cluster runs it: its data-plane pods (the declared labels) and
#: another pod of the same namespace (e.g. the implementation's controller) with other labels.
GATEWAY_WORLD = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {GATEWAY_NAMESPACE}, labels: {{kubernetes.io/metadata.name: {GATEWAY_NAMESPACE}}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: proxy, namespace: {GATEWAY_NAMESPACE}}}
spec:
  selector: {{matchLabels: {DATA_PLANE_LABELS}}}
  template:
    metadata: {{labels: {DATA_PLANE_LABELS}}}
    spec:
      containers: [{{name: envoy, image: envoyproxy/envoy:v1.34.1, ports: [{{containerPort: 10443}}]}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: controller, namespace: {GATEWAY_NAMESPACE}}}
spec:
  selector: {{matchLabels: {{app: gateway-controller}}}}
  template:
    metadata: {{labels: {{app: gateway-controller}}}}
    spec:
      containers: [{{name: controller, image: busybox:1.37, ports: [{{containerPort: 8080}}]}}]
"""


def test_analyzer_admits_the_data_plane_to_the_ui_ports_only(gateway_synth: SynthResult, tmp_path: Path) -> None:
    """nca evaluates dist/'s policies on the stack's pods, the Gateway's namespace and a stranger:
    the data-plane pods reach exactly the UI backends' ports, the controller beside them and the
    stranger reach nothing of ours."""
    allowed = analyze(gateway_synth.out_dir, tmp_path, extra=GATEWAY_WORLD)
    into_floe = {(src, dst): conns for (src, dst), conns in allowed.items() if dst.startswith(f"{NAMESPACE}/") and not src.startswith(f"{NAMESPACE}/")}
    proxy = {(dst.split("/", 1)[1], int(c.split("/")[1])) for (src, dst), conns in into_floe.items() if src == f"{GATEWAY_NAMESPACE}/proxy" for c in conns}
    assert proxy == UI_BACKENDS
    assert all(conns == frozenset({"TCP/" + str(p) for s, p in UI_BACKENDS if f"{NAMESPACE}/{s}" == dst}) for (src, dst), conns in into_floe.items() if src == f"{GATEWAY_NAMESPACE}/proxy")
    others = {src for src, _ in into_floe} - {f"{GATEWAY_NAMESPACE}/proxy"}
    assert not {f"{GATEWAY_NAMESPACE}/controller", f"{STRANGER_NAMESPACE}/stranger"} & others, into_floe
