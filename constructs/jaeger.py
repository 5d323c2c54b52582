"""Jaeger v2 all-in-one: OTLP receiver, in-memory trace store bounded to fit its memory limit, UI."""

from __future__ import annotations

import yaml

from constructs import base, k8s, plain
from floe.config import JaegerConfig, StackConfig
from floe.memory import go_memory_limit

# The image's USER (jaegertracing/jaeger cmd/jaeger/Dockerfile: USER_UID=10001).
JAEGER_RUN_AS = base.RunAs(uid=10001, gid=10001)
CONFIG_FILE = "config.yaml"
STORE = "memstore"


def jaeger_config(j: JaegerConfig) -> dict:
    """The collector config; keys from cmd/jaeger/internal/all-in-one.yaml (jaeger v2)."""
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["jaeger_storage_exporter"]}
            },
        },
        "extensions": {
            "healthcheckv2": {
                "use_v2": True,
                "http": {"endpoint": f"0.0.0.0:{j.health_port}", "status": {"enabled": True, "path": "/status"}},
            },
            "jaeger_query": {"storage": {"traces": STORE}, "http": {"endpoint": f"0.0.0.0:{j.ui_port}"}},
            # Upstream keeps 100 000 traces by default: bounded here so the store fits the limit.
            "jaeger_storage": {"backends": {STORE: {"memory": {"max_traces": j.max_traces}}}},
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"0.0.0.0:{j.otlp_grpc_port}"},
                    "http": {"endpoint": f"0.0.0.0:{j.otlp_http_port}"},
                }
            }
        },
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": STORE}},
    }


class Jaeger(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        j, name = config.jaeger, config.names.jaeger
        lbls = base.labels(name, component="tracing", layer=layer, version=j.image.tag)
        config_map_name = f"{name}-config"
        base.config_map(self, "config", name=config_map_name, lbls=lbls, data={CONFIG_FILE: yaml.safe_dump(jaeger_config(j), sort_keys=False)})
        files = base.ConfigFiles("config", config_map_name, "/etc/jaeger")
        tmp = base.ScratchVolume("tmp", "/tmp", size_limit="64Mi")
        container = k8s.Container(
            name="jaeger",
            **base.image_fields(j.image),
            args=["--config", f"{files.path}/{CONFIG_FILE}"],
            ports=base.container_ports(
                {"ui": j.ui_port, "otlp-grpc": j.otlp_grpc_port, "otlp-http": j.otlp_http_port, "health": j.health_port}
            ),
            # The Go runtime collects harder as the heap nears GOMEMLIMIT: keep it under the
            # container limit so the store is trimmed by GC pressure, not by the OOM killer.
            env=[base.env("GOMEMLIMIT", go_memory_limit(j.resources.memory_limit))],
            resources=base.resources(j.resources),
            readiness_probe=base.http_get("/status", "health", base.READINESS),
            liveness_probe=base.http_get("/status", "health", base.LIVENESS),
            volume_mounts=[files.mount(), tmp.mount()],
            security_context=base.container_security(),
        )
        base.Workload(
            self,
            "workload",
            props=base.WorkloadProps(
                name=name,
                component="tracing",
                layer=layer,
                version=j.image.tag,
                containers=[container],
                run_as=JAEGER_RUN_AS,
                volumes=[files.volume(), tmp.volume()],
                services=[
                    base.ExposedService(
                        name,
                        [
                            base.ServicePort("ui", j.ui_port, j.ui_port, forward_to=16686),
                            base.ServicePort("otlp-grpc", j.otlp_grpc_port, j.otlp_grpc_port),
                            base.ServicePort("otlp-http", j.otlp_http_port, j.otlp_http_port),
                        ],
                        description="Jaeger UI (traces of Dagster runs, dbt, Iceberg I/O and Cube requests)",
                    )
                ],
            ),
        )
