"""The Dagster containers of dist/, run as local processes against a real PostgreSQL.

Each process gets the exact command, args, env (Secrets resolved) and mounted files of its
container, plus the image's ENV; only these differ from the pod (see tests/support/pods.py):
mount paths live under a temporary folder, the repo stands in for /opt/floe/app, and the
addresses below are the loopback ones of the local stand-ins.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from demo.lakehouse.local import LocalLakehouse, local_lakehouse
from floe.synth import SynthResult
from tests.support.manifests import container, resolve_env
from tests.support.minio_front import s3_config_of_dist
from tests.support.pods import LocalContainer, dockerfile_env, materialize
from tests.support.postgres import PostgresServer, free_port
from demo.processes import stop_process_group

pytestmark = pytest.mark.timeout(900)
STARTUP_TIMEOUT = 240  # a cold Dagster import on a loaded 2-core machine takes tens of seconds


def rewrites(pg: PostgresServer, grpc_port: int, web_port: int, s3: LocalLakehouse) -> dict[str, str]:
    return {
        # Service addresses -> local stand-ins. Exact tokens as they appear in env/args/files.
        "floe-postgres": pg.host,
        "5432": str(pg.port),
        "floe-minio": "127.0.0.1",
        "9000": str(s3.s3_port),
        "floe-dagster-user-code": "127.0.0.1",
        "3030": str(grpc_port),
        "3000": str(web_port),
        # Listen on loopback only (the pod listens on all of its own interfaces).
        "0.0.0.0": "127.0.0.1",
    }


def wait_for(predicate, what: str, process: subprocess.Popen, log: Path, timeout: float = STARTUP_TIMEOUT,
             interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what}: process exited with {process.returncode}\n{log.read_text()[-4000:]}")
        try:
            if predicate():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(interval)  # a port or URL of a local process: a cheap look, so a short pause
    raise AssertionError(f"{what}: not up after {timeout}s\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    stop_process_group(process)


@dataclass(frozen=True)
class Ports:
    grpc: int
    web: int


@pytest.fixture(scope="module")
def ports() -> Ports:
    """Picked when the pods start, not when the module is imported: a port picked at collection sat
    free for minutes, long enough for another test's server to take it first."""
    return Ports(grpc=free_port(), web=free_port())


@pytest.fixture(scope="module")
def minio(stack: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLakehouse]:
    """SeaweedFS S3 standing in for MinIO, with the MinIO root credentials of dist/ and one identity
    per client with the keys and grants the bucket step gives it (the keys the Dagster pods get from
    their Secrets: the pipeline's writes the run logs, the webserver's only reads them)."""
    env = resolve_env(container(stack.documents, "Deployment", "floe-minio"), stack.documents)
    with local_lakehouse(
        tmp_path_factory.mktemp("minio"), access_key=env["MINIO_ROOT_USER"], secret_key=env["MINIO_ROOT_PASSWORD"],
        s3_config=s3_config_of_dist(stack.documents),
    ) as lake:
        yield lake


@pytest.fixture(scope="module")
def pods(
    stack: SynthResult, stack_postgres: PostgresServer, minio: LocalLakehouse, scratch: Path, local_image: dict[str, Path],
    ports: Ports,
) -> dict[str, LocalContainer]:
    """Each Dagster container as the image's uid (from the pod's securityContext), with the image's
    files read-only to it and only its emptyDirs writable, as in the pod."""
    docs, image_env = stack.documents, dockerfile_env()
    table = rewrites(stack_postgres, ports.grpc, ports.web, minio)
    return {
        name: materialize(
            docs, "Deployment", f"floe-dagster-{name}", name, root=scratch / name, rewrites=table,
            image_env=image_env, extra_paths=local_image, as_pod_user=True,
        )
        for name in ("user-code", "webserver", "daemon")
    }


