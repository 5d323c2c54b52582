"""The semantic chart's wiring: env names only upstream reads, the reader principal's lakehouse
settings (equal, through cube.js, to Python's init_sql), extension switch, probes, Cube Store
cluster addresses, and the data model's schedule and namespace."""

from __future__ import annotations

import json
import re
import subprocess

import cdk8s
import pytest
import yaml

from constructs import plain
from constructs.cube import CONF_DIR, EXTENSION_DIR, Cube, config_files, model_files
from demo.bootstrap.image import DUCKDB_EXTENSION_DIR
from demo.lakehouse.duckdb import EXTENSIONS, init_sql
from demo.lakehouse.settings import LakehouseSettings
from floe.config import StackConfig
from floe.synth import SynthResult
from tests.infra.conftest import FAKE_CREDENTIALS
from tests.support.manifests import container, find, resolve_env

from .conftest import CUBE_DIR
from .model import load_cubes
from .upstream_env import CUBE, CUBESTORE, unknown_names

CONFIG = StackConfig()
N = CONFIG.names
CUBE_WORKLOADS = [("Deployment", N.cube), ("Deployment", N.cube_refresh_worker)]
CUBESTORE_WORKLOADS = [("Deployment", N.cubestore_router), ("StatefulSet", N.cubestore_worker)]


def semantic_workloads(docs: list[dict]) -> list[dict]:
    return [
        d for d in docs
        if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["labels"].get("floe.dev/layer") == "semantic"
    ]


def env_names(c: dict) -> set[str]:
    return {v["name"] for v in c.get("env") or []}


