"""`kubectl apply -f dist/` is the contract: re-applying an unchanged dist/ must change nothing.

Client-side ``kubectl apply`` sends the three-way merge patch between the last-applied configuration
(the annotation it wrote last time), the new file and the live object, and prints ``unchanged``
only when that patch is empty (k8s.io/kubectl pkg/cmd/apply/patcher.go; the patch comes from
apimachinery's ``CreateThreeWayMergePatch``). The live object is what the API server stored, not
what we sent: write-only fields are gone (a Secret's ``stringData`` is folded into ``data``) and
quantities are canonical ("1000m" is stored as "1"). This test builds that live object from the
first synth, re-synthesizes, and computes the patch kubectl would send for every object.
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
    return live


def _pod_specs(doc: dict) -> list[dict]:
    return [pod_template(doc)["spec"]] if doc["kind"] in POD_OWNER_KINDS else []


def three_way_patch(original: dict | None, modified: dict, current: dict) -> dict:
    """What apply would send: fields of ``modified`` that differ from ``current``, and ``None`` for
    fields that were in ``original`` (last applied) but are no longer in ``modified``. Lists are
    compared whole: enough to prove "no change" (an equal list yields no patch under any merge
    strategy), stricter than strategic merge otherwise."""
    patch: dict = {}
    for key, value in modified.items():
        live = current.get(key)
        if isinstance(value, dict) and isinstance(live, dict):
            nested = three_way_patch((original or {}).get(key) if isinstance((original or {}).get(key), dict) else None, value, live)
            if nested:
                patch[key] = nested
        elif value != live:
            patch[key] = value
    for key in (original or {}).keys() - modified.keys():
        if key in current:
            patch[key] = None
    return patch


def apply_result(last_applied: dict, new: dict) -> str:
    """``unchanged`` or ``configured``, as kubectl would print for applying ``new`` over the live
    object that applying ``last_applied`` left behind."""
    patch = three_way_patch(last_applied, new, stored_by_api_server(last_applied))
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
            assert doc["spec"]["ttlSecondsAfterFinished"] > 0 and doc["spec"]["activeDeadlineSeconds"] < 600
