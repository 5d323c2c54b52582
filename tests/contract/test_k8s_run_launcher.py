"""Runs as Kubernetes Jobs (dagster.run_launcher: k8s, config/cluster.yaml): real Dagster, real
dagster-k8s, real PostgreSQL; only the Kubernetes API is absent.

- The cluster profile's dagster.yaml is loaded by Dagster against a PostgreSQL made by our init
  script, and its run launcher is dagster-k8s's K8sRunLauncher. The launcher is constructed the way
  it is in the daemon's pod: ``load_incluster_config`` (its default, which we keep) reads the
  ServiceAccount token and CA the kubelet mounts, and KUBERNETES_SERVICE_HOST/PORT. The test gives
  it those (a fake token and CA file, an address nothing listens on): nothing in the config is
  rewritten for the test, and no request is made while constructing it.
- The Job is the one the launcher itself builds for a run (K8sRunLauncher.launch_run ->
  construct_dagster_k8s_job, dagster-k8s's own code), captured at the one HTTP call
  (BatchV1Api.create_namespaced_job). It passes our schema, security, pod-security and resource
  checks next to the rest of the cluster profile, and its pod is the PodTemplate declared in dist/
  (which the NetworkPolicy derivation reads), so the run pods' policy selects and fits the real ones.
- The launcher's Role grants exactly the Kubernetes API calls K8sRunLauncher can make in the
  installed dagster-k8s, derived from its source and the kubernetes client's (path + HTTP method).
- The local profile keeps the DefaultRunLauncher and has no RBAC object, no token anywhere.
"""

from __future__ import annotations

import ast
import copy
import importlib.metadata
import inspect
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import kubernetes
import pytest
import yaml

from constructs.dagster import INSTANCE_FILE, LAUNCHER_RULES, WEBSERVER_RULES
from floe.config import StackConfig, load_config
from floe.manifest_checks import check_manifests
from floe.synth import SynthResult, synthesize
from tests.infra.conftest import REPO, write_fake_credentials
from tests.support.manifests import container, find, resolve_env
from tests.support.postgres import PostgresServer
from floe.manifest_checks import pod_template

NAMESPACE = "floe"
DAGSTER_K8S_VERSION = "0.29.27"
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
#: What every pod and object of the stack must pass, run on the Job dagster-k8s builds.
JOB_CHECKS = ("schema", "namespace", "names", "labels", "env-names", "references", "resources", "security", "pod-security", "apply", "images")


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """config/cluster.yaml as it is, with the fixed fake credentials of the other contract tests."""
    folder = tmp_path_factory.mktemp("cluster")
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    config = StackConfig.model_validate(data)
    assert config.dagster.run_launcher == "k8s"
    return synthesize(config, folder / "dist", root=folder)


@pytest.fixture
def in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the kubelet gives a pod whose ServiceAccount token is mounted (kubernetes.config.
    incluster_config reads exactly these); 127.0.0.1:9 stands for the API server and is never called."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("fake-service-account-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "9")


@pytest.fixture
def instance(cluster: SynthResult, stack_postgres: PostgresServer, in_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The cluster profile's Dagster instance as the daemon's pod opens it: its dagster.yaml, its
    env (Secrets resolved), PostgreSQL at the local server made by our init script."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from constructs.dagster import PG_ENV

    docs = cluster.documents
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / INSTANCE_FILE).write_text(find(docs, "ConfigMap", "floe-dagster-instance")["data"][INSTANCE_FILE])
    env = resolve_env(container(docs, "Deployment", "floe-dagster-daemon"), docs)
    env.update({PG_ENV["host"]: stack_postgres.host, PG_ENV["port"]: str(stack_postgres.port), "DAGSTER_HOME": str(home)})
    for key, value in env.items():
        if key.startswith(("FLOE_DAGSTER_PG_", "DAGSTER_", "AWS_")):
            monkeypatch.setenv(key, value)
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as opened:
        yield opened


