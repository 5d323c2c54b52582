"""Pod placement (placement, issue 18 item 10): imagePullSecrets, nodeSelector, tolerations and
priorityClassName reach every pod the stack declares, per component, and the run pods that
dagster-k8s itself builds; run pods carry the autoscaler's safe-to-evict "false"."""

from __future__ import annotations

import pytest

from floe.config import StackConfig, load_config
from floe.manifest_checks import check_manifests, pod_template
from floe.synth import SynthResult, synthesize
from tests.contract.test_k8s_run_launcher import _launch, in_cluster, instance  # noqa: F401 - fixtures
from tests.infra.conftest import REPO, default_synth, write_fake_credentials  # noqa: F401 - fixture
from tests.support.manifests import find

NAMESPACE = "floe"
OWNERS = ("Deployment", "StatefulSet", "Job", "CronJob", "PodTemplate")
PLACEMENT = {
    "image_pull_secrets": ["registry-pull"],
    "default": {
        "node_selector": {"pool": "floe"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "floe", "effect": "NoSchedule"}],
        "priority_class_name": "floe-normal",
    },
    "components": {
        "postgres": {"node_selector": {"pool": "floe-state"}, "priority_class_name": "floe-critical"},
        "dagster-run": {"tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]},
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    folder = tmp_path_factory.mktemp("placement")
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    data["placement"] = PLACEMENT
    return synthesize(StackConfig.model_validate(data), folder / "dist", root=folder)


def spec_of(doc: dict) -> dict:
    return pod_template(doc)["spec"]


def test_every_pod_is_placed_and_a_component_overrides(cluster: SynthResult) -> None:
    docs = cluster.documents
    owners = [d for d in docs if d["kind"] in OWNERS]
    assert len(owners) > 15
    for doc in owners:
        spec, name = spec_of(doc), doc["metadata"]["name"]
        assert spec["imagePullSecrets"] == [{"name": "registry-pull"}], name
        if doc["metadata"]["labels"]["app.kubernetes.io/name"] == "floe-postgres":
            assert spec["nodeSelector"] == {"pool": "floe-state"} and spec["priorityClassName"] == "floe-critical"
            assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "floe", "effect": "NoSchedule"}]
        elif doc["kind"] == "PodTemplate":
            assert spec["tolerations"] == [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]
            assert spec["nodeSelector"] == {"pool": "floe"}
        else:
            assert spec["nodeSelector"] == {"pool": "floe"} and spec["priorityClassName"] == "floe-normal", name
    assert check_manifests(cluster.documents, namespace=NAMESPACE, only=["schema", "pod-security"]) == []


def test_the_run_pods_dagster_k8s_builds_are_placed_and_not_evicted(cluster: SynthResult, instance) -> None:  # noqa: ANN001, F811
    """``instance`` opens this module's ``cluster`` (the placed profile) as the daemon does."""
    _, job = _launch(instance, "floe-project:0.1.0")
    template = job["spec"]["template"]
    spec = template["spec"]
    assert template["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
    assert spec["imagePullSecrets"] == [{"name": "registry-pull"}]
    assert spec["nodeSelector"] == {"pool": "floe"} and spec["priorityClassName"] == "floe-normal"
    assert spec["tolerations"] == [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]
    declared = find(cluster.documents, "PodTemplate", "floe-dagster-run")["template"]
    # The declared template also carries the config checksum (floe/config_checksum.py, like every pod
    # owner); the launcher's runs need none: each run pod is built at launch from the current config.
    from floe.config_checksum import ANNOTATION

    assert {k: v for k, v in declared["metadata"]["annotations"].items() if k != ANNOTATION} == template["metadata"]["annotations"]


def test_default_placement_changes_nothing(default_synth: SynthResult) -> None:
    for doc in default_synth.documents:
        if doc["kind"] in OWNERS:
            spec = spec_of(doc)
            assert not {"imagePullSecrets", "nodeSelector", "tolerations", "priorityClassName"} & spec.keys(), doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        ({"components": {"postgress": {}}}, "unknown component postgress"),
        ({"default": {"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]}}, "operator Exists takes no value"),
        ({"default": {"tolerations": [{"operator": "Equal", "value": "x"}]}}, "without a key must use operator Exists"),
        ({"default": {"priority_class_name": "Not_A_Name"}}, "placement.default.priority_class_name"),
    ],
)
def test_bad_placement_is_refused(placement: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StackConfig.model_validate({"placement": placement})
