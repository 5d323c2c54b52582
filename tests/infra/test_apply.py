"""`kubectl apply -f dist/` is the contract: re-applying an unchanged dist/ must change nothing.

Client-side ``kubectl apply`` sends the three-way strategic merge patch between the last-applied
configuration (the annotation it wrote last time), the new file and the live object, and prints
``unchanged`` only when that patch is empty (k8s.io/kubectl pkg/cmd/apply/patcher.go; the patch comes
from apimachinery's ``CreateThreeWayMergePatch``, ported in tests/support/strategic_merge.py with the
patch metadata of the OpenAPI definitions: merge keys, ``$setElementOrder`` and ``$retainKeys``). The
live object is what the API server stored, not what we sent: write-only fields are gone (a Secret's
``stringData`` is folded into ``data``), quantities are canonical ("1000m" is stored as "1"), and the
API server's defaults are filled in (a Deployment's ``strategy.rollingUpdate`` 25 %/25 %, volumes'
``defaultMode`` ...). Under a ``retainKeys`` field (DeploymentSpec.strategy) such a default makes
kubectl send ``$retainKeys`` on every apply: ``configured`` each time. This test builds that live
object from the first synth, re-synthesizes, and computes the patch kubectl would send for every
object.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest

from floe.manifest_checks import POD_OWNER_KINDS, pod_template
from floe.quantities import canonical_quantity
from floe.synth import SynthResult
from tests.infra.conftest import synth
from tests.support.strategic_merge import RETAIN_KEYS
from tests.support.strategic_merge import three_way_patch as strategic_three_way_patch


def stored_by_api_server(doc: dict) -> dict:
    """The live object the API server keeps for ``doc`` (the parts client-side apply compares)."""
    live = copy.deepcopy(doc)
    if live["kind"] == "Secret" and "stringData" in live:
        data = live.setdefault("data", {})
        for key, value in live.pop("stringData").items():
            data[key] = base64.b64encode(value.encode()).decode()
    for spec in _pod_specs(live):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                for bound in (c.get("resources") or {}).values():
                    for resource, quantity in bound.items():
                        bound[resource] = canonical_quantity(quantity)
        for volume in spec.get("volumes") or []:
            if "sizeLimit" in (volume.get("emptyDir") or {}):
                volume["emptyDir"]["sizeLimit"] = canonical_quantity(volume["emptyDir"]["sizeLimit"])
        _pod_defaults(spec)
    _object_defaults(live)
    return live


def _object_defaults(live: dict) -> None:
    """What the API server's defaulting adds (k8s pkg/apis/apps/v1/defaults.go, batch/v1, core/v1)."""
    spec = live.get("spec")
    if live["kind"] == "Deployment":
        # SetDefaults_Deployment: type RollingUpdate unless set; a RollingUpdate gets 25 %/25 %.
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
    elif live["kind"] == "StatefulSet":
        update = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if update.get("type") == "RollingUpdate":
            update.setdefault("rollingUpdate", {"partition": 0})
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
    elif live["kind"] == "Job":
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
    elif live["kind"] == "Service":
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")


