"""The verification Job's manifest (constructs/verify.py): synthesized with the stack into
dist/verify/, out of reach of `kubectl apply -f dist/`, hardened like every pod, passing every
manifest check together with the stack, wired to every service it checks, with its NetworkPolicy
in the namespace chart (applied before anything else)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from constructs.network import derive
from demo.lakehouse.settings import LakehouseSettings
from demo.verify.settings import VerifySettings
from floe.deploy.manifests import Stack
from floe.deploy.verify import START_ALLOWANCE_SECONDS, load_template
from floe.manifest_checks import CHECKS, check_manifests
from floe.config import StackConfig
from floe.synth import SynthResult, load_file
from tests.infra.conftest import synth

NAMESPACE = "floe"


def verify_job(result: SynthResult) -> dict:
    (job,) = [d for d in result.documents if d["kind"] == "Job" and d["metadata"]["labels"]["app.kubernetes.io/name"] == "floe-verify"]
    return job


def test_the_job_is_in_dist_verify_and_no_plain_apply_reaches_it(default_synth: SynthResult) -> None:
    dist = default_synth.out_dir
    assert (dist / "verify" / "verify.k8s.yaml").is_file()
    # `kubectl apply -f dist/` reads the top-level files only (it does not recurse without -R).
    top_level = [d for path in sorted(dist.glob("*.yaml")) for d in load_file(path)]
    assert not any(d["kind"] == "Job" and "verify" in d["metadata"]["name"] for d in top_level)
    assert all("verify" not in p.name for p in dist.glob("*.yaml"))
    # The deploy tool's view of dist/ has no verify phase; the verify command finds its template.
    assert "verify" not in Stack.load(dist).phase_names
    assert load_template(dist)["metadata"]["name"] == verify_job(default_synth)["metadata"]["name"]


def test_every_manifest_check_runs_over_it_with_the_stack(default_synth: SynthResult) -> None:
    assert verify_job(default_synth) in default_synth.documents
    assert check_manifests(default_synth.documents, namespace=NAMESPACE) == []


@pytest.mark.parametrize(
    ("check", "mutate"),
    [
        ("security", lambda spec: spec["containers"][0]["securityContext"].pop("allowPrivilegeEscalation")),
        ("security", lambda spec: spec.update(automountServiceAccountToken=True)),
        ("resources", lambda spec: spec["containers"][0]["resources"].pop("limits")),
        ("endpoints", lambda spec: spec["containers"][0]["env"].append({"name": "FLOE_CUBE_API_URL_X", "value": "http://floe-cube:4001"})),
        ("references", lambda spec: spec["containers"][0]["volumeMounts"].append({"name": "nope", "mountPath": "/x"})),
        ("pod-security", lambda spec: spec["securityContext"].pop("runAsNonRoot")),
        ("schema", lambda spec: spec.update(restartPolicy=7)),
    ],
)
def test_the_checks_fire_on_a_broken_verify_job(default_synth: SynthResult, check: str, mutate) -> None:  # noqa: ANN001
    """Proof the checks see this Job: each mutation of it alone is caught."""
    documents = copy.deepcopy(default_synth.documents)
    job = verify_job(SynthResult(default_synth.out_dir, [], documents, 0))
    mutate(job["spec"]["template"]["spec"])
    violations = check_manifests(documents, namespace=NAMESPACE, only=[check])
    assert violations and all("floe-verify" in v.obj for v in violations), violations
    assert check in CHECKS


def test_hardened_and_bounded_like_every_pod(default_synth: SynthResult) -> None:
    job = verify_job(default_synth)
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"  # one attempt: a retry would re-trigger
    assert spec["ttlSecondsAfterFinished"] > 0 and spec["activeDeadlineSeconds"] == 600 + START_ALLOWANCE_SECONDS
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["command"] == ["python", "-m", "demo.verify"] and container["args"] == ["--timeout", "600"]
    assert container["image"] == StackConfig().project_image.ref  # floe-project:src-<digest of the build context>
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    assert [v["name"] for v in pod["volumes"]] == ["tmp"] and "emptyDir" in pod["volumes"][0]


def test_its_env_is_exactly_the_verifiers_settings(default_synth: SynthResult) -> None:
    """Every variable is one demo/verify reads (VerifySettings or LakehouseSettings), and every
    required setting is set."""
    (container,) = verify_job(default_synth)["spec"]["template"]["spec"]["containers"]
    names = {v["name"] for v in container["env"]}
    known = {VerifySettings.env_name(f) for f in VerifySettings.model_fields} | {LakehouseSettings.env_name(f) for f in LakehouseSettings.model_fields}
    assert names <= known, names - known
    required = {m.env_name(f) for m in (VerifySettings, LakehouseSettings) for f, info in m.model_fields.items() if info.is_required()}
    assert required <= names, required - names
    # Two principals: the writer under LakehouseSettings, the reader under its own variables.
    secret_of = {v["name"]: v["valueFrom"]["secretKeyRef"]["name"] for v in container["env"] if "valueFrom" in v}
    assert secret_of["FLOE_CATALOG_CLIENT_ID"] == "floe-catalog-writer" and secret_of["FLOE_READER_CLIENT_ID"] == "floe-catalog-reader"


def test_its_network_policy_lets_it_reach_every_service_it_checks(default_synth: SynthResult) -> None:
    edges = {(e.server, e.port) for e in derive(default_synth.documents, NAMESPACE).edges if e.client == "floe-verify"}
    assert edges == {("floe-polaris", 8181), ("floe-minio", 9000), ("floe-dagster-webserver", 3000), ("floe-cube", 4000),
                     ("floe-cube", 15432), ("floe-marquez", 5000), ("floe-jaeger", 16686)}
    namespace_chart = load_file(default_synth.out_dir / "0000-namespace.k8s.yaml")
    policy = next(d for d in namespace_chart if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "floe-verify")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "floe", "app.kubernetes.io/name": "floe-verify"}
    cube = next(d for d in namespace_chart if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "floe-cube")
    assert any(p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "floe-verify" for r in cube["spec"]["ingress"] for p in r["from"])


def test_switched_off_services_leave_no_variable_and_no_rule(tmp_path: Path) -> None:
    result = synth(tmp_path, jaeger__enabled=False, marquez__enabled=False)
    (container,) = verify_job(result)["spec"]["template"]["spec"]["containers"]
    names = {v["name"] for v in container["env"]}
    assert not names & {"FLOE_JAEGER_URL", "FLOE_MARQUEZ_URL"}  # the verifier reports those checks as skipped
    servers = {e.server for e in derive(result.documents, NAMESPACE).edges if e.client == "floe-verify"}
    assert servers == {"floe-polaris", "floe-minio", "floe-dagster-webserver", "floe-cube"}
