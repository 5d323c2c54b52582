"""The default profile fits the plan's minimum node: a 4 GB Docker Desktop (issue 9).

Computed from dist/ as the scheduler does, every pod at once: Deployments and StatefulSets x
replicas, the bootstrap Jobs, one reconcile run, init containers by their maximum. The same
computation on the figures the stack had before (5.38 GiB of requests) must fail, or this test
could not fail at all.
"""

from __future__ import annotations

from pathlib import Path

from floe.capacity import DOCKER_DESKTOP_4GB, fit
from floe.quantities import memory_bytes
from floe.synth import SynthResult
from tests.infra.conftest import synth

# Requests of the stack before it was sized for 4 GB (commit c700954): (cpu, memory) per setting.
BEFORE = {
    "postgres__resources": ("100m", "256Mi", "500m", "512Mi"),
    "minio__resources": ("100m", "256Mi", "500m", "512Mi"),
    "polaris__resources": ("250m", "512Mi", "1", "1Gi"),
    "polaris__admin_tool_resources": ("250m", "512Mi", "1", "1Gi"),
    "jaeger__resources": ("100m", "256Mi", "500m", "512Mi"),
    "marquez__resources": ("200m", "512Mi", "1", "1Gi"),
    "marquez__web__resources": ("100m", "256Mi", "500m", "512Mi"),
    "dagster__webserver_resources": ("100m", "384Mi", "1", "768Mi"),
    "dagster__daemon_resources": ("100m", "256Mi", "500m", "512Mi"),
    "dagster__user_code_resources": ("250m", "1Gi", "2", "2Gi"),
    "cube__api_resources": ("100m", "512Mi", "1", "1Gi"),
    "cube__refresh_worker_resources": ("100m", "512Mi", "1", "1Gi"),
    "cubestore__router_resources": ("100m", "256Mi", "1", "1Gi"),
    "cubestore__worker_resources": ("100m", "256Mi", "1", "1Gi"),
    "bootstrap_resources": ("100m", "256Mi", "500m", "512Mi"),
}


def _resources(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> dict[str, str]:
    return {"cpu_request": cpu_request, "memory_request": memory_request, "cpu_limit": cpu_limit, "memory_limit": memory_limit}


def test_every_pod_and_job_of_the_default_profile_fits_a_4gb_docker_desktop(default_synth: SynthResult) -> None:
    result = fit(default_synth.documents)
    kinds = {name.split("/")[0] for name, _, _ in result.pods}
    assert {"Deployment", "StatefulSet", "Job", "CronJob"} <= kinds, kinds
    assert result.fits, result.summary() + "\n" + "\n".join(f"  {n}: {c}m {m / 2**20:.0f}Mi" for n, c, m in result.pods)


def test_the_figures_before_sizing_did_not_fit(tmp_path: Path) -> None:
    overrides = {key: _resources(*value) for key, value in BEFORE.items()}
    result = fit(synth(tmp_path, cubestore__workers=2, **overrides).documents)
    assert not result.fits
    assert result.memory_bytes > memory_bytes("5Gi"), result.summary()


def test_the_richer_layout_is_one_setting_away(tmp_path: Path) -> None:
    """Two Cube Store workers and the Marquez UI stay available by config; the lean default drops
    nothing the demo needs."""
    two = synth(tmp_path / "two", cubestore__workers=2)
    workers = next(d for d in two.documents if d["kind"] == "StatefulSet" and d["metadata"]["name"].endswith("cubestore-worker"))
    assert workers["spec"]["replicas"] == 2
    lean = synth(tmp_path / "lean", marquez__web__enabled=False)
    assert not any(d["metadata"]["name"].endswith("marquez-web") for d in lean.documents)
    assert fit(lean.documents).memory_bytes < fit(two.documents).memory_bytes
    assert DOCKER_DESKTOP_4GB.memory_bytes == int(3.6 * 2**30)