def _launch(instance, image: str, tags: dict[str, str] | None = None) -> tuple[str, dict]:
    """(namespace, Job manifest) K8sRunLauncher.launch_run sends for a new run of our code location."""
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.launcher import LaunchRunContext
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.test_utils import create_run_for_test

    from demo.bootstrap.image import APP_DIR
    from demo.orchestration.definitions import TICK_JOB

    # What the code server in the cluster reports: our module in the app folder, and its image
    # (DAGSTER_CURRENT_IMAGE of the user-code container).
    origin = JobPythonOrigin(
        TICK_JOB,
        RepositoryPythonOrigin(
            executable_path="python",
            code_pointer=ModuleCodePointer("demo.orchestration.definitions", "defs", APP_DIR),
            container_image=image,
            entry_point=["dagster"],
            container_context=None,
        ),
    )
    run = create_run_for_test(instance, job_name=TICK_JOB, run_id=str(uuid.uuid4()), job_code_origin=origin, tags=tags)
    sent: list[tuple[str, object]] = []

    def create_namespaced_job(self, namespace, body, **kwargs):  # noqa: ANN001, ANN202 - the client's signature
        sent.append((namespace, body))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kubernetes.client.BatchV1Api, "create_namespaced_job", create_namespaced_job)
        instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    assert len(sent) == 1
    namespace, body = sent[0]
    job = kubernetes.client.ApiClient().sanitize_for_serialization(body)
    # The API server puts the object in the namespace of the request.
    job["metadata"]["namespace"] = namespace
    return namespace, job


# --- the instance and the Job -------------------------------------------------------------------


def test_cluster_instance_loads_with_the_k8s_run_launcher(cluster: SynthResult, instance) -> None:
    from dagster_k8s import K8sRunLauncher

    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert instance.get_runs_count() >= 0
    launcher = instance.run_launcher
    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.job_namespace == NAMESPACE
    assert launcher.job_image == StackConfig().project_image.ref
    assert launcher.service_account_name == "floe-dagster-run"
    assert launcher.instance_config_map == "floe-dagster-instance"
    assert launcher.env_config_maps == ["floe-dagster-run-env"]
    # No secret value in a ConfigMap: dagster.yaml holds Secret names and keys only.
    text = find(cluster.documents, "ConfigMap", "floe-dagster-instance")["data"][INSTANCE_FILE]
    import base64

    # The generated credentials (the fake ones here are >= 12 characters; user names like
    # "dagster" are not secrets and appear in module paths).
    values = {base64.b64decode(v).decode() for s in cluster.documents if s["kind"] == "Secret" for v in s.get("data", {}).values()}
    secrets = {v for v in values if len(v) >= 12}
    assert len(secrets) >= 10
    run_env = find(cluster.documents, "ConfigMap", "floe-dagster-run-env")["data"]
    for value in secrets:
        assert value not in text and value not in run_env.values()