@pytest.fixture(scope="module")
def code_server(pods: dict[str, LocalContainer], scratch: Path, ports: Ports) -> Iterator[subprocess.Popen]:
    from dagster._core.errors import DagsterUserCodeUnreachableError
    from dagster._grpc.client import DagsterGrpcClient

    log = scratch / "user-code.log"
    process = pods["user-code"].start(log)

    def serving() -> bool:
        # Dagster's own ping, not a bare connect: that would also reach another program on the port.
        try:
            return DagsterGrpcClient(port=ports.grpc, host="127.0.0.1").ping("ready")["echo"] == "ready"
        except DagsterUserCodeUnreachableError:
            return False

    try:
        wait_for(serving, "dagster code server", process, log)
        yield process
    finally:
        stop(process)


@pytest.fixture(scope="module")
def webserver(pods: dict[str, LocalContainer], code_server: subprocess.Popen, scratch: Path, ports: Ports) -> Iterator[str]:
    log = scratch / "webserver.log"
    process = pods["webserver"].start(log)
    url = f"http://127.0.0.1:{ports.web}"
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


def test_instance_config_loads_with_postgres_storage(pods: dict[str, LocalContainer], stack: SynthResult, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster validates the rendered dagster.yaml and opens its PostgreSQL storage (migrating it)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    env = pods["daemon"].env
    for key, value in env.items():
        if key.startswith(("FLOE_DAGSTER_PG_", "DAGSTER_", "AWS_")):
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
        # Run logs on MinIO (the webserver is another pod than the one a run executes in).
        logs = instance.compute_log_manager
        assert type(logs).__name__ == "S3ComputeLogManager"
        assert logs.inst_data.config_dict["bucket"] == "dagster-logs"
        assert logs.inst_data.config_dict["endpoint_url"].startswith("http://127.0.0.1:")
        # The daemon's liveness probe (in dist/) requires exactly the daemons this instance runs,
        # run monitoring's among them (a dead run worker would otherwise hang the queue).
        probe = container(stack.documents, "Deployment", "floe-dagster-daemon")["livenessProbe"]["exec"]["command"]
        probed = probe[probe.index("--tolerance") + 2 :]
        assert tuple(instance.get_required_daemon_types()) == tuple(probed)
        assert "MONITORING" in probed and instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0


def test_run_logs_written_in_the_user_code_pod_reach_the_webserver(pods: dict[str, LocalContainer], webserver: str) -> None:
    """A step's stdout/stderr, captured by the user-code pod's instance (where the default run
    launcher runs it), is served by the webserver pod's GraphQL (its own /tmp never saw it)."""
    log_key = ["contract-run", "compute_logs", "raw_tables"]
    script = (
        "import sys\n"
        "from dagster import DagsterInstance\n"
        "with DagsterInstance.get() as instance:\n"
        f"    with instance.compute_log_manager.capture_logs({log_key!r}):\n"
        "        print('stdout of a step in the user-code pod', flush=True)\n"
        "        print('stderr of a step in the user-code pod', file=sys.stderr, flush=True)\n"
    )
    result = pods["user-code"].run(["python", "-c", script], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(pods["webserver"].local_path("/tmp").rglob("*.out")), "the webserver must not share the user-code pod's files"
    query = "query Logs($logKey: [String!]!) { capturedLogs(logKey: $logKey) { stdout stderr } }"
    response = httpx.post(f"{webserver}/graphql", json={"query": query, "variables": {"logKey": log_key}}, timeout=60)
    response.raise_for_status()
    logs = response.json()["data"]["capturedLogs"]
    assert "stdout of a step in the user-code pod" in (logs["stdout"] or "")
    assert "stderr of a step in the user-code pod" in (logs["stderr"] or "")


def test_code_server_serves_the_definitions(code_server: subprocess.Popen, ports: Ports) -> None:
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=ports.grpc, host="127.0.0.1")
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
    spec = container(stack.documents, "Deployment", "floe-dagster-daemon")
    probe = spec["livenessProbe"]["exec"]["command"]
    assert "readinessProbe" not in spec, "no Service selects the daemon"
    try:

        def healthy() -> bool:
            return daemon.run(probe, timeout=60).returncode == 0

        wait_for(healthy, "the daemon's liveness probe", process, log, interval=1)  # each look starts a Python
    finally:
        stop(process)
    # Stopped: the heartbeats age, and the probe fails once they are older than its tolerance.
    from constructs.dagster import DAEMON_HEARTBEAT_TOLERANCE_SECONDS

    later = daemon.run(["python", "-c", PROBE_AT_FUTURE_TIME, str(DAEMON_HEARTBEAT_TOLERANCE_SECONDS + 31), *probe], timeout=60)
    assert later.returncode == 1, later.stdout + later.stderr
    text = log.read_text()
    for daemon_name in ("SchedulerDaemon", "SensorDaemon", "QueuedRunCoordinatorDaemon"):
        assert daemon_name in text, f"{daemon_name} did not start:\n{text[-3000:]}"


#: Runs the probe command given in argv[2:] with time.time() moved argv[1] seconds ahead.
PROBE_AT_FUTURE_TIME = """
import runpy, sys, time
ahead = float(sys.argv[1]); real = time.time
time.time = lambda: real() + ahead
assert sys.argv[2:5] == ["python", "-m", "demo.orchestration.daemon_liveness"], sys.argv
sys.argv = ["daemon_liveness", *sys.argv[5:]]
try:
    runpy.run_module("demo.orchestration.daemon_liveness", run_name="__main__")
except SystemExit as exc:
    sys.exit(exc.code)
"""


def test_daemon_probe_agrees_with_dagsters_own_liveness_rule(pods: dict[str, LocalContainer], monkeypatch: pytest.MonkeyPatch) -> None:
    """On heartbeats written by Dagster's own API, fresh, stale and missing, the probe's verdict is
    Dagster's (`all_daemons_live`, what `dagster-daemon liveness-check` runs) at the same tolerance."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef
    from dagster._daemon.controller import all_daemons_live
    from dagster._daemon.types import DaemonHeartbeat

    from constructs.dagster import DAEMON_HEARTBEAT_TOLERANCE_SECONDS
    from demo.orchestration import daemon_liveness

    env = pods["daemon"].env
    for key, value in env.items():
        if key.startswith(("FLOE_DAGSTER_PG_", "DAGSTER_", "AWS_")):
            monkeypatch.setenv(key, value)
    tolerance = DAEMON_HEARTBEAT_TOLERANCE_SECONDS
    with DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"])) as instance:
        REQUIRED_DAEMONS = tuple(instance.get_required_daemon_types())  # noqa: N806 - read, not defined here
        now = time.time()
        cases = {
            "all fresh": dict.fromkeys(REQUIRED_DAEMONS, now - 5),
            "one just inside": {**dict.fromkeys(REQUIRED_DAEMONS, now), "SENSOR": now - 30 - tolerance + 5},
            "one stale": {**dict.fromkeys(REQUIRED_DAEMONS, now), "SCHEDULER": now - 30 - tolerance - 5},
            "one missing": {d: now for d in REQUIRED_DAEMONS if d != "BACKFILL"},
        }
        for name, beats in cases.items():
            instance.wipe_daemon_heartbeats()
            for daemon_type, timestamp in beats.items():
                instance.add_daemon_heartbeat(DaemonHeartbeat(timestamp, daemon_type, "contract", errors=None))
            dagster_says = all_daemons_live(instance, curr_time_seconds=now, heartbeat_tolerance_seconds=tolerance)
            ours = not daemon_liveness.stale_daemons(daemon_liveness.read_heartbeats(), list(REQUIRED_DAEMONS), tolerance=tolerance, now=now)
            assert ours == dagster_says, name
            assert dagster_says == (name in ("all fresh", "one just inside")), name
        instance.wipe_daemon_heartbeats()


def test_daemon_startup_probe_counts_only_heartbeats_newer_than_the_container(
    stack: SynthResult, pods: dict[str, LocalContainer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Recreate the previous pod's heartbeats are fresh: the startup probe must not pass on
    them. It counts heartbeats newer than its container's PID 1 (the daemon; here a stand-in process
    started now), so it fails on the old pod's beats and passes on the new daemon's own."""
    import subprocess

    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef
    from dagster._daemon.types import DaemonHeartbeat

    from demo.orchestration import daemon_liveness

    spec = container(stack.documents, "Deployment", "floe-dagster-daemon")
    startup, liveness = spec["startupProbe"]["exec"]["command"], spec["livenessProbe"]["exec"]["command"]
    assert startup[startup.index("--since-start-of-pid") + 1] == "1" and "--since-start-of-pid" not in liveness
    # The daemons both probes require (dagster.yaml's: MONITORING with run monitoring on), the same for both.
    REQUIRED_DAEMONS = liveness[liveness.index("--tolerance") + 2:]  # noqa: N806 - read from the probe
    assert startup[startup.index("--since-start-of-pid") + 2:] == REQUIRED_DAEMONS and "MONITORING" in REQUIRED_DAEMONS
    env = pods["daemon"].env
    for key, value in env.items():
        if key.startswith(("FLOE_DAGSTER_PG_", "DAGSTER_", "AWS_")):
            monkeypatch.setenv(key, value)
    before = time.time()
    main_process = subprocess.Popen(["sleep", "60"])  # this container's PID 1, started now
    try:
        started = daemon_liveness.process_start_time(main_process.pid)
        assert before - 1.5 <= started <= time.time() + 0.5  # /proc's btime is whole seconds
        probe = [*startup[:startup.index("--since-start-of-pid") + 1], str(main_process.pid), *startup[startup.index("--since-start-of-pid") + 2:]]
        with DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"])) as instance:
            instance.wipe_daemon_heartbeats()
            for daemon_type in REQUIRED_DAEMONS:  # the previous pod's: 20 s old, fresh for liveness
                instance.add_daemon_heartbeat(DaemonHeartbeat(started - 20, daemon_type, "old-pod", errors=None))
            assert pods["daemon"].run(liveness, timeout=60).returncode == 0  # liveness alone would pass
            old = pods["daemon"].run(probe, timeout=60)
            assert old.returncode == 1 and "since this container started" in old.stderr, old.stderr
            for daemon_type in REQUIRED_DAEMONS:  # the new daemon's own
                instance.add_daemon_heartbeat(DaemonHeartbeat(started + 2, daemon_type, "new-pod", errors=None))
            assert pods["daemon"].run(probe, timeout=60).returncode == 0
            instance.wipe_daemon_heartbeats()
    finally:
        main_process.kill()
        main_process.wait()


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


def test_duckdb_in_the_user_code_pod_is_sized_to_the_container(stack: SynthResult, pods: dict[str, LocalContainer]) -> None:
    """DuckDB's memory_limit and spill directory, as every DuckDB connection of the pod (dbt's
    through the plugin, the pipeline's own) sets them from the pod's env, follow the container's
    memory limit and land on the pod's /tmp emptyDir (the image is read-only)."""
    from constructs.dagster import DUCKDB_MEMORY_SHARE
    from floe.quantities import memory_bytes

    pod = pods["user-code"]
    limit = container(stack.documents, "Deployment", "floe-dagster-user-code")["resources"]["limits"]["memory"]
    script = (
        "import duckdb, json\n"
        "from demo.lakehouse.duckdb import init_sql\n"
        "from demo.lakehouse.settings import LakehouseSettings\n"
        "con = duckdb.connect()\n"
        "for statement in init_sql(LakehouseSettings()):\n"
        "    if statement.startswith('SET ') and 'extension' not in statement:\n"
        "        con.execute(statement)\n"
        "con.execute('CREATE TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(3000000)')\n"
        "con.execute(\"SET memory_limit = '64MiB'\")\n"  # force a spill into temp_directory
        "con.execute('SELECT count(*) FROM (SELECT s, i FROM t ORDER BY s)').fetchall()\n"
        "print(json.dumps(dict(con.execute(\"SELECT name, value FROM duckdb_settings() WHERE name IN ('temp_directory', 'max_temp_directory_size')\").fetchall())))\n"
    )
    assert pod.env["FLOE_DUCKDB_MEMORY_LIMIT"] == f"{int(memory_bytes(limit) // 2**20 * DUCKDB_MEMORY_SHARE)}MiB"
    result = pod.run(["python", "-c", script], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    settings = json.loads(result.stdout.strip().splitlines()[-1])
    assert settings["temp_directory"] == pod.env["FLOE_DUCKDB_TEMP_DIRECTORY"]
    assert settings["temp_directory"].startswith(str(pod.local_path("/tmp")))
