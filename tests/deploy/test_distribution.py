"""Distribution detection on recorded contexts and nodes of the six local distributions
(tests/deploy/fixtures/distributions, each file names its upstream source), and `load-image` on
stand-in kind/k3d/minikube executables that record their arguments (tests/deploy/bin/fake_loader.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from floe.deploy import preflight
from floe.deploy.cli import app
from floe.deploy.distribution import Detected, Distribution, KubeContext, detect, load_plan
from tests.deploy.conftest import BIN, FIXTURE_DIST, FIXTURES, FakeTools

REPO = Path(__file__).parents[2]
RECORDED = FIXTURES / "distributions"
IMAGE = "floe-project:0.1.0"


def recorded(name: str) -> tuple[dict, dict]:
    return (yaml.safe_load((RECORDED / f"{name}.kubeconfig.yaml").read_text()),
            yaml.safe_load((RECORDED / f"{name}.nodes.yaml").read_text()))


# name -> (distribution, cluster/profile, runtime, Docker Desktop provisioner)
EXPECTED = {
    "docker-desktop": (Distribution.DOCKER_DESKTOP, None, "docker", "kubeadm"),
    "docker-desktop-kind": (Distribution.DOCKER_DESKTOP, None, "containerd", "kind"),
    "kind": (Distribution.KIND, "floe", "containerd", None),
    "k3d": (Distribution.K3D, "floe", "containerd", None),
    "minikube": (Distribution.MINIKUBE, "floe", "docker", None),
    "orbstack": (Distribution.ORBSTACK, None, "docker", None),
    "rancher-desktop": (Distribution.RANCHER_DESKTOP, None, "docker", None),
    "rancher-desktop-containerd": (Distribution.RANCHER_DESKTOP, None, "containerd", None),
}


def test_every_recorded_distribution_has_a_kubeconfig_and_nodes() -> None:
    names = {p.name.split(".")[0] for p in RECORDED.glob("*.yaml")}
    assert names == {*EXPECTED, "remote-eks"}
    for path in RECORDED.glob("*.yaml"):
        assert path.read_text().startswith("# "), f"{path.name}: the header must say where its shape comes from"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detects_each_distribution_from_context_and_node(name: str) -> None:
    view, nodes = recorded(name)
    found = detect(KubeContext.from_config_view(view), nodes)
    assert (found.distribution, found.cluster, found.runtime, found.variant) == EXPECTED[name]
    assert found.evidence and str(found.distribution) in found.describe()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("docker-desktop", (Distribution.DOCKER_DESKTOP, None)),
        ("docker-desktop-kind", (Distribution.DOCKER_DESKTOP, None)),
        ("kind", (Distribution.KIND, "floe")),
        ("k3d", (Distribution.K3D, "floe")),
        ("minikube", (Distribution.MINIKUBE, "floe")),  # profile `floe`: named by the kubeconfig extension, not the context
        ("orbstack", (Distribution.ORBSTACK, None)),
        ("rancher-desktop", (Distribution.RANCHER_DESKTOP, None)),
        ("remote-eks", (Distribution.UNKNOWN, None)),
    ],
)
def test_the_context_alone_decides_when_no_node_could_be_read(name: str, expected: tuple) -> None:
    view = yaml.safe_load((RECORDED / f"{name}.kubeconfig.yaml").read_text())
    found = detect(KubeContext.from_config_view(view), None)
    assert (found.distribution, found.cluster) == expected


def test_the_node_wins_over_a_misleading_context_name() -> None:
    _, nodes = recorded("minikube")
    found = detect(KubeContext("kind-old", "https://127.0.0.1:1"), nodes)
    assert (found.distribution, found.cluster) == (Distribution.MINIKUBE, "floe")


def test_a_plain_kind_cluster_named_desktop_is_kind_not_docker_desktop() -> None:
    view, nodes = recorded("kind")
    node = nodes["items"][0]
    node["metadata"]["name"] = "desktop-control-plane"
    node["spec"]["providerID"] = "kind://docker/desktop/desktop-control-plane"
    found = detect(KubeContext("kind-desktop", "https://127.0.0.1:1"), nodes)
    assert (found.distribution, found.cluster) == (Distribution.KIND, "desktop")


def test_an_old_kind_node_without_provider_id_is_matched_by_name() -> None:
    view, nodes = recorded("kind")
    del nodes["items"][0]["spec"]["providerID"]
    found = detect(KubeContext.from_config_view(view), nodes)
    assert (found.distribution, found.cluster) == (Distribution.KIND, "floe")
    assert "floe-control-plane" in found.evidence


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_local_context_is_accepted_and_the_remote_one_refused(name: str) -> None:
    view, _ = recorded(name)
    ctx = KubeContext.from_config_view(view)
    assert preflight.check_context(ctx.name, ctx.server, providers=ctx.providers).ok, (name, ctx)
    remote = KubeContext.from_config_view(yaml.safe_load((RECORDED / "remote-eks.kubeconfig.yaml").read_text()))
    refused = preflight.check_context(remote.name, remote.server)
    assert not refused.ok and "--allow-context prod-eks" in refused.message


def test_a_minikube_profile_on_the_minikube_network_is_local_by_its_kubeconfig_extension() -> None:
    ctx = KubeContext.from_config_view(recorded("minikube")[0])
    assert (ctx.name, ctx.server) == ("floe", "https://192.168.49.2:8443")
    assert not preflight.check_context(ctx.name, ctx.server).ok  # neither the name nor the address says "local"
    assert "minikube profile" in preflight.check_context(ctx.name, ctx.server, providers=ctx.providers).message


def test_preflight_names_the_distribution_and_keeps_the_check_order(stack) -> None:
    view, nodes = recorded("k3d")
    inputs = preflight.PreflightInputs("k3d-floe", "https://0.0.0.0:38543", (0, "ok"), {IMAGE: True}, nodes, {"items": []}, view)
    checks = preflight.decide(inputs, stack, list(stack.phases), [IMAGE])
    assert [c.name for c in checks] == ["kubectl context", "cluster reachable", "project image", "pull policy", "capacity"]
    assert "distribution: k3d (cluster floe, containerd runtime) [node k3d-floe-server-0" in checks[0].message


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("kind", ["kind", "load", "docker-image", IMAGE, "--name", "floe"]),
        ("k3d", ["k3d", "image", "import", IMAGE, "-c", "floe"]),
        ("minikube", ["minikube", "image", "load", IMAGE, "-p", "floe"]),
        ("docker-desktop", None),
        ("docker-desktop-kind", None),
        ("orbstack", None),
        ("rancher-desktop", None),
    ],
)
def test_load_plan_per_distribution(name: str, argv: list[str] | None) -> None:
    view, nodes = recorded(name)
    plan = load_plan(detect(KubeContext.from_config_view(view), nodes), IMAGE)
    assert (list(plan.argv) if plan.argv else None) == argv
    assert not plan.refused


def test_rancher_desktop_with_containerd_is_refused_with_the_command_that_works() -> None:
    view, nodes = recorded("rancher-desktop-containerd")
    plan = load_plan(detect(KubeContext.from_config_view(view), nodes), IMAGE)
    assert plan.refused and plan.argv is None
    assert f"nerdctl --namespace k8s.io build -t {IMAGE} ." in plan.reason and "dockerd (moby)" in plan.reason


def test_docker_desktop_kind_provisioner_names_the_containerd_image_store() -> None:
    plan = load_plan(Detected(Distribution.DOCKER_DESKTOP, None, "containerd", "kind"), IMAGE)
    assert plan.argv is None and "containerd image store" in plan.reason


def test_unknown_distribution_loads_nothing_and_says_so() -> None:
    plan = load_plan(Detected(Distribution.UNKNOWN), IMAGE)
    assert plan.argv is None and not plan.refused and "nothing loaded" in plan.reason


# --- `python -m floe.deploy load-image` on stand-in executables ------------------------------------

@pytest.fixture
def loaders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in kind/k3d/minikube (FLOE_KIND/FLOE_K3D/FLOE_MINIKUBE) logging their argv to the returned file."""
    log = tmp_path / "loader-calls.jsonl"
    monkeypatch.setenv("FAKE_LOADER_LOG", str(log))
    for tool, env in (("kind", "FLOE_KIND"), ("k3d", "FLOE_K3D"), ("minikube", "FLOE_MINIKUBE")):
        wrapper = tmp_path / f"fake-{tool}"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{BIN / "fake_loader.py"}" --as {tool} "$@"\n')
        wrapper.chmod(0o755)
        monkeypatch.setenv(env, str(wrapper))
    return log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def load_image(fake_tools: FakeTools, *args: str):
    return CliRunner().invoke(app, ["load-image", "--dist", str(FIXTURE_DIST), "--kubectl", fake_tools.kubectl, "--image", IMAGE, *args],
                              catch_exceptions=False)


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("kind", ["kind", "load", "docker-image", IMAGE, "--name", "floe"]),
        ("k3d", ["k3d", "image", "import", IMAGE, "-c", "floe"]),
        ("minikube", ["minikube", "image", "load", IMAGE, "-p", "floe"]),
    ],
)
def test_load_image_runs_the_distributions_loader(name: str, argv: list[str], fake_tools: FakeTools, loaders: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_DISTRIBUTION", name)
    result = load_image(fake_tools)
    assert result.exit_code == 0, result.output
    assert calls(loaders) == [argv]
    assert f"{IMAGE} is available in the cluster" in result.output


@pytest.mark.parametrize("name", ["docker-desktop", "docker-desktop-kind", "orbstack", "rancher-desktop"])
def test_load_image_does_nothing_where_docker_s_store_is_shared(name: str, fake_tools: FakeTools, loaders: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_DISTRIBUTION", name)
    result = load_image(fake_tools)
    assert result.exit_code == 0, result.output
    assert calls(loaders) == []
    assert str(EXPECTED[name][0]) in result.output


def test_load_image_refuses_rancher_desktop_with_containerd(fake_tools: FakeTools, loaders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_DISTRIBUTION", "rancher-desktop-containerd")
    result = load_image(fake_tools)
    assert result.exit_code == 1
    assert "nerdctl --namespace k8s.io build" in result.output and calls(loaders) == []


def test_load_image_refuses_a_remote_context_before_contacting_it(fake_tools: FakeTools, loaders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_DISTRIBUTION", "remote-eks")
    result = load_image(fake_tools)
    assert result.exit_code == 1 and "refusing to deploy there" in result.output
    assert calls(loaders) == []
    assert not any("get" in c for c in fake_tools.calls()), "a refused cluster is never contacted"


def test_load_image_with_a_missing_cli_says_what_to_install(fake_tools: FakeTools, loaders: Path, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("FAKE_KUBE_DISTRIBUTION", "kind")
    monkeypatch.setenv("FLOE_KIND", str(tmp_path / "no-such-kind"))
    result = load_image(fake_tools)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "not found: kind is needed to load the image" in out
    assert "https://kind.sigs.k8s.io/docs/user/quick-start/#installation" in out and "FLOE_KIND" in out


def test_load_image_reports_a_failing_loader(fake_tools: FakeTools, loaders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_DISTRIBUTION", "k3d")
    monkeypatch.setenv("FAKE_LOADER_FAIL", "ERRO[0000] Failed to get cluster floe: No nodes found for given cluster")
    result = load_image(fake_tools)
    assert result.exit_code == 1
    assert "No nodes found for given cluster" in " ".join(result.output.split())


def test_load_image_dry_run_runs_nothing(fake_tools: FakeTools, loaders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_DISTRIBUTION", "minikube")
    result = load_image(fake_tools, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"$ " in result.output and "image load floe-project:0.1.0 -p floe" in result.output
    assert calls(loaders) == []


def test_preflight_command_says_which_distribution_it_found(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_DISTRIBUTION", "orbstack")
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    result = CliRunner().invoke(app, ["preflight", "--dist", str(FIXTURE_DIST), "--kubectl", fake_tools.kubectl, "--image", IMAGE],
                                catch_exceptions=False)
    assert "OrbStack" in result.output, result.output


def test_load_image_without_any_context_stops_before_the_build(fake_tools: FakeTools, loaders: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: `make image` runs `load-image --dry-run` first; with no context it stops there, so no
    `docker build` runs for a cluster that is not there (it used to build, then load nothing, exit 0)."""
    monkeypatch.setenv("FAKE_KUBE_CONTEXT", "")
    result = load_image(fake_tools, "--dry-run")
    assert result.exit_code == 1, result.output
    assert "no current kubectl context" in result.output and "Nothing was built or loaded." in result.output
    assert calls(loaders) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_image_plans_builds_then_loads() -> None:
    out = subprocess.run(["make", "-n", "-f", "make/deploy.mk", "image"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if "load-image" in line or "docker build" in line]
    assert len(lines) == 3, out
    assert "load-image" in lines[0] and "--dry-run" in lines[0]
    assert "docker build -t" in lines[1]
    assert "load-image" in lines[2] and "--dry-run" not in lines[2]


def test_the_project_image_is_whatever_tag_dist_names(tmp_path: Path) -> None:
    """The tag is a digest of the build context (floe/image_tag.py): image-name and load-image take
    the project image from dist/ by repository, whatever its tag, for every distribution."""
    from floe.deploy.cli import project_images
    from floe.deploy.manifests import Stack
    from tests.deploy.conftest import FIXTURE_DIST

    shutil.copytree(FIXTURE_DIST, tmp_path / "dist")
    for path in (tmp_path / "dist").rglob("*.yaml"):
        path.write_text(path.read_text().replace("floe-project:0.1.0", "floe-project:src-0123456789ab"))
    assert project_images(Stack.load(tmp_path / "dist")) == ["floe-project:src-0123456789ab"]
