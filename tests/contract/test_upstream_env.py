"""Every env var a container gets is one that something in it reads: its upstream image (curated,
sourced list below), our own settings classes, or the config files we render. A typo fails.

Cube and Cube Store containers are covered by tests/semantic (their own curated list).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from demo.bootstrap.identities import CLIENTS
from demo.bootstrap.settings import BucketSettings, PolarisInitSettings, S3Identity
from demo.lakehouse.settings import DbtSettings, LakehouseSettings
from demo.orchestration.settings import PipelineSettings
from demo.verify.settings import VerifySettings
from floe.synth import SynthResult
from floe.manifest_checks import pod_template
from tests.support.manifests import find

REPO = Path(__file__).resolve().parents[2]

# Third-party images: the variables each reads, with where that is written down.
UPSTREAM: dict[str, dict[str, str]] = {
    "postgres": {
        # docker-library/docs postgres/content.md "Environment Variables"; PGPORT: postgres(1) -p default.
        "POSTGRES_USER": "docker-library postgres entrypoint",
        "POSTGRES_PASSWORD": "docker-library postgres entrypoint",
        "POSTGRES_DB": "docker-library postgres entrypoint",
        "PGPORT": "PostgreSQL docs, postgres -p: defaults to PGPORT",
    },
    "minio": {
        "MINIO_ROOT_USER": "minio internal/config/constants.go EnvRootUser",
        "MINIO_ROOT_PASSWORD": "minio internal/config/constants.go EnvRootPassword",
        "MINIO_SITE_REGION": "minio internal/config/constants.go EnvSiteRegion (MINIO_REGION is legacy)",
        "HOME": "minio certs dir default ${HOME}/.minio/certs",
        # MinIO always sets the Go memory limit itself (debug.SetMemoryLimit in setMaxResources), from
        # --memlimit / MINIO_MEMLIMIT or else the memory available: GOMEMLIMIT is overridden.
        "MINIO_MEMLIMIT": "minio cmd/server-main.go ServerFlags memlimit (EnvVar MINIO_MEMLIMIT, humanize.ParseBytes)",
    },
    "polaris": {
        "POLARIS_PERSISTENCE_TYPE": "polaris site metastores/relational-jdbc.md",
        "QUARKUS_DATASOURCE_JDBC_URL": "polaris site metastores/relational-jdbc.md",
        "QUARKUS_DATASOURCE_USERNAME": "polaris site metastores/relational-jdbc.md",
        "QUARKUS_DATASOURCE_PASSWORD": "polaris site metastores/relational-jdbc.md",
        "POLARIS_REALM_CONTEXT_REALMS": "polaris application.properties polaris.realm-context.realms",
        "QUARKUS_DATASOURCE_JDBC_MAX_SIZE": "Quarkus datasource guide quarkus.datasource.jdbc.max-size (Agroal, default 20)",
        # Quarkus >= 3.26 name (Migration-Guide-3.26 enable -> enabled; apache/polaris#3799);
        # QUARKUS_LOG_FILE_ENABLE is removed by quarkusio/quarkus#56198.
        "QUARKUS_LOG_FILE_ENABLED": "polaris application.properties quarkus.log.file.enabled",
        # ubi9/openjdk-21-runtime run-java.sh (FROM in runtime/{server,admin}/src/main/docker/Dockerfile.jvm):
        # jboss-container-images/openjdk modules/jvm/module.yaml and jvm/bash/.../java-default-options.
        "JAVA_MAX_MEM_RATIO": "run-java.sh java-default-options max_memory() -> -XX:MaxRAMPercentage",
        "GC_MAX_METASPACE_SIZE": "run-java.sh java-default-options gc_config() -> -XX:MaxMetaspaceSize",
        "JAVA_OPTS_APPEND": "run-java.sh get_java_options(), appended to the generated options",
        "QUARKUS_OTEL_SDK_DISABLED": "polaris application.properties quarkus.otel.sdk.disabled",
        "QUARKUS_OTEL_EXPORTER_OTLP_ENDPOINT": "Quarkus OpenTelemetry guide quarkus.otel.exporter.otlp.endpoint",
        "AWS_ACCESS_KEY_ID": "AWS SDK default credentials chain",
        "AWS_SECRET_ACCESS_KEY": "AWS SDK default credentials chain",
        "AWS_REGION": "AWS SDK default region chain",
    },
    "bootstrap-realm": {
        "POLARIS_PERSISTENCE_TYPE": "polaris admin tool (same persistence config as the server)",
        "QUARKUS_DATASOURCE_JDBC_URL": "polaris admin tool",
        "QUARKUS_DATASOURCE_USERNAME": "polaris admin tool",
        "QUARKUS_DATASOURCE_PASSWORD": "polaris admin tool",
        # Ours: only expanded into the container's args as $(FLOE_POLARIS_BOOTSTRAP_CREDENTIALS).
        "FLOE_POLARIS_BOOTSTRAP_CREDENTIALS": "expanded into args by the kubelet",
        # ubi9/openjdk-21-runtime run-java.sh (FROM in runtime/{server,admin}/src/main/docker/Dockerfile.jvm):
        # jboss-container-images/openjdk modules/jvm/module.yaml and jvm/bash/.../java-default-options.
        "JAVA_MAX_MEM_RATIO": "run-java.sh java-default-options max_memory() -> -XX:MaxRAMPercentage",
        "GC_MAX_METASPACE_SIZE": "run-java.sh java-default-options gc_config() -> -XX:MaxMetaspaceSize",
        "JAVA_OPTS_APPEND": "run-java.sh get_java_options(), appended to the generated options",
    },
    "jaeger": {
        "GOMEMLIMIT": "Go runtime (pkg.go.dev/runtime: GOMEMLIMIT soft memory limit)",
    },
    "marquez": {
        "MARQUEZ_CONFIG": "marquez docker/entrypoint.sh",
        "JAVA_OPTS": "marquez docker/entrypoint.sh: java ${JAVA_OPTS} -jar marquez-*.jar",
        # Read by our own marquez.yml through Dropwizard's ${VAR} substitution (checked below).
        "POSTGRES_USER": "our marquez.yml",
        "POSTGRES_PASSWORD": "our marquez.yml",
    },
    "marquez-web": {
        "MARQUEZ_HOST": "marquez web/setupProxy.js",
        "MARQUEZ_PORT": "marquez web/setupProxy.js",
        "WEB_PORT": "marquez web/setupProxy.js",
        "HOME": "node (npm cache, os.homedir)",
    },
}


def settings_env(*classes: type) -> set[str]:
    return {cls.env_name(f) for cls in classes for f in cls.model_fields}


def dagster_yaml_env(docs: list[dict]) -> set[str]:
    """Variables our dagster.yaml reads with {env: NAME}."""
    text = find(docs, "ConfigMap", "floe-dagster-instance")["data"]["dagster.yaml"]
    found: set[str] = set()
    stack = [yaml.safe_load(text)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def dbt_profile_env() -> set[str]:
    return set(re.findall(r"env_var\('([A-Z0-9_]+)'", (REPO / "demo/dbt/profiles.yml").read_text()))


def read_by_installed_package(name: str, package: str) -> bool:
    """The variable's name appears in the installed package's source (it reads it)."""
    spec = importlib.util.find_spec(package)
    roots = [Path(p) for p in spec.submodule_search_locations or [Path(spec.origin).parent]]
    return any(name in path.read_text(errors="ignore") for root in roots for path in root.rglob("*.py"))


# Python processes of ours: variables read by libraries, verified against their installed source.
LIBRARY_ENV = {
    "DAGSTER_HOME": "dagster",
    "DAGSTER_CURRENT_IMAGE": "dagster",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "opentelemetry",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "opentelemetry",
    "OTEL_SERVICE_NAME": "opentelemetry",
    "OTEL_METRICS_EXPORTER": "opentelemetry",
    "OTEL_LOGS_EXPORTER": "opentelemetry",
    "OPENLINEAGE_URL": "openlineage",
    # openlineage-python leaves the job namespace to the caller: our lineage module reads it.
    "OPENLINEAGE_NAMESPACE": "demo.observability",
    # boto3's client of Dagster's S3ComputeLogManager (demo.orchestration.instance.S3_ENV).
    "AWS_ACCESS_KEY_ID": "botocore",
    "AWS_SECRET_ACCESS_KEY": "botocore",
    "AWS_DEFAULT_REGION": "botocore",
}


@pytest.mark.parametrize("name", sorted(LIBRARY_ENV))
def test_library_variables_are_really_read_by_the_library(name: str) -> None:
    assert read_by_installed_package(name, LIBRARY_ENV[name]), f"{LIBRARY_ENV[name]} does not read {name}"


def containers(docs: list[dict]):
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob") and doc["metadata"]["labels"].get("floe.dev/layer") != "semantic":
            spec = pod_template(doc)["spec"]
            for c in spec["containers"] + (spec.get("initContainers") or []):
                yield doc, c


def init_script_env(docs: list[dict]) -> set[str]:
    """Variables the PostgreSQL init script (ours, run by the image's entrypoint) reads."""
    script = find(docs, "ConfigMap", "floe-postgres-init")["data"]["10-floe-databases.sh"]
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", script)) - {"POSTGRES_USER", "POSTGRES_DB"}


def test_every_container_variable_is_read_by_something(stack: SynthResult) -> None:
    docs = stack.documents
    upstream = {**UPSTREAM, "postgres": {**UPSTREAM["postgres"], **dict.fromkeys(init_script_env(docs), "our init script")}}
    ours_python = (
        settings_env(LakehouseSettings, DbtSettings, PipelineSettings, BucketSettings, PolarisInitSettings, VerifySettings)
        | dagster_yaml_env(docs)
        | dbt_profile_env()
        | set(LIBRARY_ENV)
        # BucketSettings.s3_identities, read through pydantic-settings' nested delimiter: one set per client.
        | {BucketSettings.identity_env_name(c, f) for c in CLIENTS for f in S3Identity.model_fields}
    )
    unknown = []
    for doc, c in containers(docs):
        allowed = upstream.get(c["name"])
        if allowed is None:  # our project image (Jobs, Dagster) or the wait-for init container
            allowed = ours_python
        for var in c.get("env") or []:
            if var["name"] not in allowed:
                unknown.append(f"{doc['kind']}/{doc['metadata']['name']} {c['name']}: {var['name']}")
    assert not unknown, "variables nothing reads:\n" + "\n".join(unknown)


def test_every_image_with_a_curated_list_is_covered(stack: SynthResult) -> None:
    names = {c["name"] for _, c in containers(stack.documents) if c.get("env")}
    project = {"buckets", "polaris-init", "user-code", "webserver", "daemon", "reconcile", "check-realm", "verify"}
    assert names - project <= set(UPSTREAM), names - project - set(UPSTREAM)


# Renamed upstream: the old name is ignored once the new one is set (Polaris sets the new one in its
# application.properties) and is then removed (quarkusio/quarkus#56198).
DEPRECATED = {"QUARKUS_LOG_FILE_ENABLE": "QUARKUS_LOG_FILE_ENABLED", "QUARKUS_LOG_CONSOLE_ENABLE": "QUARKUS_LOG_CONSOLE_ENABLED"}


def test_polaris_file_log_is_off_under_its_current_name(stack: SynthResult) -> None:
    env = {v["name"]: v.get("value") for v in find(stack.documents, "Deployment", "floe-polaris")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not set(DEPRECATED) & set(env), {k: DEPRECATED[k] for k in set(DEPRECATED) & set(env)}
    assert env.get("QUARKUS_LOG_FILE_ENABLED") == "false"


def test_marquez_config_reads_exactly_the_variables_it_gets(stack: SynthResult) -> None:
    docs = stack.documents
    text = find(docs, "ConfigMap", "floe-marquez-config")["data"]["marquez.yml"]
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    spec = find(docs, "Deployment", "floe-marquez")["spec"]["template"]["spec"]
    given = {v["name"] for v in spec["containers"][0]["env"]}
    assert referenced <= given and referenced == {"POSTGRES_USER", "POSTGRES_PASSWORD"}
