"""The commands end to end against stand-in kubectl/docker executables: exit codes, output, command lines."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from floe.deploy.cli import app, project_images, undeploy_argv
from floe.deploy.kubectl import Kubectl
from floe.deploy.manifests import Stack
from tests.deploy.conftest import FIXTURE_DIST, FakeTools

REPO = Path(__file__).parents[2]
IMAGE = "floe-project:0.1.0"


def run(fake_tools: FakeTools, *args: str):
    return CliRunner().invoke(app, [*args, "--dist", str(FIXTURE_DIST), "--kubectl", fake_tools.kubectl], catch_exceptions=False)


def applied_files(fake_tools: FakeTools) -> list[str]:
    return [Path(c[-1]).name for c in fake_tools.calls() if "apply" in c and c[-1] != "-"]


def test_full_deploy_succeeds_prints_timings_and_access(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    result = run(fake_tools, "deploy", "--image", IMAGE, "--poll", "0.1", "--no-data")
    assert result.exit_code == 0, result.output
    assert applied_files(fake_tools) == [f.name for f in sorted(FIXTURE_DIST.glob("*.k8s.yaml"))]
    # Every kubectl call after preflight is pinned to the context preflight checked.
    after = [c for c in fake_tools.calls() if c[0] == "--context"]
    assert after and all(c[1] == "docker-desktop" for c in after)
    out = result.output
    for fragment in ("Preflight", "phase infrastructure ready", "phase semantic ready", "Phase timings", "Access",
                     "http://localhost:4000", "/cubejs-api/v1/load", "/cubejs-api/graphql", "psql -h 127.0.0.1 -p 15432",
                     "kubectl get secret -n floe floe-cube-sql -o jsonpath='{.data.password}' | base64 -d", "psycopg2.connect"):
        assert fragment in out, fragment


def test_infra_deploy_applies_only_its_phases(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    result = run(fake_tools, "deploy", "--phase", "infrastructure", "--phase", "observability", "--image", IMAGE, "--poll", "0.1")
    assert result.exit_code == 0, result.output
    assert applied_files(fake_tools) == ["0000-namespace.k8s.yaml", "0001-infrastructure.k8s.yaml", "0002-observability.k8s.yaml"]
    # The access table lists what was deployed: Jaeger yes, Cube (semantic) not yet.
    assert "http://localhost:16686" in result.output and "http://localhost:4000" not in result.output


def test_missing_image_fails_preflight_before_applying_anything(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", "")
    result = run(fake_tools, "deploy", "--image", IMAGE)
    assert result.exit_code == 1
    assert "not built: floe-project:0.1.0" in result.output and "preflight failed" in result.output
    assert applied_files(fake_tools) == []


def test_non_local_context_is_refused_unless_allowed(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    monkeypatch.setenv("FAKE_KUBE_CONTEXT", "prod-eks")
    monkeypatch.setenv("FAKE_KUBE_SERVER", "https://ABCD.gr7.eu-west-1.eks.amazonaws.com")
    refused = run(fake_tools, "deploy", "--image", IMAGE)
    assert refused.exit_code == 1 and "refusing to deploy there" in refused.output
    assert not any("get" in c and "--raw=/readyz" in c for c in fake_tools.calls()), "a refused cluster is never contacted"
    allowed = run(fake_tools, "deploy", "--image", IMAGE, "--allow-context", "prod-eks", "--poll", "0.1", "--no-data")
    assert allowed.exit_code == 0, allowed.output


def test_failing_pod_exits_1_with_the_report(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    monkeypatch.setenv("FAKE_KUBE_STATE", "image-never-pull")
    result = run(fake_tools, "deploy", "--image", IMAGE, "--poll", "0.1")
    assert result.exit_code == 1
    assert "ErrImageNeverPull — image not built" in result.output
    assert "run `make image`" in result.output
    assert applied_files(fake_tools) == ["0000-namespace.k8s.yaml", "0001-infrastructure.k8s.yaml"]


def test_timeout_exits_2(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    monkeypatch.setenv("FAKE_KUBE_STATE", "not-ready")
    result = run(fake_tools, "deploy", "--image", IMAGE, "--timeout", "1", "--poll", "0.2")
    assert result.exit_code == 2
    assert "timed out" in result.output and "Readiness probe failed" in result.output


def test_small_node_fails_preflight_with_the_numbers(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    monkeypatch.setenv("FAKE_KUBE_NODES", "nodes-small")
    result = run(fake_tools, "preflight", "--image", IMAGE)
    assert result.exit_code == 1
    assert "not enough memory" in " ".join(result.output.split())


def test_undeploy_deletes_in_reverse_then_the_namespace_and_is_idempotent(fake_tools: FakeTools) -> None:
    for _ in range(2):
        result = run(fake_tools, "undeploy")
        assert result.exit_code == 0, result.output
    deletes = [c[2:] for c in fake_tools.calls() if "delete" in c]
    first = deletes[: len(deletes) // 2]
    assert [Path(d[2]).name for d in first[:-1]] == [
        "0004-semantic.k8s.yaml", "0003-orchestration.k8s.yaml", "0002-observability.k8s.yaml", "0001-infrastructure.k8s.yaml", "0000-namespace.k8s.yaml",
    ]
    assert all("--ignore-not-found=true" in d for d in deletes)
    assert first[-1][:3] == ["delete", "namespace", "floe"] and "--wait=true" in first[-1]


def test_undeploy_without_dist_still_removes_the_namespace() -> None:
    argv = undeploy_argv(Kubectl("kubectl", "docker-desktop"), None, "floe", 120)
    assert argv == [["kubectl", "--context", "docker-desktop", "delete", "namespace", "floe", "--ignore-not-found=true", "--wait=true", "--timeout=120s"]]


def test_image_name_and_project_image_rules(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = Stack.load(FIXTURE_DIST)
    monkeypatch.setenv("FLOE_CONFIG", "/nonexistent.yaml")  # no config: the manifests alone decide
    assert project_images(stack) == [IMAGE]  # not postgres:18.1 (a Docker Hub library image)
    assert project_images(stack, stack.select(["semantic"])) == []
    monkeypatch.setenv("FLOE_PROJECT_IMAGE", "mine:1")
    assert project_images(stack, stack.select(["semantic"])) == []
    result = CliRunner().invoke(app, ["image-name", "--dist", str(FIXTURE_DIST), "--image", IMAGE])
    assert result.exit_code == 0 and result.output.strip() == IMAGE


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("deploy-local-infra", "-m floe.deploy deploy --dist dist --phase infrastructure --phase observability --timeout 600"),
        ("deploy-local-full", "-m floe.deploy deploy"),
        ("undeploy-local", "-m floe.deploy undeploy"),
        ("port-forward", "-m floe.deploy port-forward"),
        ("status", "-m floe.deploy status"),
        ("seed", "-m floe.deploy seed"),
        ("generate", "-m floe.deploy generate"),
        ("image", "docker build -t"),
    ],
)
def test_make_targets_call_the_cli(target: str, expected: str) -> None:
    out = subprocess.run(["make", "-n", "-f", "make/deploy.mk", target], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert expected in out, out


def ready_cluster(stack: Stack) -> dict:
    """What `kubectl get deployments,statefulsets,daemonsets,jobs,pods -o json` returns once every
    workload of ``stack`` is Ready / Complete (status fields as the controllers write them)."""
    items = []
    for obj in stack.objects():
        kind, meta, spec = obj.get("kind"), obj.get("metadata", {}), obj.get("spec", {})
        if kind not in ("Deployment", "StatefulSet", "Job"):
            continue
        live = {"apiVersion": obj["apiVersion"], "kind": kind, "metadata": {**meta, "generation": 1}, "spec": spec}
        replicas = spec.get("replicas", 1)
        if kind == "Deployment":
            live["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
        elif kind == "StatefulSet":
            live["status"] = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
                              "currentRevision": "r1", "updateRevision": "r1"}
        else:
            live["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        items.append(live)
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def test_deploys_the_leads_real_synth_output(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The whole command on what floe/synth.py writes today: phases in order, every workload awaited,
    every annotated Service in the access table."""
    synth = pytest.importorskip("floe.synth")
    config_mod = pytest.importorskip("floe.config")
    (tmp_path / "local.yaml").write_text("{}\n")
    config = config_mod.load_config(tmp_path / "local.yaml", environ={})
    dist = synth.synthesize(config, tmp_path / "dist", root=tmp_path).out_dir
    stack = Stack.load(dist)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(ready_cluster(stack)))
    monkeypatch.setenv("FAKE_KUBE_STATE_FILE", str(state_file))
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", config.project_image.ref)
    result = CliRunner().invoke(app, ["deploy", "--dist", str(dist), "--kubectl", fake_tools.kubectl, "--image", config.project_image.ref, "--poll", "0.1", "--no-data"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert applied_files(fake_tools) == [p.name for p in sorted(dist.glob("*.k8s.yaml")) if p.stat().st_size]
    out = " ".join(result.output.split())
    for phase in stack.phase_names:
        assert f"phase {phase} ready" in out
    for forward in stack.port_forwards():
        assert forward.service in out
    assert "floe-dagster-webserver" in out and "/cubejs-api/v1/load" in out


def test_a_full_deploy_ends_with_the_data_phase_and_infra_does_not(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make deploy-local-full` (no --phase) waits for data after the last phase, and its outcome is the
    command's exit code; `make deploy-local-infra` (--phase ...) never does. The phase itself is tested
    on recorded states in test_data_phase.py."""
    from floe.deploy import cli, data
    from floe.deploy.outcome import ExitCode

    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    calls: list[float] = []

    def data_phase(kubectl, stack, *, timeout, poll):  # noqa: ANN001, ANN202
        calls.append(timeout)
        return data.DataResult(ExitCode.TIMEOUT, timeout, "marts built; Cube: no rollup built yet", "no data after 30s")

    monkeypatch.setattr(cli, "_data_phase", data_phase)
    full = run(fake_tools, "deploy", "--image", IMAGE, "--poll", "0.1", "--data-timeout", "30")
    assert full.exit_code == 2 and calls == [30.0], full.output
    assert "│ data " in full.output and "timed out" in full.output
    infra = run(fake_tools, "deploy", "--phase", "infrastructure", "--phase", "observability", "--image", IMAGE, "--poll", "0.1")
    assert infra.exit_code == 0 and calls == [30.0], infra.output
