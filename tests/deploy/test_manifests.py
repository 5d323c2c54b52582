from __future__ import annotations

from pathlib import Path

import pytest

from floe.deploy.manifests import ManifestError, ObjectRef, ProbeSpec, Stack, pod_effective_requests
from tests.deploy.conftest import FIXTURE_DIST


def test_phases_follow_file_byte_order_and_merge_a_layer_split_over_files(stack: Stack) -> None:
    assert stack.phase_names == ["infrastructure", "observability", "orchestration", "semantic"]
    infra = stack.phases[0]
    # The namespace file carries the infrastructure layer label: it is applied with that phase, first.
    assert [f.name for f in infra.files] == ["0000-namespace.k8s.yaml", "0001-infrastructure.k8s.yaml"]
    assert stack.namespace == "floe"


def test_workloads_of_a_phase_are_what_the_wait_loop_expects(stack: Stack) -> None:
    assert stack.phases[0].workloads == [
        ObjectRef("Deployment", "floe-minio"),
        ObjectRef("Deployment", "floe-polaris"),
        ObjectRef("Deployment", "floe-postgres"),
        ObjectRef("Job", "floe-minio-buckets"),
        ObjectRef("Job", "floe-polaris-init"),
    ]
    assert ObjectRef("StatefulSet", "floe-cubestore-router") in stack.phases[3].workloads


def test_select_keeps_apply_order_and_rejects_unknown_phases(stack: Stack) -> None:
    assert [p.name for p in stack.select(["observability", "infrastructure"])] == ["infrastructure", "observability"]
    with pytest.raises(ManifestError, match=r"unknown phase\(s\) \['infra'\]"):
        stack.select(["infra"])


def test_missing_or_empty_dist_says_to_synthesize(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="synthesize first"):
        Stack.load(tmp_path / "dist")
    (tmp_path / "dist").mkdir()
    with pytest.raises(ManifestError, match="no \\*.k8s.yaml files"):
        Stack.load(tmp_path / "dist")


def test_empty_chart_file_is_a_phase_with_nothing_to_wait_for(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "0000-infrastructure.k8s.yaml").write_text((FIXTURE_DIST / "0001-infrastructure.k8s.yaml").read_text())
    (dist / "0001-observability.k8s.yaml").write_text("")
    stack = Stack.load(dist)
    assert stack.phase_names == ["infrastructure", "observability"]
    assert stack.phases[1].workloads == []


def test_port_forwards_come_from_service_annotations(stack: Stack) -> None:
    forwards = {s.service: s for s in stack.port_forwards()}
    assert set(forwards) == {"floe-minio-console", "floe-marquez-web", "floe-dagster-webserver", "floe-marquez", "floe-cube", "floe-cube-sql", "floe-jaeger"}
    # Marquez API: port named by number, forwarded to local 5001 (5000 is macOS AirPlay's).
    assert (forwards["floe-marquez"].service_port, forwards["floe-marquez"].preferred_local_port) == (5000, 5001)
    # Dagster: port named by name; the Service port (80), not the container's 3000, is forwarded.
    assert (forwards["floe-dagster-webserver"].service_port, forwards["floe-dagster-webserver"].preferred_local_port) == (80, 3000)
    # One port and no port annotation: that port.
    assert forwards["floe-marquez-web"].service_port == 3000
    assert forwards["floe-jaeger"].description == "Jaeger UI"


def test_port_annotation_naming_no_port_is_an_error(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    text = (FIXTURE_DIST / "0002-observability.k8s.yaml").read_text().replace('floe.dev/port-forward-port: ui', 'floe.dev/port-forward-port: web')
    (dist / "0000-observability.k8s.yaml").write_text(text)
    with pytest.raises(ManifestError, match="floe-jaeger: floe.dev/port-forward-port='web' names no port"):
        Stack.load(dist).port_forwards()


def test_resource_totals_multiply_replicas_and_separate_jobs(stack: Stack) -> None:
    totals = stack.resource_totals()
    # postgres 250m + minio 100m + polaris 250m + jaeger 100m + marquez 200m + webserver 100m
    # + user-code 250m + cube 2 x 200m + cubestore 200m
    assert totals.cpu_request_m == 250 + 100 + 250 + 100 + 200 + 100 + 250 + 400 + 200
    mi = 2**20
    assert totals.memory_request == (256 + 256 + 512 + 128 + 512 + 512 + 1024 + 2 * 512 + 512) * mi
    # The two bootstrap Jobs (100m/256Mi each) only count at the peak.
    assert totals.peak_memory_request - totals.memory_request == 2 * 256 * mi
    assert stack.pod_requests(include_jobs=True)[1] - stack.pod_requests(include_jobs=False)[1] == 2 * 256 * mi


def test_effective_pod_requests_follow_init_and_sidecar_rules() -> None:
    spec = {
        "initContainers": [
            {"name": "migrate", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
        ],
        "containers": [{"name": "app", "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "256Mi"}}}],
    }
    # init (1 CPU / 1Gi) dominates; the app's memory request defaults to its limit; the sidecar adds up.
    assert pod_effective_requests(spec) == (1000, 2**30)
    spec["initContainers"][0]["resources"]["requests"] = {"cpu": "10m", "memory": "8Mi"}
    assert pod_effective_requests(spec) == (300, (64 + 256) * 2**20)


def test_probes_fill_in_kubernetes_defaults(stack: Stack) -> None:
    probes = {(p.workload.name, p.container): p for p in stack.probes()}
    jaeger = probes[("floe-jaeger", "jaeger")].get("liveness")
    assert jaeger == ProbeSpec("liveness", "httpGet", 0, 10, 1, 3)
    # 3 failures 10 s apart, the last one counted after its 1 s timeout.
    assert jaeger.seconds_to_fail == 21
    pg = probes[("floe-postgres", "postgres")].get("startup")
    assert pg.seconds_to_fail == 29 * 2 + 2


def test_images_and_secrets(stack: Stack) -> None:
    images = stack.images(stack.select(["infrastructure"]))
    assert images["floe-project:0.1.0"] == "IfNotPresent"
    assert "postgres:18.1" in images
    assert "cubejs/cube:v1.7.43" not in images
    assert stack.secrets() == ["floe-minio-root"]


def test_reads_the_leads_real_synth_output(tmp_path: Path) -> None:
    """The contract with floe/synth.py: whatever it writes, the deploy tool can read."""
    synth = pytest.importorskip("floe.synth")
    config_mod = pytest.importorskip("floe.config")
    profile = tmp_path / "local.yaml"
    profile.write_text("{}\n")
    config = config_mod.load_config(profile, environ={})
    result = synth.synthesize(config, tmp_path / "dist", root=tmp_path)
    stack = Stack.load(result.out_dir)
    assert stack.phase_names[0] == "infrastructure"
    assert stack.namespace == config.namespace
    assert config.project_image.ref in stack.images()
    for spec in stack.port_forwards():
        assert 0 < spec.preferred_local_port < 65536
    assert stack.resource_totals().cpu_request_m > 0
