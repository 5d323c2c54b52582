"""One preflight of tools and context before any work, for every cluster command (issue 16 item 3):
kubectl missing, docker missing or down (for the image), no context, a context not in kubeconfig, an
unreachable server: each its own one- or two-line message saying what to do, no traceback, exit 1,
nothing run against a cluster. Stand-in kubectl/docker executables, and the real kubectl where installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from floe.deploy.cli import app
from tests.deploy.conftest import FIXTURE_DIST, FakeTools

REPO = Path(__file__).parents[2]
IMAGE = "floe-project:0.1.0"

# Every command that talks to a cluster, with the arguments that make it need one.
COMMANDS = {
    "deploy": ["deploy", "--image", IMAGE, "--poll", "0.1"],
    "preflight": ["preflight", "--image", IMAGE],
    "undeploy": ["undeploy"],
    "port-forward": ["port-forward"],
    "status": ["status"],
    "seed": ["seed"],
    "generate": ["generate"],
    "verify": ["verify"],
    "cube-token": ["cube-token"],
    "load-image": ["load-image", "--image", IMAGE],
}
# What a cluster-touching call looks like in the stand-in's log (the ground's own calls are
# `config current-context`, `config view` and `get --raw=/readyz`).
WORK_VERBS = ("apply", "delete", "create", "port-forward", "logs", "exec")


def invoke(args: list[str], kubectl: str):
    env = {"COLUMNS": "100", "CUBEJS_API_SECRET": None, "FLOE_DAGSTER_URL": None}
    return CliRunner().invoke(app, [*args, "--dist", str(FIXTURE_DIST), "--kubectl", kubectl], env=env, catch_exceptions=False)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def assert_short(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = error_lines(result.output)
    assert 1 <= len(lines) <= 2, result.output  # nothing else printed: no table, no kubectl noise
    assert lines[0].startswith("error: ")
    text = " ".join(lines)
    for fragment in fragments:
        assert fragment in text, text


def work_calls(fake_tools: FakeTools) -> list[list[str]]:
    return [c for c in fake_tools.calls() if any(v in c for v in WORK_VERBS) or ("get" in c and "--raw=/readyz" not in c)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_kubectl_missing(command: str, tmp_path: Path) -> None:
    result = invoke(COMMANDS[command], str(tmp_path / "no-kubectl-here"))
    assert_short(result, "kubectl not found", "no-kubectl-here", "FLOE_KUBECTL", "https://kubernetes.io/docs/tasks/tools/")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_context(command: str, fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_CONTEXT", "")
    monkeypatch.setenv("KUBECONFIG", "/somewhere/kubeconfig")
    result = invoke(COMMANDS[command], fake_tools.kubectl)
    assert_short(result, "no current kubectl context", "KUBECONFIG=/somewhere/kubeconfig", "kubectl config use-context")
    assert not any("--raw=/readyz" in c for c in fake_tools.calls()) and work_calls(fake_tools) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unreachable_server(command: str, fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KUBE_UNREACHABLE", "1")
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    result = invoke(COMMANDS[command], fake_tools.kubectl)
    assert_short(result, "context 'docker-desktop'", "the API server does not answer", "127.0.0.1:6443 was refused", "/readyz")
    assert work_calls(fake_tools) == []


def test_docker_missing_for_the_image(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLOE_DOCKER", str(tmp_path / "no-docker-here"))
    result = invoke(["load-image", "--image", IMAGE, "--dry-run"], fake_tools.kubectl)
    assert_short(result, "docker not found", "no-docker-here", "FLOE_DOCKER", "Nothing was built or loaded.")


def test_docker_engine_down_for_the_image(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_ENGINE_DOWN", "1")
    result = invoke(["load-image", "--image", IMAGE, "--dry-run"], fake_tools.kubectl)
    assert_short(result, "the Docker engine does not answer", "Is the docker daemon running?", "Start Docker Desktop")


def test_preflight_before_build_checks_docker_not_the_image(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", "")  # not built yet: fine before the build
    ok = invoke(["preflight", "--image", IMAGE, "--before-build"], fake_tools.kubectl)
    assert ok.exit_code == 0, ok.output
    assert "not built" not in ok.output
    monkeypatch.setenv("FAKE_DOCKER_ENGINE_DOWN", "1")
    assert_short(invoke(["preflight", "--image", IMAGE, "--before-build"], fake_tools.kubectl), "Docker engine does not answer",
                 "Nothing was built or applied.")


def test_an_unknown_context_is_named(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--context naming a context kubeconfig lacks (`config view --minify` fails): said so, not 'unreachable'."""
    wrapper = tmp_path / "kubectl-no-view"
    wrapper.write_text(f'#!/bin/sh\nif [ "$3" = config ] && [ "$4" = view ]; then echo \'error: context "nope" does not exist\' >&2; exit 1; fi\n'
                       f'exec "{fake_tools.kubectl}" "$@"\n')
    wrapper.chmod(0o755)
    result = CliRunner().invoke(app, ["status", "--dist", str(FIXTURE_DIST), "--kubectl", str(wrapper), "--context", "nope"])
    assert_short(result, "context 'nope' is not in your kubeconfig", "kubectl config get-contexts")


