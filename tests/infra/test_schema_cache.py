"""The schema check's record of passed objects (floe.manifest_checks._SchemaVerdicts): an unchanged
object is not validated again, a changed or invalid one always is."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import floe.manifest_checks as checks
from floe.synth import SynthResult


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "schema-passed"
    monkeypatch.setenv("FLOE_SCHEMA_CACHE", str(path))
    return path


def _schema(documents: list[dict]) -> list[checks.Violation]:
    return checks.check_manifests(documents, namespace="floe", only=["schema"])


def test_passes_are_recorded_and_skipped_the_second_time(default_synth: SynthResult, record: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = default_synth.documents
    assert _schema(documents) == []
    keys = record.read_text().split()
    assert len(keys) == len(documents) * len(checks.SCHEMA_VERSIONS)

    validated: list[str] = []
    real = checks.schema_validator

    def counting(version: str, kind: str, api_version: str):  # noqa: ANN202
        validated.append(kind)
        return real(version, kind, api_version)

    monkeypatch.setattr(checks, "schema_validator", counting)
    assert _schema(documents) == []
    assert validated == []  # every object passed before: nothing validated

    changed = copy.deepcopy(documents)
    deployment = next(d for d in changed if d["kind"] == "Deployment")
    deployment["metadata"].setdefault("labels", {})["floe.dev/test"] = "changed"
    assert _schema(changed) == []
    assert validated == ["Deployment"] * len(checks.SCHEMA_VERSIONS)  # only the changed object


def test_an_invalid_object_is_never_recorded_and_always_reported(default_synth: SynthResult, record: Path) -> None:
    documents = copy.deepcopy(default_synth.documents)
    assert _schema(documents) == []
    service = next(d for d in documents if d["kind"] == "Service")
    service["spec"]["portz"] = service["spec"].pop("ports")
    for _ in range(2):
        violations = _schema(documents)
        assert [v.check for v in violations] == ["schema"] * len(checks.SCHEMA_VERSIONS)
        assert "portz" in violations[0].message


def test_an_unusable_record_means_validating_everything(default_synth: SynthResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FLOE_SCHEMA_CACHE", str(blocker / "schema-passed"))  # its parent is a file
    documents = copy.deepcopy(default_synth.documents)
    assert _schema(documents) == []
    broken = next(d for d in documents if d["kind"] == "ConfigMap")
    broken["dataa"] = broken.pop("data", {})
    assert any(v.check == "schema" and "dataa" in v.message for v in _schema(documents))
