"""OpenTelemetry spans for the pipeline: Dagster runs and steps, dbt invocations, Iceberg reads/writes.

Configured only from the standard OpenTelemetry variables (the cluster sets the same names):

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): where spans go, over
  OTLP/HTTP protobuf (Jaeger v2 listens on :4318). Unset: tracing is off, logged once, nothing is sent.
- ``OTEL_SERVICE_NAME``: the service the spans belong to (default ``floe-pipeline``).
- ``OTEL_SDK_DISABLED=true``: off even with an endpoint (the SDK's own switch).
- ``OTEL_EXPORTER_OTLP_HEADERS`` / ``..._TIMEOUT`` / ``..._COMPRESSION`` are read by the exporter itself.

The provider is ours, not the process-global one: a process whose environment changes (tests with
one receiver each, the local main job) gets a fresh provider instead of OpenTelemetry's
"set once" global. An unreachable endpoint never fails a run: the exporter logs each failed batch
(``opentelemetry.exporter.otlp.proto.http``) and the spans of that batch are dropped.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Tracer

log = logging.getLogger("floe.observability.tracing")

TRACER_NAME = "floe.demo"
DEFAULT_SERVICE_NAME = "floe-pipeline"
#: How long the end of a run waits for its spans to leave (the exporter retries within its own timeout).
FLUSH_TIMEOUT_MILLIS = 10_000

# Standard names, spelled as in opentelemetry.sdk.environment_variables.
_ENV_KEYS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
)


@dataclass
class Tracing:
    """The configured tracer, or a no-op one when tracing is off."""

    enabled: bool
    tracer: Tracer
    provider: TracerProvider | None = None
    endpoint: str | None = None

    def flush(self) -> bool:
        """Send what is buffered; False if it did not all leave within the timeout."""
        if self.provider is None:
            return True
        return self.provider.force_flush(FLUSH_TIMEOUT_MILLIS)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


_lock = threading.Lock()
_current: tuple[tuple[str | None, ...], Tracing] | None = None


def _env_key() -> tuple[str | None, ...]:
    return tuple(os.environ.get(k) for k in _ENV_KEYS)


def _configure() -> Tracing:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        log.info("tracing is off: OTEL_SDK_DISABLED=true")
        return Tracing(enabled=False, tracer=trace.NoOpTracer())
    if not endpoint:
        log.info("tracing is off: OTEL_EXPORTER_OTLP_ENDPOINT is not set")
        return Tracing(enabled=False, tracer=trace.NoOpTracer())
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        # Only the OTLP/HTTP exporter is installed; say so rather than sending to a gRPC port in vain.
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported here; sending http/protobuf", protocol)
    service = os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    # The exporter resolves the endpoint itself: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or
    # OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces" (opentelemetry-exporter-otlp-proto-http).
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("tracing to %s as service %s", endpoint, service)
    return Tracing(enabled=True, tracer=provider.get_tracer(TRACER_NAME), provider=provider, endpoint=endpoint)


def tracing() -> Tracing:
    """The tracing set up from the current environment (rebuilt when the OTEL_* variables change)."""
    global _current
    key = _env_key()
    with _lock:
        if _current is None or _current[0] != key:
            if _current is not None:
                _current[1].flush()
                _current[1].shutdown()
            _current = (key, _configure())
        return _current[1]


def tracer() -> Tracer:
    return tracing().tracer


def flush() -> bool:
    return tracing().flush()


@contextmanager
def span(name: str, attributes: Mapping[str, object] | None = None) -> Iterator[Span]:
    """A span around a block, child of the current span; an exception marks it as an error."""
    with tracer().start_as_current_span(
        name, attributes=clean_attributes(attributes), record_exception=True, set_status_on_exception=True
    ) as current:
        yield current


def clean_attributes(attributes: Mapping[str, object] | None) -> dict[str, str | int | float | bool]:
    """Attribute values OpenTelemetry accepts (None dropped, others as str)."""
    out: dict[str, str | int | float | bool] = {}
    for k, v in (attributes or {}).items():
        if v is None:
            continue
        out[k] = v if isinstance(v, (str, int, float, bool)) else str(v)
    return out