def test_port_forward_prints_no_table_when_nothing_comes_up(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    from floe.deploy.manifests import Stack

    services = [s.service for s in Stack.load(FIXTURE_DIST).port_forwards()]
    monkeypatch.setenv("FAKE_PF_FAIL", ",".join(services))
    result = invoke(["port-forward"], fake_tools.kubectl)
    assert result.exit_code == 1
    assert "Port-forwards" not in result.output and "http://localhost" not in result.output
    assert "no port-forward came up" in result.output
    # One line per failed forward (kubectl's last line), not its whole stderr.
    assert sum("did not come up" in line for line in result.output.splitlines()) == len(services)


# --- the real kubectl, where installed: the messages come from what it really answers ---------------

KUBECTL = shutil.which("kubectl")


def run_real(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "FAKE_", "CUBEJS_"))}
    return subprocess.run([sys.executable, "-m", "floe.deploy", *args, "--dist", str(FIXTURE_DIST)], cwd=REPO,
                          env={**environ, "COLUMNS": "100", **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.parametrize("command", ["status", "port-forward", "undeploy", "cube-token"])
def test_real_kubectl_with_an_empty_kubeconfig(command: str, tmp_path: Path) -> None:
    empty = tmp_path / "kubeconfig"
    empty.write_text("")
    result = run_real([command], KUBECONFIG=str(empty))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = error_lines(result.stdout + result.stderr)
    assert len(lines) <= 2 and "no current kubectl context" in lines[0], lines


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_real_kubectl_with_a_server_that_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: docker-desktop\n"
        f"clusters: [{{name: dd, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: dd, user: {token: t}}]\n"
        "contexts: [{name: docker-desktop, context: {cluster: dd, user: dd}}]\n"
    )
    result = run_real(["status"], KUBECONFIG=str(config))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = error_lines(result.stdout + result.stderr)
    assert len(lines) == 2 and f"127.0.0.1:{port}" in lines[0] and "does not answer" in lines[0], lines


def test_real_path_without_kubectl(tmp_path: Path) -> None:
    result = run_real(["status"], PATH=str(tmp_path))  # sys.executable is absolute; nothing else is needed
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = error_lines(result.stdout + result.stderr)
    assert len(lines) == 2 and "kubectl not found" in lines[0], lines


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_deploy_local_full_preflights_before_building() -> None:
    out = subprocess.run(["make", "-n", "-f", "make/deploy.mk", "deploy-local-full"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    first_check = next(i for i, line in enumerate(lines) if "floe.deploy preflight" in line and "--before-build" in line)
    build = next(i for i, line in enumerate(lines) if "docker build" in line)
    deploy = next(i for i, line in enumerate(lines) if "floe.deploy deploy" in line)
    assert first_check < build < deploy