def _pod_defaults(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
    for volume in spec.get("volumes") or []:
        for source in ("configMap", "secret"):
            if source in volume:
                volume[source].setdefault("defaultMode", 420)


def _pod_specs(doc: dict) -> list[dict]:
    return [pod_template(doc)["spec"]] if doc["kind"] in POD_OWNER_KINDS else []


def apply_result(last_applied: dict, new: dict) -> str:
    """``unchanged`` or ``configured``, as kubectl would print for applying ``new`` over the live
    object that applying ``last_applied`` left behind."""
    patch = strategic_three_way_patch(last_applied, new, stored_by_api_server(last_applied))
    return "unchanged" if not patch else f"configured: {patch}"


def _key(doc: dict) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


@pytest.fixture(scope="module")
def two_synths(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthResult, SynthResult]:
    # Same credential store both times: a re-synth of the same checkout.
    folder = tmp_path_factory.mktemp("apply")
    store = folder / "credentials.json"
    return synth(folder / "a", credentials__store=str(store)), synth(folder / "b", credentials__store=str(store))


def test_resynth_is_byte_identical(two_synths: tuple[SynthResult, SynthResult]) -> None:
    first, second = two_synths
    assert [p.name for p in first.files] == [p.name for p in second.files]
    for a, b in zip(first.files, second.files):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two synths of the same config"


def test_reapplying_unchanged_dist_changes_no_object(two_synths: tuple[SynthResult, SynthResult]) -> None:
    first, second = two_synths
    before = {_key(d): d for d in first.documents}
    results = {f"{kind}/{name}": apply_result(before[(kind, name)], doc) for doc in second.documents for kind, name in [_key(doc)]}
    changed = {ref: result for ref, result in results.items() if result != "unchanged"}
    assert not changed, f"a second `kubectl apply -f dist/` would report these as configured: {changed}"
    assert {ref.split("/")[0] for ref in results} >= {"Secret", "Deployment", "StatefulSet", "Job", "ConfigMap", "Service"}


@pytest.mark.parametrize(
    ("label", "mutate"),
    [
        ("Secret written with stringData", lambda d: d.update(stringData={"password": "x"}) if d["kind"] == "Secret" else None),
        ("cpu written as 1000m", lambda d: [c["resources"]["limits"].update(cpu="1000m") for s in _pod_specs(d) for c in s["containers"]]),
        ("memory written as 1024Mi", lambda d: [c["resources"]["requests"].update(memory="1024Mi") for s in _pod_specs(d) for c in s["containers"]]),
        # What a real kube-apiserver showed for floe-cube and floe-marquez-web (issue 15): $retainKeys.
        ("strategy RollingUpdate without rollingUpdate", lambda d: d["spec"].update(strategy={"type": "RollingUpdate"}) if d["kind"] == "Deployment" else None),
    ],
)
def test_the_simulation_catches_what_kubectl_would_report(two_synths: tuple[SynthResult, SynthResult], label: str, mutate) -> None:  # noqa: ANN001
    """A test that cannot fail is a defect: the same comparison flags each known cause of a
    perpetual ``configured``."""
    documents = copy.deepcopy(two_synths[0].documents)
    for doc in documents:
        mutate(doc)
    flagged = [_key(d) for d in documents if apply_result(d, d) != "unchanged"]
    assert flagged, f"{label}: not noticed"


def test_the_patch_is_kubectls_for_a_defaulted_retainkeys_field() -> None:
    """The case the whole-list comparison this test used before could not see: nothing differs but
    a server default under a retainKeys field, and kubectl still sends a patch."""
    template = {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"strategy": {"type": "RollingUpdate"}, "template": template}}
    patch = strategic_three_way_patch(doc, copy.deepcopy(doc), stored_by_api_server(doc))
    assert patch == {"spec": {"strategy": {RETAIN_KEYS: ["type"]}}}
    explicit = {**doc, "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}, "template": template}}
    assert strategic_three_way_patch(explicit, copy.deepcopy(explicit), stored_by_api_server(explicit)) == {}
    recreate = {**doc, "spec": {"strategy": {"type": "Recreate"}, "template": template}}
    assert strategic_three_way_patch(recreate, copy.deepcopy(recreate), stored_by_api_server(recreate)) == {}
    # Merge keys: a server default inside a list element (a volume's defaultMode) is no change;
    # a changed element is, with the element order kubectl adds.
    pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "p"}, "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}], "volumes": [{"name": "v", "configMap": {"name": "cm"}}]}}}
    assert strategic_three_way_patch(pod, copy.deepcopy(pod), stored_by_api_server(pod)) == {}
    changed = copy.deepcopy(pod)
    changed["template"]["spec"]["containers"][0]["image"] = "i:2"
    assert strategic_three_way_patch(pod, changed, stored_by_api_server(pod)) == {
        "template": {"spec": {"containers": [{"name": "c", "image": "i:2"}], "$setElementOrder/containers": [{"name": "c"}]}}
    }


def _job_names(result: SynthResult) -> dict[str, str]:
    return {d["metadata"]["labels"]["app.kubernetes.io/name"]: d["metadata"]["name"] for d in result.documents if d["kind"] == "Job"}


def test_a_changed_job_gets_a_new_name_and_an_unchanged_one_keeps_it(two_synths: tuple[SynthResult, SynthResult], tmp_path: Path) -> None:
    """A Job's pod template is immutable: plain `kubectl apply` of a changed one would fail. Named
    after its content, a changed Job is a new object; an unchanged one is the same object."""
    first, second = two_synths
    assert _job_names(first) == _job_names(second)
    assert all(name.startswith(f"{base}-") and len(name) == len(base) + 9 for base, name in _job_names(first).items())
    store = first.out_dir.parent.parent / "credentials.json"  # the same credentials (a Secret change renames its Jobs too)
    changed = _job_names(synth(tmp_path, polaris__catalog="other", credentials__store=str(store)))  # reaches only the Polaris init Job's env
    before = _job_names(first)
    assert changed["floe-polaris-init"] != before["floe-polaris-init"]
    assert changed["floe-minio-buckets"] == before["floe-minio-buckets"]
    for doc in first.documents:
        # The verification Job (dist/verify/) is never applied by a deploy: its deadline is the run's.
        if doc["kind"] == "Job" and doc["metadata"]["labels"].get("app.kubernetes.io/component") != "verify":
            assert doc["spec"]["ttlSecondsAfterFinished"] > 0
            # No deadline that counts image pulls: a slow first pull cannot fail the Job for good.
            assert "activeDeadlineSeconds" not in doc["spec"] and "activeDeadlineSeconds" not in pod_template(doc)["spec"]
