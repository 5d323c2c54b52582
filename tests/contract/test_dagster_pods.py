"""The Dagster containers of dist/, run as local processes against a real PostgreSQL.

Each process gets the exact command, args, env (Secrets resolved) and mounted files of its
container, plus the image's ENV; only these differ from the pod (see tests/support/pods.py):
mount paths live under a temporary folder, the repo stands in for /opt/floe/app, and the
addresses below are the loopback ones of the local stand-ins.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from floe.synth import SynthResult
from tests.support.manifests import container
from tests.support.pods import LocalContainer, dockerfile_env, materialize
from tests.support.postgres import PostgresServer, free_port

pytestmark = pytest.mark.timeout(900)
STARTUP_TIMEOUT = 240  # a cold Dagster import on a loaded 2-core machine takes tens of seconds


def rewrites(pg: PostgresServer, grpc_port: int, web_port: int) -> dict[str, str]:
    return {
        # Service addresses -> local stand-ins. Exact tokens as they appear in env/args/files.
        "floe-postgres": pg.host,
        "5432": str(pg.port),
        "floe-dagster-user-code": "127.0.0.1",
        "3030": str(grpc_port),
        "3000": str(web_port),
        # Listen on loopback only (the pod listens on all of its own interfaces).
        "0.0.0.0": "127.0.0.1",
    }


def wait_for(predicate, what: str, process: subprocess.Popen, log: Path, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what}: process exited with {process.returncode}\n{log.read_text()[-4000:]}")
        try:
            if predicate():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(1)
    raise AssertionError(f"{what}: not up after {timeout}s\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Ports:
    grpc = free_port()
    web = free_port()


@pytest.fixture(scope="module")
def pods(stack: SynthResult, stack_postgres: PostgresServer, scratch: Path, local_image: dict[str, Path]) -> dict[str, LocalContainer]:
    """Each Dagster container as the image's uid (from the pod's securityContext), with the image's
    files read-only to it and only its emptyDirs writable, as in the pod."""
    docs, image_env = stack.documents, dockerfile_env()
    table = rewrites(stack_postgres, Ports.grpc, Ports.web)
    return {
        name: materialize(
            docs, "Deployment", f"floe-dagster-{name}", name, root=scratch / name, rewrites=table,
            image_env=image_env, extra_paths=local_image, as_pod_user=True,
        )
        for name in ("user-code", "webserver", "daemon")
    }


@pytest.fixture(scope="module")
def code_server(pods: dict[str, LocalContainer], scratch: Path) -> Iterator[subprocess.Popen]:
    log = scratch / "user-code.log"
    process = pods["user-code"].start(log)

    def serving() -> bool:
        with socket.create_connection(("127.0.0.1", Ports.grpc), timeout=1):
            return True

    try:
        wait_for(serving, "dagster code server", process, log)
        yield process
    finally:
        stop(process)


@pytest.fixture(scope="module")
def webserver(pods: dict[str, LocalContainer], code_server: subprocess.Popen, scratch: Path) -> Iterator[str]:
    log = scratch / "webserver.log"
    process = pods["webserver"].start(log)
    url = f"http://127.0.0.1:{Ports.web}"
    try:
        wait_for(lambda: httpx.get(f"{url}/server_info", timeout=2).status_code == 200, "dagster-webserver", process, log)
        yield url
    finally:
        stop(process)


def test_pods_run_as_the_image_user_on_a_read_only_image(pods: dict[str, LocalContainer], local_image: dict[str, Path]) -> None:
    from demo.bootstrap.image import IMAGE_GID, IMAGE_UID

    for pod in pods.values():
        assert (pod.user, pod.group) == (IMAGE_UID, IMAGE_GID)
        probe = pod.run(["python", "-c", f"open({str(pod.cwd / 'demo' / 'probe')!r}, 'w')"])
        assert probe.returncode != 0 and "Permission denied" in probe.stderr
        assert pod.run(["python", "-c", "import tempfile; tempfile.mkstemp()"]).returncode == 0


def test_pods_use_the_generated_instance_and_workspace(pods: dict[str, LocalContainer]) -> None:
    for name, pod in pods.items():
        assert pod.env["DAGSTER_HOME"].endswith("/opt/dagster/home")
        assert (Path(pod.env["DAGSTER_HOME"]) / "dagster.yaml").exists(), name
    assert pods["webserver"].argv[0] == "dagster-webserver" and "--workspace" in pods["webserver"].argv
    assert pods["user-code"].argv[:3] == ["dagster", "api", "grpc"]


def test_instance_config_loads_with_postgres_storage(pods: dict[str, LocalContainer], monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster validates the rendered dagster.yaml and opens its PostgreSQL storage (migrating it)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    env = pods["daemon"].env
    for key, value in env.items():
        if key.startswith(("FLOE_DAGSTER_PG_", "DAGSTER_")):
            monkeypatch.setenv(key, value)
    with DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"])) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.scheduler).__name__ == "DagsterDaemonScheduler"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert instance.telemetry_enabled is False
        assert instance.get_runs_count() >= 0


def test_code_server_serves_the_definitions(code_server: subprocess.Popen) -> None:
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=Ports.grpc, host="127.0.0.1")
    assert client.ping("floe")["echo"] == "floe"
    assert client.health_check_query() == "SERVING"
    # The serialized repository listing names the module the container was told to load.
    assert "demo.orchestration.definitions" in client.list_repositories()


def test_webserver_lists_the_repository(webserver: str) -> None:
    query = """
    { workspaceOrError { ... on Workspace { locationEntries { name
        locationOrLoadError { __typename ... on RepositoryLocation { repositories { name jobs { name } } } } } } } }
    """
    response = httpx.post(f"{webserver}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    entries = response.json()["data"]["workspaceOrError"]["locationEntries"]
    assert [e["name"] for e in entries] == ["floe-demo"]
    location = entries[0]["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    jobs = {j["name"] for repo in location["repositories"] for j in repo["jobs"]}
    from demo.orchestration.definitions import SEED_JOB, TICK_JOB

    assert {SEED_JOB, TICK_JOB} <= jobs


def test_daemon_heartbeats_and_passes_its_liveness_probe(
    stack: SynthResult, pods: dict[str, LocalContainer], code_server: subprocess.Popen, scratch: Path
) -> None:
    daemon = pods["daemon"]
    log = scratch / "daemon.log"
    process = daemon.start(log)
    probe = container(stack.documents, "Deployment", "floe-dagster-daemon")["livenessProbe"]["exec"]["command"]
    try:

        def healthy() -> bool:
            return daemon.run(probe, timeout=60).returncode == 0

        wait_for(healthy, "dagster-daemon liveness-check", process, log)
    finally:
        stop(process)
    text = log.read_text()
    for daemon_name in ("SchedulerDaemon", "SensorDaemon", "QueuedRunCoordinatorDaemon"):
        assert daemon_name in text, f"{daemon_name} did not start:\n{text[-3000:]}"


def test_dbt_parses_with_the_user_code_profile_and_env(pods: dict[str, LocalContainer], scratch: Path) -> None:
    """dbt (as the user-code pod runs it) parses the project with the cluster target and its env."""
    pod = pods["user-code"]
    target = pod.env["FLOE_PIPELINE_DBT_TARGET"]
    assert target == "cluster"
    # The image sets DBT_TARGET_PATH/DBT_LOG_PATH under /tmp (the pod's scratch emptyDir).
    assert pod.env["DBT_TARGET_PATH"].startswith(str(pod.local_path("/tmp")))
    result = pod.run(["dbt", "parse", "--project-dir", "demo/dbt", "--profiles-dir", "demo/dbt", "--target", target], timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (Path(pod.env["DBT_TARGET_PATH"]) / "manifest.json").exists()
