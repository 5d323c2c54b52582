"""Every manifest check passes on what we synthesize (in every supported variant), and each check
fires on a manifest broken in the way it exists to catch (mutation tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from floe.config import StackConfig
from floe.manifest_checks import CHECKS, SCHEMA_VERSIONS, check_manifests
from floe.synth import secret_names
from tests.infra.conftest import synth
from tests.support.manifests import find

NAMESPACE = "floe"


def test_schema_versions_cover_127_and_newest() -> None:
    assert SCHEMA_VERSIONS[0] == "1.27.0"
    assert tuple(int(x) for x in SCHEMA_VERSIONS[1].split(".")) >= (1, 37, 0)
    # Found without importing kubernetes_validate (floe/manifest_checks.py), as upstream finds it.
    import kubernetes_validate

    assert SCHEMA_VERSIONS[1] == kubernetes_validate.latest_version()


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_check_passes_on_default_stack(documents: list[dict], check: str) -> None:
    assert check_manifests(documents, namespace=NAMESPACE, only=[check]) == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"jaeger__enabled": False},
        {"marquez__enabled": False},
        {"namespace": "lakehouse-dev", "name_prefix": "lh"},
        {"polaris__port": 18181, "minio__api_port": 19000, "postgres__port": 15432},
    ],
    ids=["no-jaeger", "no-marquez", "renamed", "re-ported"],
)
def test_variants_pass_every_check(tmp_path: Path, overrides: dict) -> None:
    # synthesize() itself refuses to publish on a violation; assert on the result too.
    result = synth(tmp_path, **overrides)
    namespace = overrides.get("namespace", NAMESPACE)
    assert check_manifests(result.documents, namespace=namespace) == []
    names = {d["metadata"]["name"] for d in result.documents}
    prefix = overrides.get("name_prefix", "floe")
    assert f"{prefix}-postgres" in names and f"{prefix}-polaris" in names
    if overrides.get("jaeger__enabled") is False:
        assert f"{prefix}-jaeger" not in names
        assert not any("jaeger" in str(d) for d in result.documents if d["kind"] in ("Deployment", "Job"))
    if overrides.get("marquez__enabled") is False:
        assert f"{prefix}-marquez" not in names


def test_existing_credentials_synthesize_no_secrets(tmp_path: Path) -> None:
    result = synth(tmp_path, credentials__source="existing")
    assert [d for d in result.documents if d["kind"] == "Secret"] == []
    # References to the user's Secrets are allowed only for the names we document.
    assert check_manifests(result.documents, namespace=NAMESPACE, only=["references"]) != []
    external = secret_names(StackConfig())
    assert check_manifests(result.documents, namespace=NAMESPACE, external_secrets=external) == []
    assert {"floe-postgres-superuser", "floe-db-polaris", "floe-catalog-reader"} <= external


# --- mutations ------------------------------------------------------------------------------------


def pod(docs: list[dict], kind: str, name: str) -> dict:
    return find(docs, kind, name)["spec"]["template"]["spec"]


def container(docs: list[dict], name: str, index: int = 0) -> dict:
    return pod(docs, "Deployment", name)["containers"][index]


def env_var(c: dict, name: str) -> dict:
    return next(v for v in c["env"] if v["name"] == name)


MUTATIONS: dict[str, list[tuple[str, Callable[[list[dict]], None]]]] = {
    "schema": [
        ("unknown container field", lambda d: container(d, "floe-minio").update(imagePolicy="Always")),
        ("replicas not an integer", lambda d: find(d, "Deployment", "floe-minio")["spec"].update(replicas="one")),
        ("port number as a string", lambda d: find(d, "Service", "floe-polaris")["spec"]["ports"][0].update(port="8181")),
        # Gateway API objects: against the vendored CRD (floe/schemas/gateway-api/).
        ("HTTPRoute with an Ingress path type", lambda d: d.append(http_route("floe-cube", 4000, path_type="Prefix"))),
        ("HTTPRoute backend port by name", lambda d: d.append(http_route("floe-jaeger", "http"))),
    ],
    "ports": [
        ("service port out of range", lambda d: find(d, "Service", "floe-polaris")["spec"]["ports"][0].update(port=70000)),
        ("container port out of range", lambda d: container(d, "floe-minio")["ports"][0].update(containerPort=0)),
        ("two service ports share a number", lambda d: find(d, "Service", "floe-jaeger")["spec"]["ports"][1].update(port=16686)),
        ("unnamed port in multi-port service", lambda d: find(d, "Service", "floe-polaris")["spec"]["ports"][1].pop("name")),
    ],
    "namespace": [
        ("object in another namespace", lambda d: find(d, "ConfigMap", "floe-jaeger-config")["metadata"].update(namespace="default")),
        ("namespace missing", lambda d: find(d, "Service", "floe-minio")["metadata"].pop("namespace")),
    ],
    "names": [
        ("service name not a DNS label", lambda d: find(d, "Service", "floe-minio")["metadata"].update(name="floe.minio")),
        ("port name longer than 15", lambda d: container(d, "floe-polaris")["ports"][0].update(name="catalog-http-port")),
        ("duplicate port name in a pod", lambda d: container(d, "floe-minio")["ports"][1].update(name="s3")),
        ("uppercase container name", lambda d: container(d, "floe-jaeger").update(name="Jaeger")),
    ],
    "labels": [
        ("label value with a space", lambda d: find(d, "Deployment", "floe-postgres")["metadata"]["labels"].update({"app.kubernetes.io/version": "18 1"})),
        ("label value over 63 chars", lambda d: find(d, "Service", "floe-minio")["metadata"]["labels"].update({"x": "a" * 64})),
        ("pod label invalid", lambda d: find(d, "Deployment", "floe-postgres")["spec"]["template"]["metadata"]["labels"].update({"bad": "-x"})),
        ("standard label missing", lambda d: find(d, "Secret", "floe-minio-root")["metadata"]["labels"].pop("app.kubernetes.io/name")),
    ],
    "env-names": [
        ("env name starting with a digit", lambda d: container(d, "floe-polaris")["env"].append({"name": "1BAD", "value": "x"})),
        ("env var set twice", lambda d: container(d, "floe-polaris")["env"].append({"name": "POLARIS_PERSISTENCE_TYPE", "value": "in-memory"})),
    ],
    "selectors": [
        ("service selects nothing", lambda d: find(d, "Service", "floe-polaris")["spec"]["selector"].update({"app.kubernetes.io/name": "floe-polaris-typo"})),
        ("deployment selector misses template", lambda d: find(d, "Deployment", "floe-minio")["spec"]["selector"]["matchLabels"].update({"tier": "x"})),
    ],
    "service-ports": [
        ("targetPort not exposed", lambda d: find(d, "Service", "floe-polaris")["spec"]["ports"][0].update(targetPort=8080)),
        ("named targetPort unknown", lambda d: find(d, "Service", "floe-minio")["spec"]["ports"][0].update(targetPort="http")),
    ],
    # Issue 19: nobody but MinIO and the bucket/reconcile steps holds MinIO's root key.
    "root-credentials": [
        ("Cube reads the warehouse with the root key", lambda d: env_var(container(d, "floe-cube"), "FLOE_S3_ACCESS_KEY_ID").update(
            valueFrom={"secretKeyRef": {"name": "floe-minio-root", "key": "access-key"}})),
        ("the webserver gets the root Secret by envFrom", lambda d: container(d, "floe-dagster-webserver").update(
            envFrom=[{"secretRef": {"name": "floe-minio-root"}}])),
        ("the reconcile's wait container gets the root key", lambda d: find(d, "CronJob", "floe-reconcile")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0].setdefault("env", []).append(
            {"name": "ROOT", "valueFrom": {"secretKeyRef": {"name": "floe-minio-root", "key": "secret-key"}}})),
        ("Cube Store mounts the root Secret", lambda d: (
            pod(d, "Deployment", "floe-cubestore-router")["volumes"].append({"name": "root", "secret": {"secretName": "floe-minio-root"}}),
            container(d, "floe-cubestore-router")["volumeMounts"].append({"name": "root", "mountPath": "/root-key", "readOnly": True}))),
    ],
    "references": [
        ("secret key missing", lambda d: env_var(container(d, "floe-minio"), "MINIO_ROOT_USER")["valueFrom"]["secretKeyRef"].update(key="user")),
        ("secret missing", lambda d: d.remove(find(d, "Secret", "floe-db-polaris"))),
        ("configmap missing", lambda d: d.remove(find(d, "ConfigMap", "floe-marquez-config"))),
        ("undeclared volume mount", lambda d: container(d, "floe-jaeger")["volumeMounts"].append({"name": "cache", "mountPath": "/cache"})),
    ],
    "endpoints": [
        ("URL names no Service", lambda d: env_var(container(d, "floe-polaris"), "QUARKUS_DATASOURCE_JDBC_URL").update(value="jdbc:postgresql://floe-postgress:5432/polaris")),
        ("URL with a port the Service lacks", lambda d: env_var(container(d, "floe-polaris"), "QUARKUS_DATASOURCE_JDBC_URL").update(value="jdbc:postgresql://floe-postgres:5433/polaris")),
        ("host/port pair mismatched", lambda d: env_var(container(d, "floe-marquez-web"), "MARQUEZ_PORT").update(value="5001")),
        ("config file URL broken", lambda d: find(d, "ConfigMap", "floe-marquez-config")["data"].update({"marquez.yml": "db:\n  url: jdbc:postgresql://floe-pg:5432/marquez\n"})),
        ("job env URL broken", lambda d: env_var(pod(d, "Job", "floe-polaris-init")["containers"][0], "FLOE_POLARIS_URL").update(value="http://floe-polaris:8080")),
        ("workspace grpc host typo", lambda d: find(d, "ConfigMap", "floe-dagster-workspace")["data"].update({"workspace.yaml": "load_from:\n- grpc_server: {host: floe-dagster-usercode, port: 3030, location_name: x}\n"})),
        ("workspace grpc port wrong", lambda d: find(d, "ConfigMap", "floe-dagster-workspace")["data"].update({"workspace.yaml": "load_from:\n- grpc_server: {host: floe-dagster-user-code, port: 4000, location_name: x}\n"})),
        ("dagster pg host/port pair", lambda d: env_var(container(d, "floe-dagster-daemon"), "FLOE_DAGSTER_PG_PORT").update(value="5433")),
        ("fully-qualified name, wrong service", lambda d: env_var(container(d, "floe-polaris"), "QUARKUS_OTEL_EXPORTER_OTLP_ENDPOINT").update(value="http://floe-jaegr.floe.svc.cluster.local:4317")),
    ],
    "probes": [
        ("no readiness probe", lambda d: container(d, "floe-minio").pop("readinessProbe")),
        ("no liveness probe", lambda d: container(d, "floe-postgres").pop("livenessProbe")),
        ("detection over 30 s", lambda d: container(d, "floe-polaris")["livenessProbe"].update(failureThreshold=5)),
        ("probe on unknown port name", lambda d: container(d, "floe-marquez")["readinessProbe"]["httpGet"].update(port="adm")),
        ("readiness probe on a pod no Service selects", lambda d: container(d, "floe-dagster-daemon").update(readinessProbe=container(d, "floe-dagster-daemon")["livenessProbe"])),
    ],
    "probe-cost": [
        # The daemon's probes as they were (issue 8): liveness-check every 8 s, 12 s timeout, 500m limit.
        ("dagster-daemon liveness-check every 8 s", lambda d: container(d, "floe-dagster-daemon")["livenessProbe"].update(
            exec={"command": ["dagster-daemon", "liveness-check"]}, periodSeconds=8, timeoutSeconds=12)),
        ("exec probe never measured", lambda d: container(d, "floe-postgres")["livenessProbe"]["exec"].update(command=["psql", "-c", "SELECT 1"])),
        ("timeout shorter than the call at the CPU limit", lambda d: (
            container(d, "floe-dagster-daemon")["livenessProbe"].update(exec={"command": ["dagster-daemon", "liveness-check"]}, periodSeconds=300),
            container(d, "floe-dagster-daemon")["startupProbe"].update(exec={"command": ["dagster-daemon", "liveness-check"]}, periodSeconds=300, timeoutSeconds=12),
        )),
        ("cheap probe, CPU limit cut to 10m", lambda d: container(d, "floe-dagster-daemon")["resources"]["limits"].update(cpu="10m")),
    ],
    "resources": [
        ("no limits", lambda d: container(d, "floe-jaeger")["resources"].pop("limits")),
        ("init container without requests", lambda d: pod(d, "Deployment", "floe-polaris")["initContainers"][0]["resources"].pop("requests")),
        ("memory limit below request", lambda d: container(d, "floe-minio")["resources"]["limits"].update(memory="128Mi")),
        ("job without cpu request", lambda d: pod(d, "Job", "floe-minio-buckets")["containers"][0]["resources"]["requests"].pop("cpu")),
    ],
    "security": [
        ("runAsNonRoot false", lambda d: pod(d, "Deployment", "floe-minio")["securityContext"].update(runAsNonRoot=False)),
        ("privilege escalation", lambda d: container(d, "floe-postgres")["securityContext"].update(allowPrivilegeEscalation=True)),
        ("capabilities kept", lambda d: container(d, "floe-jaeger")["securityContext"]["capabilities"].update(drop=["NET_RAW"])),
        ("service account token", lambda d: pod(d, "Job", "floe-polaris-init").update(automountServiceAccountToken=True)),
        ("privileged", lambda d: container(d, "floe-marquez")["securityContext"].update(privileged=True)),
        ("seccomp unconfined", lambda d: (pod(d, "Deployment", "floe-minio")["securityContext"].pop("seccompProfile"), container(d, "floe-minio")["securityContext"].update(seccompProfile={"type": "Unconfined"}))),
    ],
    "pod-security": [
        ("namespace not enforcing", lambda d: find(d, "Namespace", "floe")["metadata"]["labels"].pop("pod-security.kubernetes.io/enforce")),
        ("version unpinned", lambda d: find(d, "Namespace", "floe")["metadata"]["labels"].update({"pod-security.kubernetes.io/enforce-version": "latest"})),
        ("privileged container", lambda d: container(d, "floe-cube").update(securityContext={**container(d, "floe-cube")["securityContext"], "privileged": True})),
        ("no seccomp anywhere", lambda d: (pod(d, "Deployment", "floe-jaeger")["securityContext"].pop("seccompProfile"), container(d, "floe-jaeger")["securityContext"].pop("seccompProfile"))),
        ("root user", lambda d: pod(d, "Deployment", "floe-minio")["securityContext"].update(runAsNonRoot=False, runAsUser=0)),
        ("init container escalates", lambda d: pod(d, "Deployment", "floe-polaris")["initContainers"][0]["securityContext"].update(allowPrivilegeEscalation=True)),
        ("capability added", lambda d: container(d, "floe-postgres")["securityContext"]["capabilities"].update(add=["NET_ADMIN"])),
        ("hostPort", lambda d: container(d, "floe-minio")["ports"][0].update(hostPort=9000)),
    ],
    "apply": [
        ("stringData Secret", lambda d: next(x for x in d if x["kind"] == "Secret").update(stringData={"k": "v"})),
        ("non-canonical cpu", lambda d: container(d, "floe-minio")["resources"]["limits"].update(cpu="1000m")),
        ("non-canonical memory", lambda d: container(d, "floe-minio")["resources"]["requests"].update(memory="1024Mi")),
        ("non-canonical sizeLimit", lambda d: pod(d, "Deployment", "floe-minio")["volumes"][0]["emptyDir"].update(sizeLimit="0.5Gi")),
        ("RollingUpdate without rollingUpdate", lambda d: find(d, "Deployment", "floe-cube")["spec"].update(strategy={"type": "RollingUpdate"})),
    ],
    "config-checksum": [
        ("checksum removed", lambda d: find(d, "Deployment", "floe-dagster-daemon")["spec"]["template"]["metadata"].pop("annotations")),
        ("consumed ConfigMap key changed, template not", lambda d: find(d, "ConfigMap", "floe-jaeger-config")["data"].update(
            {k: v + "\n# changed\n" for k, v in find(d, "ConfigMap", "floe-jaeger-config")["data"].items()})),
        ("consumed Secret changed, template not", lambda d: find(d, "Secret", "floe-minio-root")["data"].update({"secret-key": "b3RoZXI="})),
        ("checksum on a pod that reads nothing", lambda d: find(d, "Deployment", "floe-marquez-web")["spec"]["template"]["metadata"].update(
            annotations={"floe.dev/config-checksum": "0" * 64})),
        ("reconcile CronJob checksum removed", lambda d: find(d, "CronJob", "floe-reconcile")["spec"]["jobTemplate"]["spec"]["template"]["metadata"].pop("annotations")),
        ("Job changed, name kept", lambda d: pod(d, "Job", "floe-minio-buckets")["containers"][0]["env"].append({"name": "X", "value": "1"})),
    ],
    "images": [
        ("latest tag", lambda d: container(d, "floe-minio").update(image="quay.io/minio/minio:latest")),
        ("no tag", lambda d: container(d, "floe-jaeger").update(image="jaegertracing/jaeger")),
        ("registry port mistaken for tag", lambda d: container(d, "floe-jaeger").update(image="localhost:5000/jaeger")),
        ("no pull policy", lambda d: container(d, "floe-polaris").pop("imagePullPolicy")),
    ],
    "volumes": [
        ("hostPath volume", lambda d: pod(d, "Deployment", "floe-postgres")["volumes"].append({"name": "host", "hostPath": {"path": "/var"}})),
        ("PVC volume", lambda d: pod(d, "Deployment", "floe-minio")["volumes"][0].update(persistentVolumeClaim={"claimName": "x"})),
        ("PVC object", lambda d: d.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "floe"}})),
    ],
    "ingress": [
        ("backend names no Service", lambda d: d.append(ingress("floe-dagster-web", 80))),
        ("backend port the Service lacks", lambda d: d.append(ingress("floe-dagster-webserver", 3000))),
        ("backend port name unknown", lambda d: d.append(ingress("floe-jaeger", "http"))),
        ("rule without host", lambda d: d.append(ingress("floe-cube", 4000, host=None))),
        ("backend is a headless Service", lambda d: d.append(ingress("floe-cubestore-workers", 9001))),
    ],
    # The Gateway variant's own mutations, against its declared Gateway, are in test_gateway.py.
    "gateway": [
        ("backend names no Service", lambda d: d.append(http_route("floe-dagster-web", 80))),
        ("backend port the Service lacks", lambda d: d.append(http_route("floe-dagster-webserver", 3001))),
        ("backend is a headless Service", lambda d: d.append(http_route("floe-cubestore-workers", 9001))),
        ("route without hostnames", lambda d: d.append(http_route("floe-cube", 4000, hostnames=None))),
        ("parent is not a Gateway", lambda d: d.append(http_route("floe-cube", 4000, parent={"group": "", "kind": "Service", "name": "floe-cube"}))),
    ],
    "connection-pools": [
        ("polaris pool unset", lambda d: find(d, "Deployment", "floe-polaris")["spec"]["template"]["spec"]["containers"][0].update(
            env=[e for e in find(d, "Deployment", "floe-polaris")["spec"]["template"]["spec"]["containers"][0]["env"]
                 if e["name"] != "QUARKUS_DATASOURCE_JDBC_MAX_SIZE"])),
        ("webserver overflow unset", lambda d: find(d, "Deployment", "floe-dagster-webserver")["spec"]["template"]["spec"]["containers"][0].update(
            command=find(d, "Deployment", "floe-dagster-webserver")["spec"]["template"]["spec"]["containers"][0]["command"][:-2])),
        ("pools over max_connections", lambda d: find(d, "Deployment", "floe-postgres")["spec"]["template"]["spec"]["containers"][0].update(
            args=["postgres", "-c", "max_connections=20"])),
    ],
    "replicas": [
        ("replicated without a disruption budget", lambda d: find(d, "Deployment", "floe-cube")["spec"].update(replicas=2)),
        ("budget allows no eviction", lambda d: d.append(budget("floe-cube", minAvailable=1))),
        ("budget of 100%", lambda d: d.append(budget("floe-polaris", maxUnavailable="0%"))),
        ("budget selects nothing", lambda d: d.append(budget("floe-cube-typo", maxUnavailable=1))),
        ("replicated, budget, no spread", lambda d: (
            find(d, "Deployment", "floe-marquez-web")["spec"].update(replicas=2, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
            d.append(budget("floe-marquez-web", maxUnavailable=1)),
        )),
        ("replicated, Recreate", lambda d: (
            find(d, "Deployment", "floe-polaris")["spec"].update(replicas=2),
            find(d, "Deployment", "floe-polaris")["spec"]["template"]["spec"].update(topologySpreadConstraints=[{
                "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": find(d, "Deployment", "floe-polaris")["spec"]["selector"]["matchLabels"]}}]),
            d.append(budget("floe-polaris", maxUnavailable=1)),
        )),
    ],
}


def ingress(service: str, port: int | str, host: str | None = "ui.example.com") -> dict:
    backend = {"service": {"name": service, "port": {"number": port} if isinstance(port, int) else {"name": port}}}
    rule = {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
    if host:
        rule["host"] = host
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x", "namespace": NAMESPACE}, "spec": {"rules": [rule]}}


def http_route(
    service: str,
    port: int | str,
    *,
    hostnames: list[str] | None = ["ui.example.com"],  # noqa: B006 - never mutated
    parent: dict | None = None,
    path_type: str = "PathPrefix",
) -> dict:
    """A Gateway API HTTPRoute (valid against the CRD unless asked otherwise) to ``service:port``."""
    spec = {
        "parentRefs": [parent or {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "gateway-system", "name": "gw"}],
        "rules": [{"matches": [{"path": {"type": path_type, "value": "/"}}], "backendRefs": [{"group": "", "kind": "Service", "name": service, "port": port}]}],
    }
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "x", "namespace": NAMESPACE}, "spec": spec}


def budget(workload: str, **spec: object) -> dict:
    selector = {"matchLabels": {"app.kubernetes.io/name": workload, "app.kubernetes.io/instance": "floe"}}
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": workload, "namespace": NAMESPACE}, "spec": {**spec, "selector": selector}}


def test_every_check_has_mutations() -> None:
    assert set(MUTATIONS) == set(CHECKS)


@pytest.mark.parametrize(
    ("check", "mutate"),
    [pytest.param(check, fn, id=f"{check}: {label}") for check, cases in MUTATIONS.items() for label, fn in cases],
)
def test_check_fires_on_broken_manifest(documents: list[dict], check: str, mutate: Callable[[list[dict]], None]) -> None:
    assert check_manifests(documents, namespace=NAMESPACE, only=[check]) == []
    mutate(documents)
    violations = check_manifests(documents, namespace=NAMESPACE, only=[check])
    assert violations, f"check {check!r} did not notice the mutation"
    assert all(v.check == check for v in violations)
