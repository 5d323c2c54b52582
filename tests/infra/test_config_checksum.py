"""Every change of a consumed ConfigMap or Secret reaches exactly the pods that read it.

The mechanism (floe/config_checksum.py, put on the templates by constructs.base.add_config_checksums)
derives what each pod reads from its own spec; the ``config-checksum`` check (mutations in
test_checks.py) holds dist/ to it. Here: the derivation itself, then real synths with one setting
changed, compared template by template.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from floe import config_checksum as cc
from floe.config import StackConfig
from floe.manifest_checks import POD_OWNER_KINDS, _references, check_manifests
from floe.manifest_checks import Manifests
from floe.synth import SynthResult, secret_names, synthesize
from tests.infra.conftest import FAKE_CREDENTIALS, make_config, synth

NAMESPACE = "floe"


def _templates(result: SynthResult) -> dict[str, dict]:
    """Pod templates by workload (a Job by its base name: its object name changes with its content)."""
    found = {}
    for doc in result.documents:
        if doc["kind"] in POD_OWNER_KINDS:
            name = doc["metadata"]["labels"]["app.kubernetes.io/name"] if doc["kind"] == "Job" else doc["metadata"]["name"]
            found[f"{doc['kind']}/{name}"] = doc
    return found


def _changed_templates(before: SynthResult, after: SynthResult) -> set[str]:
    a, b = _templates(before), _templates(after)
    assert a.keys() == b.keys()
    return {ref for ref in a if cc.template_of(a[ref]) != cc.template_of(b[ref]) or a[ref]["metadata"]["name"] != b[ref]["metadata"]["name"]}


def _consumers(result: SynthResult, kind: str, name: str) -> set[str]:
    m = Manifests(result.documents, NAMESPACE)
    pods = {f"{p.owner['kind']}/{p.workload}" for p in m.pods if any(k == kind and n == name for k, n, _, _ in _references(p))}
    return pods


# --- what a pod reads, from its spec ----------------------------------------------------------------


def test_consumed_covers_env_envfrom_volumes_projected_and_subpath() -> None:
    spec = {
        "containers": [{
            "name": "c",
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "a"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "b"}}},
                {"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cm-all"}}, {"secretRef": {"name": "s-all"}}],
            "volumeMounts": [
                {"name": "whole", "mountPath": "/w"},
                {"name": "files", "mountPath": "/f/x.yml", "subPath": "x.yml"},
                {"name": "itemized", "mountPath": "/i"},
                {"name": "proj", "mountPath": "/p"},
            ],
        }],
        "initContainers": [{"name": "i", "volumeMounts": [{"name": "sec", "mountPath": "/s"}]}],
        "volumes": [
            {"name": "whole", "configMap": {"name": "cm-whole"}},
            {"name": "files", "configMap": {"name": "cm-files"}},
            {"name": "itemized", "configMap": {"name": "cm-items", "items": [{"key": "k", "path": "k.txt"}]}},
            {"name": "sec", "secret": {"secretName": "s-vol"}},
            {"name": "proj", "projected": {"sources": [{"configMap": {"name": "cm-proj", "items": [{"key": "q", "path": "q"}]}}, {"secret": {"name": "s-proj"}}]}},
            {"name": "unmounted", "configMap": {"name": "cm-unused"}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    assert cc.consumed(spec) == sorted([
        ("ConfigMap", "cm-env", "a"), ("Secret", "s-env", "b"), ("ConfigMap", "cm-all", "*"), ("Secret", "s-all", "*"),
        ("ConfigMap", "cm-whole", "*"), ("ConfigMap", "cm-files", "x.yml"), ("ConfigMap", "cm-items", "k"),
        ("Secret", "s-vol", "*"), ("ConfigMap", "cm-proj", "q"), ("Secret", "s-proj", "*"),
    ])


def test_digest_follows_only_the_consumed_keys() -> None:
    spec = {"containers": [{"name": "c", "volumeMounts": [{"name": "f", "mountPath": "/a", "subPath": "a"}]}],
            "volumes": [{"name": "f", "configMap": {"name": "cm"}}]}
    objects = {("ConfigMap", "cm"): {"a": b"1", "b": b"2"}}
    first = cc.digest(spec, objects)
    assert cc.digest(spec, {("ConfigMap", "cm"): {"a": b"1", "b": b"changed"}}) == first  # b is not mounted
    assert cc.digest(spec, {("ConfigMap", "cm"): {"a": b"changed", "b": b"2"}}) != first
    assert cc.digest({"containers": [{"name": "c"}]}, objects) is None


def test_a_secret_digest_shows_nothing_of_the_secret(default_synth: SynthResult) -> None:
    annotations = {cc.template_of(d)["metadata"].get("annotations", {}).get(cc.ANNOTATION) for d in default_synth.documents if d["kind"] in POD_OWNER_KINDS}
    text = json.dumps(sorted(a for a in annotations if a))
    for value in FAKE_CREDENTIALS["database_passwords"].values():
        assert value not in text and base64.b64encode(value.encode()).decode() not in text
    assert FAKE_CREDENTIALS["minio_root_password"] not in text
    # The annotation is a single sha256: 64 hex characters, nothing else.
    assert all(len(a) == 64 and int(a, 16) >= 0 for a in annotations if a)


# --- real synths: a setting changed, exactly its consumers roll -------------------------------------


def test_dagster_max_concurrent_runs_rolls_the_three_dagster_pods(default_synth: SynthResult, tmp_path: Path) -> None:
    changed = _changed_templates(default_synth, synth(tmp_path, dagster__max_concurrent_runs=2))
    # dagster.yaml (the run queue) is read by the three Dagster pods, and by the reconcile's Job.
    assert changed == {
        "Deployment/floe-dagster-webserver", "Deployment/floe-dagster-daemon", "Deployment/floe-dagster-user-code",
        "CronJob/floe-reconcile",
    }
    assert changed == _consumers(default_synth, "ConfigMap", "floe-dagster-instance")


def test_a_jaeger_setting_rolls_jaeger_only(default_synth: SynthResult, tmp_path: Path) -> None:
    changed = _changed_templates(default_synth, synth(tmp_path, jaeger__max_traces=3000))
    assert changed == {"Deployment/floe-jaeger"} == _consumers(default_synth, "ConfigMap", "floe-jaeger-config")


def test_a_changed_secret_rolls_its_readers_and_renames_its_jobs(default_synth: SynthResult, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    store = Path(config.credentials.store)
    store.write_text(json.dumps({**FAKE_CREDENTIALS, "minio_root_password": "another-minio-password"}))
    after = synthesize(config, tmp_path / "dist", root=tmp_path)
    changed = _changed_templates(default_synth, after)
    assert changed == _consumers(default_synth, "Secret", "floe-minio-root")
    assert "Job/floe-minio-buckets" in changed and "Deployment/floe-minio" in changed
    names = {d["metadata"]["labels"]["app.kubernetes.io/name"]: d["metadata"]["name"] for r in (default_synth, after) for d in r.documents if d["kind"] == "Job"}
    before_names = {d["metadata"]["labels"]["app.kubernetes.io/name"]: d["metadata"]["name"] for d in default_synth.documents if d["kind"] == "Job"}
    assert names["floe-minio-buckets"] != before_names["floe-minio-buckets"]  # a new Job: it runs


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_changing_any_consumed_key_changes_exactly_its_consumers(default_synth: SynthResult, kind: str) -> None:
    """Every key of every ConfigMap/Secret in dist/, changed one at a time: the digest changes for
    exactly the pods whose references (the "references" check's own walk) name that object, and
    the check then flags those pods until they are re-synthesized."""
    documents = default_synth.documents
    objects = cc.index(documents)
    pods = Manifests(documents, NAMESPACE).pods
    baseline = {id(p): cc.digest(p.spec, objects) for p in pods}
    tried = 0
    for (k, name), data in objects.items():
        if k != kind:
            continue
        for key in data:
            mutated = {**objects, (kind, name): {**data, key: data[key] + b"-changed"}}
            moved = {p.ref for p in pods if cc.digest(p.spec, mutated) != baseline[id(p)]}
            expected = {p.ref for p in pods if any(rk == kind and rn == name and rkey in (None, key) for rk, rn, rkey, _ in _references(p))}
            assert moved == expected, f"{kind}/{name} key {key}"
            tried += 1
    assert tried >= 5


def test_the_check_flags_exactly_the_consumers_of_a_changed_configmap(default_synth: SynthResult) -> None:
    documents = copy.deepcopy(default_synth.documents)
    instance = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "floe-dagster-instance")
    instance["data"] = {k: v + "\n# changed\n" for k, v in instance["data"].items()}
    flagged = {v.obj for v in check_manifests(documents, namespace=NAMESPACE, only=["config-checksum"])}
    assert flagged == {"Deployment/floe-dagster-webserver", "Deployment/floe-dagster-daemon", "Deployment/floe-dagster-user-code", "CronJob/floe-reconcile"}


def test_existing_credentials_carry_a_checksum_of_what_is_known(tmp_path: Path) -> None:
    """``credentials.source: existing``: no Secret content is known at synth. The digest then names
    each Secret key read (so the check holds) and follows the ConfigMaps; a change of an existing
    Secret does not roll the pods (docs: `kubectl rollout restart`)."""
    config = StackConfig.model_validate({**make_config(tmp_path).model_dump(mode="json"), "credentials": {"source": "existing"}})
    result = synthesize(config, tmp_path / "dist", root=tmp_path)
    assert not [d for d in result.documents if d["kind"] == "Secret"]
    assert check_manifests(result.documents, namespace=NAMESPACE, external_secrets=secret_names(config), only=["config-checksum"]) == []
    minio = next(d for d in result.documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "floe-minio")
    assert cc.ANNOTATION in cc.template_of(minio)["metadata"]["annotations"]