def test_the_job_dagster_k8s_builds_passes_our_checks(cluster: SynthResult, instance) -> None:
    namespace, job = _launch(instance, StackConfig().project_image.ref)
    assert namespace == NAMESPACE
    violations = check_manifests([*cluster.documents, job], namespace=NAMESPACE, only=JOB_CHECKS)
    assert [str(v) for v in violations] == []
    spec = job["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "floe-dagster-run"
    (c,) = spec["containers"]
    assert c["args"][:3] == ["dagster", "api", "execute_run"]
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    # Mutation: the checks do fire on this Job (a run pod that keeps a writable root, or mounts a token).
    bad = copy.deepcopy(job)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    bad["spec"]["template"]["spec"]["automountServiceAccountToken"] = True
    found = {(v.check, v.obj) for v in check_manifests([*cluster.documents, bad], namespace=NAMESPACE, only=["security"])}
    assert ("security", f"Job/{job['metadata']['name']}") in found


def _without_empty(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v not in ([], {}, None)}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def test_the_run_pod_is_the_declared_pod_template(cluster: SynthResult, instance) -> None:
    """The PodTemplate in dist/ (what the checks and the NetworkPolicy derivation read) is the pod
    dagster-k8s creates, but for what only a run knows: its args, DAGSTER_RUN_JOB_NAME, run labels."""
    _, job = _launch(instance, StackConfig().project_image.ref)
    declared = find(cluster.documents, "PodTemplate", "floe-dagster-run")["template"]
    template = job["spec"]["template"]
    assert declared["metadata"]["labels"].items() <= template["metadata"]["labels"].items()
    spec = copy.deepcopy(template["spec"])
    (c,) = spec["containers"]
    assert c.pop("args")[:3] == ["dagster", "api", "execute_run"]
    assert c["env"][0]["name"] == "DAGSTER_RUN_JOB_NAME"
    c["env"] = c["env"][1:]
    assert _without_empty(spec) == _without_empty(declared["spec"])
    # The run pods' NetworkPolicy selects them, and no other policy of a workload does.
    policies = [d for d in cluster.documents if d["kind"] == "NetworkPolicy"]
    selecting = [
        p["metadata"]["name"] for p in policies
        if p["spec"]["podSelector"].get("matchLabels") and p["spec"]["podSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
        and not p["spec"]["podSelector"].get("matchExpressions")
    ]
    assert selecting == ["floe-dagster-run"]
    egress = {(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"], port["port"])
              for rule in find(cluster.documents, "NetworkPolicy", "floe-dagster-run")["spec"]["egress"]
              for peer in rule["to"] for port in rule["ports"]}
    assert egress == {("floe-polaris", 8181), ("floe-minio", 9000), ("floe-postgres", 5432), ("floe-jaeger", 4318), ("floe-marquez", 5000)}


def test_run_tags_may_size_a_run_but_not_change_its_identity(cluster: SynthResult, instance) -> None:
    """only_allow_user_defined_k8s_config_fields: a run's dagster-k8s/config tag may set resources;
    one asking for the launcher's ServiceAccount (and its token) is refused by dagster-k8s itself."""
    sized = {"container_config": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}}}
    _, job = _launch(instance, StackConfig().project_image.ref, tags={"dagster-k8s/config": json.dumps(sized)})
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    escalate = {"pod_spec_config": {"service_account_name": "floe-dagster-launcher", "automount_service_account_token": True}}
    with pytest.raises(Exception, match="violated the allowed list"):
        _launch(instance, StackConfig().project_image.ref, tags={"dagster-k8s/config": json.dumps(escalate)})


# --- the Role: exactly the launcher's API calls -------------------------------------------------


def _methods(tree: ast.Module, class_name: str) -> dict[str, ast.FunctionDef]:
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}


def _calls_on(node: ast.AST, *owner: str) -> set[str]:
    """Names of methods called as ``self.<owner...>.<name>(...)`` anywhere inside ``node``."""
    found = set()
    for call in ast.walk(node):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        chain, target = [], call.func.value
        while isinstance(target, ast.Attribute):
            chain.insert(0, target.attr)
            target = target.value
        if isinstance(target, ast.Name) and target.id == "self" and tuple(chain) == owner:
            found.add(call.func.attr)
    return found


def launcher_api_calls(only: str | None = None) -> set[tuple[str, str]]:
    """(BatchV1Api|CoreV1Api, method) of every Kubernetes API call reachable from K8sRunLauncher in
    the installed dagster-k8s (or from its method ``only``): its calls on self._api_client, then
    DagsterKubernetesClient's methods transitively, down to self.batch_api.* / self.core_api.*."""
    import dagster_k8s.client
    import dagster_k8s.launcher

    launcher = _methods(ast.parse(Path(dagster_k8s.launcher.__file__).read_text()), "K8sRunLauncher")
    client = _methods(ast.parse(Path(dagster_k8s.client.__file__).read_text()), "DagsterKubernetesClient")
    roots = [launcher[only]] if only else list(launcher.values())
    todo = set().union(*(_calls_on(f, "_api_client") for f in roots))
    assert todo and todo <= client.keys(), todo - client.keys()
    seen: set[str] = set()
    calls: set[tuple[str, str]] = set()
    while todo:
        name = todo.pop()
        seen.add(name)
        method = client[name]
        calls |= {("BatchV1Api", m) for m in _calls_on(method, "batch_api")}
        calls |= {("CoreV1Api", m) for m in _calls_on(method, "core_api")}
        todo |= (_calls_on(method) & client.keys()) - seen
    return calls


VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def rbac_of(api: str, method: str) -> tuple[str, str, str]:
    """(apiGroup, resource, verb) of a kubernetes client method, from the path and HTTP method its
    generated ``*_with_http_info`` sends (Kubernetes' RBAC mapping of a request)."""
    source = inspect.getsource(getattr(getattr(kubernetes.client, api), f"{method}_with_http_info"))
    path, http = re.search(r"call_api\(\s*'([^']+)',\s*'([A-Z]+)'", source).groups()
    match = re.match(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/\{namespace\}/(?P<rest>.+)$", path)
    assert match, f"{api}.{method}: {path} is not a namespaced path"
    parts = match["rest"].split("/")
    resource = parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")
    item = len(parts) > 1
    verb = ("get" if item else "list") if http == "GET" else VERBS[http] if item or http == "POST" else "deletecollection"
    return match["group"] or "", resource, verb


def test_the_role_grants_exactly_the_launchers_api_calls(cluster: SynthResult) -> None:
    assert importlib.metadata.version("dagster-k8s") == DAGSTER_K8S_VERSION, "re-derive LAUNCHER_RULES for the new version"
    calls = launcher_api_calls()
    # The calls as read in dagster_k8s/client.py 0.29.27 (a failure here means the source moved).
    assert calls == {
        ("BatchV1Api", "create_namespaced_job"), ("BatchV1Api", "delete_namespaced_job"),
        ("BatchV1Api", "list_namespaced_job"), ("BatchV1Api", "read_namespaced_job_status"),
        ("CoreV1Api", "delete_namespaced_pod"), ("CoreV1Api", "list_namespaced_pod"),
        ("CoreV1Api", "read_namespaced_pod_log"), ("CoreV1Api", "list_namespaced_event"),
    }
    needed: dict[tuple[str, str], set[str]] = {}
    for api, method in calls:
        group, resource, verb = rbac_of(api, method)
        needed.setdefault((group, resource), set()).add(verb)
    assert {k: set(v) for k, v in LAUNCHER_RULES.items()} == needed
    role = find(cluster.documents, "Role", "floe-dagster-launcher")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
    assert granted == needed


def granted_by(role: dict) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role.get("rules") or []:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
    return granted


def test_the_webserver_may_terminate_runs_but_never_create_a_job(cluster: SynthResult) -> None:
    """Issue 19: the exposed webserver has its own account, whose Role is exactly what terminating
    a run calls (K8sRunLauncher.terminate, derived from dagster-k8s' source like the launcher's)."""
    needed: dict[tuple[str, str], set[str]] = {}
    for api, method in launcher_api_calls(only="terminate"):
        group, resource, verb = rbac_of(api, method)
        needed.setdefault((group, resource), set()).add(verb)
    assert needed == {k: set(v) for k, v in WEBSERVER_RULES.items()}
    role = find(cluster.documents, "Role", "floe-dagster-webserver")
    assert granted_by(role) == needed
    assert "create" not in {verb for verbs in needed.values() for verb in verbs}
    binding = find(cluster.documents, "RoleBinding", "floe-dagster-webserver")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "floe-dagster-webserver", "namespace": NAMESPACE}]
    assert pod_template(find(cluster.documents, "Deployment", "floe-dagster-webserver"))["spec"]["serviceAccountName"] == "floe-dagster-webserver"


def test_a_read_only_webserver_runs_dagsters_read_only_mode_with_no_rights(tmp_path: Path) -> None:
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(tmp_path))
    data["dagster"]["webserver_read_only"] = True
    result = synthesize(StackConfig.model_validate(data), tmp_path / "dist", root=tmp_path)
    webserver = container(result.documents, "Deployment", "floe-dagster-webserver")
    assert webserver["command"][-1] == "--read-only"
    # dagster-webserver's own flag (its CLI in this environment).
    help_text = subprocess.run([str(Path(sys.executable).parent / "dagster-webserver"), "--help"], capture_output=True, text=True, check=True).stdout
    assert "--read-only" in help_text
    assert granted_by(find(result.documents, "Role", "floe-dagster-webserver")) == {}


