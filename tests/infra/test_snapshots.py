"""The synthesized manifests, held for review: a change to dist/ shows up as a snapshot diff.

Regenerate on purpose only (`pytest tests/infra/test_snapshots.py --snapshot-update`) and read the diff.
"""

from __future__ import annotations

import pytest

from floe.synth import SynthResult
from tests.infra.conftest import SNAPSHOT_IMAGE_TAG, synth


@pytest.fixture(scope="module")
def snapshot_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synth(tmp_path_factory.mktemp("snapshot"), project_image__tag=SNAPSHOT_IMAGE_TAG)


def chart_files(result: SynthResult) -> dict[str, str]:
    return {path.relative_to(result.out_dir).as_posix(): path.read_text() for path in result.files}


def test_chart_files_are_in_apply_order(default_synth: SynthResult) -> None:
    names = [p.name for p in default_synth.files if p.parent == default_synth.out_dir]
    assert names == sorted(names)
    assert [n.split("-", 1)[1] for n in names][:3] == ["namespace.k8s.yaml", "infrastructure.k8s.yaml", "observability.k8s.yaml"]


@pytest.mark.parametrize("chart", ["namespace", "infrastructure", "observability", "orchestration", "semantic", "verify"])
def test_chart_snapshot(snapshot_synth: SynthResult, chart: str, snapshot) -> None:
    # NNNN-<chart>.k8s.yaml, and verify/verify.k8s.yaml (the verification Job, never applied by `kubectl apply -f dist/`).
    files = {name.rsplit("/", 1)[-1].split("-", 1)[-1].removesuffix(".k8s.yaml"): text for name, text in chart_files(snapshot_synth).items()}
    if chart not in files:
        pytest.skip(f"chart {chart} is not synthesized yet")
    assert files[chart] == snapshot
