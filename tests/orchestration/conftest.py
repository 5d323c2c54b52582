"""Fixtures for the orchestration tests: the session's real SeaweedFS (tests/conftest.py ``lakehouse``,
shared with tests/pipeline), per-test Iceberg namespaces (so empty/partial/full states do not leak
between tests), a temporary DAGSTER_HOME and local receivers for OpenLineage and OTLP/HTTP.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from demo.lakehouse.local import LocalLakehouse
from demo.lakehouse.settings import LakehouseSettings


@pytest.fixture(scope="session")
def extension_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("duckdb-extensions")


@dataclass
class PipelineEnv:
    """The environment one test's pipeline runs in (already applied to os.environ)."""

    lake: LocalLakehouse
    raw: str
    staging: str
    marts: str
    dagster_home: Path
    env: dict[str, str]

    @property
    def settings(self) -> LakehouseSettings:
        return LakehouseSettings()


@pytest.fixture
def pipeline_env(
    lakehouse: LocalLakehouse, extension_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> PipelineEnv:
    """FLOE_* for the shared lakehouse with namespaces of this test only, DAGSTER_HOME, dbt's DuckDB file."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        **lakehouse.env(),
        "FLOE_NAMESPACE_RAW": f"raw_{suffix}",
        "FLOE_NAMESPACE_STAGING": f"staging_{suffix}",
        "FLOE_NAMESPACE_MARTS": f"marts_{suffix}",
        "FLOE_DUCKDB_EXTENSION_DIRECTORY": str(extension_dir),
        "FLOE_DBT_DUCKDB_PATH": str(tmp_path / "dbt.duckdb"),
        # dbt's (and dagster-dbt's) folder for per-invocation targets: not the repository's demo/dbt/target.
        "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
        "FLOE_PIPELINE_ORDERS_PER_TICK": "25",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name in ("OPENLINEAGE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return PipelineEnv(
        lake=lakehouse,
        raw=env["FLOE_NAMESPACE_RAW"],
        staging=env["FLOE_NAMESPACE_STAGING"],
        marts=env["FLOE_NAMESPACE_MARTS"],
        dagster_home=tmp_path / "dagster",
        env=env,
    )


# --- receivers -----------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A tiny HTTP server on 127.0.0.1 that keeps OpenLineage events and OTLP spans it is sent."""

    url: str = ""
    lineage: list[dict] = field(default_factory=list)
    spans: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lineage_events(self, job_prefix: str = "") -> list[dict]:
        with self.lock:
            return [e for e in self.lineage if e["job"]["name"].startswith(job_prefix)]

    def span_list(self) -> list[dict]:
        with self.lock:
            return list(self.spans)


def _decode_otlp(body: bytes) -> list[dict]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = {}
                for a in span.attributes:
                    kind = a.value.WhichOneof("value")
                    attributes[a.key] = getattr(a.value, kind) if kind else None
                spans.append(
                    {
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "status": span.status.code,
                        "attributes": attributes,
                        "service": resource.get("service.name"),
                    }
                )
    return spans


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    captured = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            with captured.lock:
                captured.requests.append(self.path)
                if self.path == "/api/v1/lineage":
                    captured.lineage.append(json.loads(body))
                elif self.path == "/v1/traces":
                    captured.spans.extend(_decode_otlp(body))
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    captured.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield captured
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def observed_env(pipeline_env: PipelineEnv, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """Lineage and traces of this test's pipeline go to ``receiver``."""
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "floe-test")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "floe-test-pipeline")
    return receiver