def test_only_the_daemon_and_webserver_hold_the_launchers_token(cluster: SynthResult) -> None:
    binding = find(cluster.documents, "RoleBinding", "floe-dagster-launcher")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "floe-dagster-launcher"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "floe-dagster-launcher", "namespace": NAMESPACE}]
    assert not [d for d in cluster.documents if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    holders = set()
    for d in cluster.documents:
        if d["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob", "PodTemplate"):
            spec = pod_template(d)["spec"]
            if spec.get("automountServiceAccountToken") is not False:
                holders.add((d["metadata"]["name"], spec.get("serviceAccountName")))
    # The webserver holds its own account's token (WEBSERVER_RULES), not the launcher's.
    assert holders == {("floe-dagster-daemon", "floe-dagster-launcher"), ("floe-dagster-webserver", "floe-dagster-webserver")}
    api = find(cluster.documents, "NetworkPolicy", "floe-allow-kubernetes-api")["spec"]
    assert api["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["floe-dagster-daemon", "floe-dagster-webserver"]}
    ]
    assert api["policyTypes"] == ["Egress"] and {p["port"] for p in api["egress"][0]["ports"]} == {443, 6443}


@pytest.mark.parametrize(
    "mutation",
    ["unbound account mounts a token", "binding removed", "binding to a missing role", "wildcard verb", "cluster role binding", "unknown account"],
)
def test_mutation_security_check_guards_tokens_and_rbac(cluster: SynthResult, mutation: str) -> None:
    docs = copy.deepcopy(cluster.documents)
    assert check_manifests(docs, namespace=NAMESPACE, only=["security"]) == []
    user_code = find(docs, "Deployment", "floe-dagster-user-code")["spec"]["template"]["spec"]
    if mutation == "unbound account mounts a token":
        user_code.update(serviceAccountName="floe-dagster-run", automountServiceAccountToken=True)
        expected = "Deployment/floe-dagster-user-code"
    elif mutation == "binding removed":
        docs.remove(find(docs, "RoleBinding", "floe-dagster-launcher"))
        expected = "Deployment/floe-dagster-daemon"
    elif mutation == "binding to a missing role":
        find(docs, "RoleBinding", "floe-dagster-launcher")["roleRef"]["name"] = "someone-elses-role"
        expected = "Deployment/floe-dagster-daemon"
    elif mutation == "wildcard verb":
        find(docs, "Role", "floe-dagster-launcher")["rules"][0]["verbs"] = ["*"]
        expected = "Role/floe-dagster-launcher"
    elif mutation == "cluster role binding":
        binding = copy.deepcopy(find(docs, "RoleBinding", "floe-dagster-launcher"))
        binding.update(kind="ClusterRoleBinding")
        binding["metadata"].pop("namespace")
        docs.append(binding)
        expected = "ClusterRoleBinding/floe-dagster-launcher"
    else:
        user_code["serviceAccountName"] = "nobody"
        expected = "Deployment/floe-dagster-user-code"
    assert expected in {v.obj for v in check_manifests(docs, namespace=NAMESPACE, only=["security"])}


# --- the local profile is untouched -------------------------------------------------------------


def test_local_profile_keeps_the_default_launcher_and_no_rbac(stack: SynthResult) -> None:
    docs = stack.documents
    dagster_yaml = yaml.safe_load(find(docs, "ConfigMap", "floe-dagster-instance")["data"][INSTANCE_FILE])
    assert dagster_yaml["run_launcher"] == {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
    assert not [d["kind"] for d in docs if d["kind"] in RBAC_KINDS | {"PodTemplate"}]
    assert "floe-allow-kubernetes-api" not in {d["metadata"]["name"] for d in docs if d["kind"] == "NetworkPolicy"}
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            spec = d["spec"]["template"]["spec"]
            assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec, d["metadata"]["name"]
