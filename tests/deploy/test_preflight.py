"""Preflight decisions (pure) and the inputs gathered through the real kubectl binary with a
throw-away kubeconfig (no cluster: the API server address is a closed local port)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import yaml

from floe.deploy import preflight
from floe.deploy.kubectl import Completed, Docker, Kubectl
from floe.deploy.manifests import Stack
from tests.deploy.conftest import FakeRunner, state

GiB = 2**30


@pytest.mark.parametrize(
    ("context", "server", "ok"),
    [
        ("docker-desktop", "https://kubernetes.docker.internal:6443", True),
        ("docker-desktop", "https://127.0.0.1:6443", True),
        ("my-laptop", "https://[::1]:6443", True),  # any name, loopback server
        ("kind-floe", "https://172.18.0.2:6443", True),  # kind's name, docker-network address
        ("minikube", "https://192.168.49.2:8443", True),
        ("prod-eks", "https://ABCD.gr7.eu-west-1.eks.amazonaws.com", False),
        ("gke_proj_europe-west1_main", "https://34.77.1.2", False),
        (None, None, False),
    ],
)
def test_context_decision(context: str | None, server: str | None, ok: bool) -> None:
    check = preflight.check_context(context, server)
    assert check.ok is ok
    if not ok and context:
        assert f"--allow-context {context}" in check.message and "refusing" in check.message


def test_a_remote_context_can_be_allowed_by_name() -> None:
    assert preflight.check_context("prod-eks", "https://x.eks.amazonaws.com", allowed=["prod-eks"]).ok
    assert not preflight.check_context("prod-eks", "https://x.eks.amazonaws.com", allowed=["other"]).ok


def test_capacity_fits_docker_desktop_default_and_not_a_small_vm(stack: Stack) -> None:
    others = preflight.requests_of_other_pods(state("pods-all-namespaces"), "floe")
    # kube-system: 850m CPU, 240Mi; the finished pod and our own old pod do not count.
    assert others == (850, 240 * 2**20)
    steady, peak = stack.pod_requests(include_jobs=False), stack.pod_requests(include_jobs=True)
    big = preflight.check_capacity(preflight.node_allocatable(state("nodes-docker-desktop")), others, steady, peak)
    assert big.ok, big.message
    small = preflight.check_capacity(preflight.node_allocatable(state("nodes-small")), others, steady, peak)
    assert not small.ok and small.blocking
    assert small.message.startswith("not enough memory")
    assert "Docker Desktop" in small.message and "Settings > Resources" in small.message


def test_capacity_that_only_fits_without_jobs_is_a_warning() -> None:
    check = preflight.check_capacity((4000, 4 * GiB), (0, 0), (1000, 3 * GiB), (1500, 5 * GiB))
    assert not check.ok and not check.blocking
    assert preflight.passed([check])


def test_image_and_pull_policy_checks() -> None:
    assert not preflight.check_images(["floe-project:0.1.0"], {"floe-project:0.1.0": False}).ok
    assert "make image" in preflight.check_images(["floe-project:0.1.0"], {}).message
    assert preflight.check_images(["floe-project:0.1.0"], {"floe-project:0.1.0": True}).ok
    assert not preflight.check_pull_policies({"floe-project:0.1.0": "Always"}, ["floe-project:0.1.0"]).ok
    assert preflight.check_pull_policies({"floe-project:0.1.0": "IfNotPresent"}, ["floe-project:0.1.0"]).ok


def test_refused_context_stops_before_any_other_check(stack: Stack) -> None:
    inputs = preflight.PreflightInputs("prod", "https://10.0.0.1:6443", (0, ""), {}, None, None)
    checks = preflight.decide(inputs, stack, list(stack.phases), ["floe-project:0.1.0"])
    assert [c.name for c in checks] == ["kubectl context"]
    assert not preflight.passed(checks)


def test_decide_runs_every_check_in_order(stack: Stack) -> None:
    inputs = preflight.PreflightInputs(
        "docker-desktop", "https://kubernetes.docker.internal:6443", (0, "ok"), {"floe-project:0.1.0": True},
        state("nodes-docker-desktop"), state("pods-all-namespaces"),
    )
    checks = preflight.decide(inputs, stack, list(stack.phases), ["floe-project:0.1.0"])
    assert [c.name for c in checks] == ["kubectl context", "cluster reachable", "project image", "pull policy", "capacity"]
    assert preflight.passed(checks)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with-block ends: nothing listens there


def _kubeconfig(path: Path, context: str, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": context, "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": context, "user": {"token": "fixture-token-not-a-secret"}}],
                "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
                "current-context": context,
            }
        )
    )
    return path


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl binary not installed")
def test_gather_with_real_kubectl_and_an_unreachable_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: Stack) -> None:
    server = f"https://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "config", "docker-desktop", server)))
    docker = Docker(runner=FakeRunner(rules=[(lambda argv: argv[1:3] == ["image", "inspect"], lambda argv: Completed(tuple(argv), 1, "", "No such image"))]))
    inputs = preflight.gather(Kubectl(), docker, ["floe-project:0.1.0"])
    assert (inputs.context, inputs.server) == ("docker-desktop", server)
    assert inputs.reachable[0] != 0 and "was refused" in inputs.reachable[1]
    checks = preflight.decide(inputs, stack, list(stack.phases), ["floe-project:0.1.0"])
    by_name = {c.name: c for c in checks}
    assert by_name["kubectl context"].ok
    assert not by_name["cluster reachable"].ok and "Docker Desktop running" in by_name["cluster reachable"].message
    assert not by_name["project image"].ok
    assert "capacity" not in by_name  # unknown without a cluster: not guessed


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl binary not installed")
def test_gather_reads_a_remote_context_from_kubeconfig_and_decide_refuses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: Stack) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "config", "prod-eks", f"https://127.0.0.1:{_closed_port()}")))
    inputs = preflight.gather(Kubectl(), Docker(runner=FakeRunner()), [])
    # Loopback server: allowed whatever the name (e.g. an SSH tunnel to a laptop cluster).
    assert preflight.check_context(inputs.context, inputs.server).ok
    assert not preflight.check_context(inputs.context, "https://abc.eks.amazonaws.com").ok