@pytest.mark.parametrize("variant", ["bundled_synth", "download_synth"])
def test_every_env_var_is_one_upstream_reads(variant: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(variant).documents
    workloads = semantic_workloads(docs)
    assert {(w["kind"], w["metadata"]["name"]) for w in workloads} == {*CUBE_WORKLOADS, *CUBESTORE_WORKLOADS}
    for w in workloads:
        for c in w["spec"]["template"]["spec"]["containers"]:
            cubestore = c["image"].startswith(CONFIG.cubestore.image.repository + ":")
            unknown = unknown_names(env_names(c), cubestore=cubestore)
            assert not unknown, f"{w['metadata']['name']}/{c['name']}: {sorted(unknown)} are read by nothing"


def test_the_env_check_catches_typos_and_mixups() -> None:
    assert unknown_names({"CUBEJS_API_SECRET", "CUBEJS_API_SECERT"}, cubestore=False) == {"CUBEJS_API_SECERT"}
    assert unknown_names({"CUBEJS_DB_TYPE"}, cubestore=True) == {"CUBEJS_DB_TYPE"}
    assert unknown_names({"CUBESTORE_WORKERS"}, cubestore=False) == {"CUBESTORE_WORKERS"}
    assert all(source for source in {**CUBE, **CUBESTORE}.values())


def test_refresh_worker_mode_only_on_the_refresh_worker(bundled_synth: SynthResult) -> None:
    docs = bundled_synth.documents
    api = resolve_env(container(docs, "Deployment", N.cube), docs)
    worker = resolve_env(container(docs, "Deployment", N.cube_refresh_worker), docs)
    assert api["NODE_ENV"] == worker["NODE_ENV"] == "production"
    assert "CUBEJS_REFRESH_WORKER" not in api  # NODE_ENV=production: refreshWorkerMode defaults to false
    assert worker["CUBEJS_REFRESH_WORKER"] == "true"
    assert "CUBEJS_PG_SQL_PORT" not in worker
    assert api["CUBEJS_PG_SQL_PORT"] == str(CONFIG.cube.sql_port)
    assert (api["CUBEJS_SQL_USER"], api["CUBEJS_SQL_PASSWORD"]) == (CONFIG.cube.sql_user, FAKE_CREDENTIALS["cube_sql_password"])
    for env in (api, worker):
        assert env["CUBEJS_API_SECRET"] == FAKE_CREDENTIALS["cube_api_secret"]
        assert env["CUBEJS_DB_TYPE"] == "duckdb"
        assert (env["CUBEJS_CUBESTORE_HOST"], env["CUBEJS_CUBESTORE_PORT"]) == (N.cubestore_router, str(CONFIG.cubestore.http_port))


def test_cube_reads_the_lakehouse_as_the_reader_with_pythons_statements(bundled_synth: SynthResult, node: str) -> None:
    """Manifest env -> LakehouseSettings -> Python init_sql == what cube.js computes from that env."""
    docs = bundled_synth.documents
    for kind, name in CUBE_WORKLOADS:
        env = resolve_env(container(docs, kind, name), docs)
        floe = {k: v for k, v in env.items() if k.startswith("FLOE_")}
        fields = {f: floe[LakehouseSettings.env_name(f)] for f in LakehouseSettings.model_fields if LakehouseSettings.env_name(f) in floe}
        settings = LakehouseSettings.model_validate(fields)
        assert settings.catalog_client_id == FAKE_CREDENTIALS["catalog_reader_client_id"]
        assert settings.catalog_uri == CONFIG.endpoints.catalog_uri
        assert settings.duckdb_extension_directory == EXTENSION_DIR
        script = f"process.stdout.write(JSON.stringify(require({json.dumps(str(CUBE_DIR / 'lakehouse.js'))}).lakehouseInitStatements(process.env)))"
        result = subprocess.run([node, "-e", script], env=floe, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == init_sql(settings)


def test_bundled_extensions_are_copied_from_the_project_image(bundled_synth: SynthResult) -> None:
    docs = bundled_synth.documents
    for kind, name in CUBE_WORKLOADS:
        spec = find(docs, kind, name)["spec"]["template"]["spec"]
        copy = next(c for c in spec["initContainers"] if c["name"] == "copy-duckdb-extensions")
        assert copy["image"] == CONFIG.project_image.ref
        assert copy["command"] == ["cp", "-R", f"{DUCKDB_EXTENSION_DIR}/.", EXTENSION_DIR]
        main = spec["containers"][0]
        env = {v["name"]: v.get("value") for v in main["env"]}
        assert env["FLOE_DUCKDB_EXTENSION_DIRECTORY"] == EXTENSION_DIR
        assert "CUBEJS_DB_DUCKDB_EXTENSIONS" not in env
        volume = {m["mountPath"]: m["name"] for m in copy["volumeMounts"]}[EXTENSION_DIR]
        assert {m["mountPath"]: m["name"] for m in main["volumeMounts"]}[EXTENSION_DIR] == volume
        assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == volume)


def test_download_switch_uses_the_drivers_own_install(download_synth: SynthResult) -> None:
    docs = download_synth.documents
    for kind, name in CUBE_WORKLOADS:
        spec = find(docs, kind, name)["spec"]["template"]["spec"]
        # No extension copy; the OpenTelemetry SDK's copy stays (Jaeger is on: issue 17).
        assert [c["name"] for c in spec["initContainers"]] == ["wait-for-deps", "copy-otel-sdk"]
        env = {v["name"]: v.get("value") for v in spec["containers"][0]["env"]}
        assert env["CUBEJS_DB_DUCKDB_EXTENSIONS"] == ",".join(EXTENSIONS)
        assert "FLOE_DUCKDB_EXTENSION_DIRECTORY" not in env
        assert env["HOME"] == "/tmp"  # DuckDB installs into ~/.duckdb/extensions: must be writable


def test_cube_probes_and_services(bundled_synth: SynthResult) -> None:
    docs = bundled_synth.documents
    api = container(docs, "Deployment", N.cube)
    assert "tcpSocket" in api["livenessProbe"]  # /livez also checks Cube Store: never restart on its outage
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "startupProbe" in api
    services = {s["metadata"]["name"]: s for s in docs if s["kind"] == "Service"}
    assert [(p["name"], p["port"]) for p in services[N.cube]["spec"]["ports"]] == [("http", CONFIG.cube.api_port)]
    assert [(p["name"], p["port"]) for p in services[N.cube_sql]["spec"]["ports"]] == [("pg-sql", CONFIG.cube.sql_port)]
    assert services[N.cube]["metadata"]["annotations"]["floe.dev/port-forward"] == "4000"
    assert services[N.cube_sql]["metadata"]["annotations"]["floe.dev/port-forward"] == "15432"
    assert services[N.cubestore_workers]["spec"]["clusterIP"] == "None"


def test_start_order_waits(bundled_synth: SynthResult) -> None:
    """Cube waits for the Cube Store router, workers for its metastore, the router for MinIO."""
    docs = bundled_synth.documents
    waits = {
        name: " ".join(find(docs, kind, name)["spec"]["template"]["spec"]["initContainers"][0]["command"])
        for kind, name in [*CUBE_WORKLOADS, *CUBESTORE_WORKLOADS]
    }
    for _, name in CUBE_WORKLOADS:
        assert f"/dev/tcp/{N.cubestore_router}/{CONFIG.cubestore.http_port}" in waits[name]
    assert f"/dev/tcp/{N.cubestore_router}/{CONFIG.cubestore.meta_port}" in waits[N.cubestore_worker]
    assert f"/dev/tcp/{N.minio}/{CONFIG.minio.api_port}" in waits[N.cubestore_router]


def test_cube_config_and_model_are_the_demo_files(bundled_synth: SynthResult) -> None:
    docs = bundled_synth.documents
    assert find(docs, "ConfigMap", N.cube_config)["data"] == config_files()
    model = find(docs, "ConfigMap", N.cube_model)["data"]
    assert model == model_files() and set(model) == {"orders.yml", "customers.yml", "products.yml"}
    for kind, name in CUBE_WORKLOADS:
        mounts = {m["mountPath"]: m for m in container(docs, kind, name)["volumeMounts"]}
        assert mounts[f"{CONF_DIR}/cube.js"]["subPath"] == "cube.js"
        assert mounts[f"{CONF_DIR}/lakehouse.js"]["subPath"] == "lakehouse.js"
        # One subPath file per model file: a directory mount gets the kubelet's ..data folders,
        # which Cube's FileRepository would load as duplicates (tests/semantic/test_cube_pod.py).
        assert f"{CONF_DIR}/model" not in mounts
        for file in model:
            assert mounts[f"{CONF_DIR}/model/{file}"]["subPath"] == file
            assert mounts[f"{CONF_DIR}/model/{file}"]["readOnly"] is True


def test_cubestore_cluster_addresses(bundled_synth: SynthResult) -> None:
    docs = bundled_synth.documents
    for kind, name in CUBESTORE_WORKLOADS:
        assert find(docs, kind, name)["spec"]["template"]["spec"]["enableServiceLinks"] is False  # cube-js/cube#3158
    router = resolve_env(container(docs, "Deployment", N.cubestore_router), docs)
    sts = find(docs, "StatefulSet", N.cubestore_worker)
    assert sts["spec"]["serviceName"] == N.cubestore_workers
    assert sts["spec"]["replicas"] == CONFIG.cubestore.workers
    workers = router["CUBESTORE_WORKERS"].split(",")
    assert len(workers) == CONFIG.cubestore.workers
    assert router["CUBESTORE_SERVER_NAME"] == f"{N.cubestore_router}:{CONFIG.cubestore.meta_port}"
    assert "CUBESTORE_META_ADDR" not in router  # validate_config: a router with a remote metastore aborts
    worker = container(docs, "StatefulSet", N.cubestore_worker)
    pod_name = next(v for v in worker["env"] if v["name"] == "POD_NAME")
    assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # Each worker pod, with the name the StatefulSet gives it (downward API + $(POD_NAME) expansion),
    # announces itself as one of the addresses in CUBESTORE_WORKERS.
    pods = [resolve_env(worker, docs, fields={"metadata.name": f"{N.cubestore_worker}-{i}"}) for i in range(CONFIG.cubestore.workers)]
    assert {env["CUBESTORE_SERVER_NAME"] for env in pods} == set(workers)
    worker_env = pods[0]
    assert worker_env["CUBESTORE_WORKERS"] == router["CUBESTORE_WORKERS"]
    assert worker_env["CUBESTORE_META_ADDR"] == router["CUBESTORE_SERVER_NAME"]
    for env in (router, worker_env):
        assert env["CUBESTORE_MINIO_BUCKET"] == CONFIG.minio.cubestore_bucket
        assert env["CUBESTORE_MINIO_SERVER_ENDPOINT"] == CONFIG.endpoints.s3_url
        # Cube Store's own MinIO user (issue 19: read/write on its bucket only), never the root key.
        assert env["CUBESTORE_MINIO_ACCESS_KEY_ID"] == FAKE_CREDENTIALS["s3_clients"]["cubestore"]["access_key_id"]
        assert env["CUBESTORE_MINIO_ACCESS_KEY_ID"] != FAKE_CREDENTIALS["minio_root_user"]


def test_pre_aggregations_refresh_when_their_mart_changes() -> None:
    """Every rollup's refresh key follows its own mart's Iceberg snapshot (never the clock alone:
    a clock key on the schedule's boundary serves the previous marts for a whole period)."""
    cubes = load_cubes()
    assert set(cubes) == {"orders", "customers", "products"}
    pre_aggregations = [(cube, p) for cube in cubes.values() for p in cube.get("pre_aggregations", [])]
    assert pre_aggregations
    for cube, p in pre_aggregations:
        key = p["refresh_key"]
        assert set(key) == {"sql", "every"}, p["name"]
        assert f"iceberg_snapshots({cube['sql_table']})" in key["sql"], p["name"]
        assert key["every"] == "10 second", p["name"]


def test_model_tables_are_in_the_marts_namespace() -> None:
    marts = CONFIG.polaris.namespaces["marts"]
    assert {c["sql_table"] for c in load_cubes().values()} == {
        f"lake.{marts}.fct_orders", f"lake.{marts}.dim_customers", f"lake.{marts}.dim_products"
    }


def test_a_renamed_marts_namespace_is_refused() -> None:
    data = CONFIG.model_dump(mode="json")
    data["polaris"]["namespaces"]["marts"] = "gold"
    chart = plain.PlainChart(cdk8s.Testing.app(), "test")  # the constructs live in a PlainChart (constructs/plain.py)
    with pytest.raises(ValueError, match="polaris.namespaces.marts"):
        Cube(chart, "cube", config=StackConfig.model_validate(data), layer="semantic")


def test_orders_model_has_the_issue_members() -> None:
    orders = load_cubes()["orders"]
    measures = {m["name"] for m in orders["measures"]}
    dimensions = {d["name"]: d["type"] for d in orders["dimensions"]}
    assert {"count", "total_amount", "average_order_value"} <= measures
    assert {"status", "category", "region"} <= dimensions.keys() and dimensions["created_at"] == "time"
    rollup = orders["pre_aggregations"][0]
    assert rollup["time_dimension"] == "created_at" and rollup["granularity"] == "day"
    assert yaml.safe_load((CUBE_DIR / "model" / "orders.yml").read_text())  # parses as YAML


def test_curated_cube_names_are_read_by_cube_1_7_43(node_duckdb) -> None:  # noqa: ANN001
    """Every CUBEJS_*/NODE_ENV/PORT name in the curated list is read by the pinned Cube's env.ts
    (@cubejs-backend/shared 1.7.43 as installed from npm), not only by some older version."""
    pinned = json.loads((node_duckdb / "@cubejs-backend" / "shared" / "package.json").read_text())["version"]
    assert f"v{pinned}" == CONFIG.cube.image.tag
    text = (node_duckdb / "@cubejs-backend" / "shared" / "dist" / "src" / "env.js").read_text()
    read = set(re.findall(r"['\"`]((?:CUBEJS|NODE|PORT)[A-Z0-9_]*)['\"`]", text)) | set(re.findall(r"process\.env\.([A-Z][A-Z0-9_]*)", text))
    # HOME is DuckDB's (extension directory), NODE_OPTIONS is Node's: not Cube's
    assert set(CUBE) - read == {"HOME", "NODE_OPTIONS"}
    driver = json.loads((node_duckdb / "@cubejs-backend" / "duckdb-driver" / "package.json").read_text())
    assert driver["dependencies"]["@duckdb/node-api"].startswith("1.5.5")  # the DuckDB our extension files are for
