"""The Cube containers of dist/ as a pod sees them, run with Cube 1.7.43's own packages:

* mount fidelity: the ConfigMaps laid out exactly as the kubelet writes them (tests/support/kubelet.py)
  from the Cube containers' real volumes and mounts; Cube's FileRepository and schema compiler load
  the model from there (a whole-directory ConfigMap mount shows every file three times: ``..data/``,
  ``..<timestamp>/`` and the key symlink -> "Found duplicate cube name");
* a changed model or cube.js rolls the pods on a plain ``kubectl apply`` (subPath files never update);
* every pre-aggregation's columns, as Cube's build path types them from DuckDB on the real marts,
  are types Cube Store accepts (HUGEINT is not: cube-js/cube#7127);
* Cube's DuckDB spills into a writable emptyDir of that container, within the emptyDir's sizeLimit;
* Node's heap, DuckDB's memory_limit and headroom fit the container's memory limit, and Node
  honours the NODE_OPTIONS that sets the heap.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import cdk8s
import pytest

import constructs.cube as cube_module
from constructs import base, plain
from constructs.cube import CONF_DIR, Cube
from demo.bootstrap.image import CUBE_OTEL_DIR
from demo.lakehouse.settings import LakehouseSettings
from floe.config import StackConfig
from floe.quantities import memory_bytes
from floe.synth import SynthResult
from tests.support import kubelet
from tests.support.manifests import container, pod_spec
from tests.support.pods import materialize, run_copy_init_containers

from .conftest import CUBE_DIR, NodeCube, floe_env

CONFIG = StackConfig()
N = CONFIG.names
CUBE_CONTAINERS = [("Deployment", N.cube, "cube"), ("Deployment", N.cube_refresh_worker, "cube-refresh-worker")]
IDS = [name for _, name, _ in CUBE_CONTAINERS]


# --- the kubelet layout itself ------------------------------------------------------------------


def test_kubelet_layout_is_the_atomic_writers(tmp_path: Path) -> None:
    documents = [{"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a.yml": "A", "b.yml": "B"}}]
    whole = {"name": "v", "configMap": {"name": "cm"}}
    shown = kubelet.mount(tmp_path / "whole", whole, {"name": "v", "mountPath": "/x"}, documents)
    assert set(shown) == {"a.yml", "b.yml"}
    entries = sorted(os.listdir(tmp_path / "whole"))
    [ts] = [e for e in entries if e not in ("..data", "a.yml", "b.yml")]
    assert re.fullmatch(r"\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+", ts), ts
    assert os.readlink(tmp_path / "whole" / "..data") == ts
    assert os.readlink(tmp_path / "whole" / "a.yml") == "..data/a.yml"
    assert (tmp_path / "whole" / "b.yml").read_text() == "B"
    assert stat.S_IMODE((tmp_path / "whole" / ts / "a.yml").stat().st_mode) == 0o644
    # items (key -> path, nested) and defaultMode: only the first path segment is linked.
    picked = {"name": "v", "configMap": {"name": "cm", "defaultMode": 0o400, "items": [{"key": "a.yml", "path": "sub/x.yml"}]}}
    kubelet.mount(tmp_path / "items", picked, {"name": "v", "mountPath": "/y"}, documents)
    assert os.readlink(tmp_path / "items" / "sub") == "..data/sub"
    assert (tmp_path / "items" / "sub" / "x.yml").read_text() == "A"
    assert not (tmp_path / "items" / "b.yml").exists()
    assert stat.S_IMODE((tmp_path / "items" / "sub" / "x.yml").stat().st_mode) == 0o400
    # subPath: a plain file, nothing around it.
    kubelet.mount(tmp_path / "conf" / "a.yml", whole, {"name": "v", "mountPath": "/c/a.yml", "subPath": "a.yml"}, documents)
    assert os.listdir(tmp_path / "conf") == ["a.yml"] and not (tmp_path / "conf" / "a.yml").is_symlink()
    # Secrets: base64 data and stringData.
    secret = [{"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}, "stringData": {"p": "w"}}]
    kubelet.mount(tmp_path / "secret", {"name": "s", "secret": {"secretName": "s"}}, {"name": "s", "mountPath": "/s"}, secret)
    assert (tmp_path / "secret" / "k").read_text() == "v" and (tmp_path / "secret" / "p").read_text() == "w"


# --- 1. the model loads from the pod's layout --------------------------------------------------


def pod_conf(synth: SynthResult, kind: str, name: str, container_name: str, root: Path, otel_image: Path):  # noqa: ANN201
    """The container laid out under ``root`` (mount paths rebased) by tests.support.pods.materialize,
    which writes ConfigMaps as the kubelet does, after the pod's init container has copied the
    OpenTelemetry SDK that NODE_OPTIONS preloads; returns it and its /cube/conf."""
    run_copy_init_containers(synth.documents, kind, name, root=root, image={CUBE_OTEL_DIR: otel_image})
    local = materialize(synth.documents, kind, name, container_name, root=root)
    return local, local.local_path(CONF_DIR)


@pytest.mark.parametrize(("kind", "name", "container_name"), CUBE_CONTAINERS, ids=IDS)
def test_cube_compiles_the_model_from_the_pods_mounts(
    bundled_synth: SynthResult, node: str, node_duckdb: Path, cube_otel_image: Path, tmp_path: Path, kind: str, name: str, container_name: str
) -> None:
    local, conf = pod_conf(bundled_synth, kind, name, container_name, tmp_path, cube_otel_image)
    schema_path = local.env.get("CUBEJS_SCHEMA_PATH", "model")  # env.ts schemaPath default
    cube = NodeCube(node, local.env, conf_dir=conf, schema_path=schema_path)
    try:
        model = cube.call("model")
    finally:
        cube.close()
    assert model["ok"], model  # the old whole-directory mount: "Found duplicate cube name 'customers'"
    assert model["files"] == ["customers.yml", "orders.yml", "products.yml"]
    assert model["cubes"] == ["customers", "orders", "products"]


def test_a_whole_directory_mount_would_load_each_file_three_times(node: str, node_duckdb: Path, tmp_path: Path) -> None:
    """The mechanism behind the test above: on the kubelet's layout of a ConfigMap mounted as the
    model directory, Cube's FileRepository (getFiles recurses into every directory, dot-names too)
    returns every model file three times and the compiler refuses the duplicates."""
    conf = tmp_path / "cube" / "conf"
    conf.mkdir(parents=True)
    for file, text in cube_module.config_files().items():
        (conf / file).write_text(text)
    documents = [{"kind": "ConfigMap", "metadata": {"name": "model"}, "data": cube_module.model_files()}]
    kubelet.mount(conf / "model", {"name": "m", "configMap": {"name": "model"}}, {"name": "m", "mountPath": "/cube/conf/model"}, documents)
    cube = NodeCube(node, {}, conf_dir=conf)
    try:
        model = cube.call("model")
    finally:
        cube.close()
    assert not model["ok"] and "Found duplicate cube name" in model["error"], model


def _checksum(documents: list[dict], name: str) -> str:
    return next(
        d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )["spec"]["template"]["metadata"]["annotations"]["floe.dev/config-checksum"]


def test_a_changed_model_rolls_the_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    """subPath files never receive ConfigMap updates, so the pod template carries a checksum of
    what is mounted: a changed model or cube.js changes the template, and `kubectl apply` rolls."""
    def synth_docs() -> list[dict]:
        chart = plain.PlainChart(cdk8s.Testing.app(), "test")  # the constructs live in a PlainChart (constructs/plain.py)
        Cube(chart, "cube", config=CONFIG, layer="semantic")
        base.add_config_checksums([chart])  # what constructs.charts.build_app does for every chart
        return cdk8s.Testing.synth(chart)

    before = synth_docs()
    original = cube_module.model_files()
    monkeypatch.setattr(cube_module, "model_files", lambda: {**original, "orders.yml": original["orders.yml"] + "\n# changed\n"})
    assert _checksum(synth_docs(), N.cube) != _checksum(before, N.cube)
    monkeypatch.undo()
    config = cube_module.config_files()
    monkeypatch.setattr(cube_module, "config_files", lambda: {**config, "cube.js": config["cube.js"] + "\n// changed\n"})
    assert _checksum(synth_docs(), N.cube_refresh_worker) != _checksum(before, N.cube_refresh_worker)


# --- 2. pre-aggregation column types vs Cube Store ----------------------------------------------

# What Cube Store's CREATE TABLE accepts, from its source (cube-js/cube
# rust/cubestore/cubestore/src/sql/table_creator.rs, convert_columns_type(), read at commit
# b7dad4eb655e48349acc8db342f3215ad8937c6a; older versions accept a subset); the column type is
# parsed by Cube's sqlparser-rs fork, parse_data_type()): the sqlparser DataType variants it maps
# (Date/Time/Char/Varchar/Clob/Text/String -> String; Uuid/Binary/Varbinary/Blob/Bytea/Array ->
# Bytes; Decimal -> Decimal/Decimal96; SmallInt/Int/BigInt/Interval -> Int; Boolean;
# Float/Real/Double -> Float; Timestamp), by the keywords that parse into them, plus the Custom
# names it lists. Any other name parses as DataType::Custom and fails with
# "Custom type '<name>' is not supported" -- HUGEINT among them (cube-js/cube#7127).
CUBESTORE_STANDARD_TYPES = frozenset({
    "date", "time", "char", "character", "varchar", "clob", "text", "string",
    "uuid", "binary", "varbinary", "blob", "bytea",
    "decimal", "numeric",
    "smallint", "int", "integer", "bigint", "interval",
    "boolean",
    "float", "real", "double",
    "timestamp",
})
CUBESTORE_CUSTOM_TYPES = frozenset({
    "tinyint", "mediumint", "decimal96", "int96", "bytes", "varbinary",
    "hyperloglog", "hyperloglogpp", "hll_snowflake", "hll_postgres", "hll_datasketches",
})
_COLUMN_TYPE = re.compile(
    r"(?P<name>[a-z_][a-z0-9_]*)\s*(\(\s*\d+\s*(,\s*\d+\s*)?\))?"
    r"(\s+(precision|varying(\s*\(\s*\d+\s*\))?|(with|without)\s+time\s+zone))?"
)


def cubestore_accepts(column_type: str) -> bool:
    match = _COLUMN_TYPE.fullmatch(column_type.strip().lower())
    return bool(match) and match["name"] in CUBESTORE_STANDARD_TYPES | CUBESTORE_CUSTOM_TYPES


def test_cubestore_type_list_rejects_what_cube_store_rejects() -> None:
    for accepted in ("varchar(255)", "bigint", "int", "decimal(38,2)", "decimal(38, 0)", "double", "timestamp", "boolean", "hll_postgres"):
        assert cubestore_accepts(accepted), accepted
    for rejected in ("hugeint", "uhugeint", "int128", "decimal(38,2)[]x", "timestamptz", "regclass", "struct(a int)"):
        assert not cubestore_accepts(rejected), rejected


def test_every_pre_aggregation_column_is_a_type_cube_store_accepts(marts_settings: LakehouseSettings, node: str) -> None:
    cube = NodeCube(node, floe_env(marts_settings))
    try:
        answer = cube.call("pre_aggregation_types")
        model = cube.call("model")
    finally:
        cube.close()
    assert answer["ok"], answer
    built = {p["id"]: p for p in answer["pre_aggregations"]}
    assert set(built) == {p["id"] for p in model["pre_aggregations"]}  # every one of the model
    rejected = [
        f"{p['id']}: {column['name']} {column['type']}  ({p['create_table']})"
        for p in built.values() for column in p["types"] if not cubestore_accepts(column["type"])
    ]
    assert not rejected, "Cube Store would refuse these columns:\n" + "\n".join(rejected)
    products = {c["name"]: c["type"] for c in built["products.products_by_category"]["types"]}
    assert products["products__units_sold"].startswith("decimal(38")  # exact, whatever the total


# --- 5. DuckDB spills to a writable emptyDir ----------------------------------------------------

_DUCKDB_SIZE = re.compile(r"(?P<num>\d+(\.\d+)?)\s*(?P<unit>bytes|KiB|MiB|GiB|TiB)")
_DUCKDB_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _empty_dirs(documents: list[dict], kind: str, name: str, container_name: str) -> dict[str, int]:
    """mountPath -> sizeLimit bytes of the container's emptyDir mounts."""
    spec = pod_spec(documents, kind, name)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    mounts = container(documents, kind, name, container_name).get("volumeMounts") or []
    return {
        m["mountPath"]: memory_bytes(volumes[m["name"]]["emptyDir"]["sizeLimit"])
        for m in mounts if "emptyDir" in volumes[m["name"]] and not m.get("readOnly")
    }


@pytest.mark.parametrize(("kind", "name", "container_name"), CUBE_CONTAINERS, ids=IDS)
def test_cube_duckdb_spills_into_a_writable_empty_dir(
    bundled_synth: SynthResult, marts_settings: LakehouseSettings, node: str, cube_otel_image: Path, tmp_path: Path,
    kind: str, name: str, container_name: str,
) -> None:
    local, conf = pod_conf(bundled_synth, kind, name, container_name, tmp_path, cube_otel_image)
    # The pod's env (mount paths rebased), with the in-cluster catalog and S3 replaced by the local
    # lakehouse's and the extension directory by the locally installed one; DuckDB's sizing stays the pod's.
    lakehouse = {k: v for k, v in floe_env(marts_settings).items() if not k.startswith("FLOE_DUCKDB_") or k.endswith("_EXTENSION_DIRECTORY")}
    env = {**local.env, **lakehouse}
    cube = NodeCube(node, env, conf_dir=conf)
    try:
        settings = cube.call("query", sql="SELECT current_setting('temp_directory') AS d, current_setting('max_temp_directory_size') AS m")
        assert settings["ok"], settings
        temp_directory = os.path.join(conf, settings["rows"][0]["d"])  # relative: to the working dir
        empty_dirs = {str(local.local_path(path)): size for path, size in _empty_dirs(bundled_synth.documents, kind, name, container_name).items()}
        holder = next((d for d in empty_dirs if Path(temp_directory).is_relative_to(d)), None)
        assert holder, f"DuckDB's temp_directory {temp_directory} is on no writable emptyDir of {name}: {sorted(empty_dirs)}"
        size = _DUCKDB_SIZE.fullmatch(settings["rows"][0]["m"])
        assert size, f"max_temp_directory_size is {settings['rows'][0]['m']!r}: DuckDB would fill the node's disk"
        assert float(size["num"]) * _DUCKDB_UNITS[size["unit"]] <= empty_dirs[holder], "the emptyDir sizeLimit would evict the pod first"
        # It really spills there: a sort larger than a small memory_limit completes, through the directory.
        # (One thread: per-thread buffers would otherwise take most of the small limit.)
        for statement in ("SET threads = 1", "SET memory_limit = '64MB'"):
            assert cube.call("query", sql=statement)["ok"]
        sort = "SELECT count(*) AS n, max(m) AS top FROM (SELECT md5(i::VARCHAR) AS m FROM range(3000000) t(i) ORDER BY m)"
        sorted_rows = cube.call("query", sql=sort)
        assert sorted_rows["ok"] and int(sorted_rows["rows"][0]["n"]) == 3_000_000, sorted_rows
        # ...and only by spilling: with (almost) no room in the temp directory, the same sort fails.
        assert cube.call("query", sql="SET max_temp_directory_size = '1MiB'")["ok"]
        no_room = cube.call("query", sql=sort)
        assert not no_room["ok"] and "max_temp_directory_size" in no_room["error"], no_room
    finally:
        cube.close()


# --- memory: Node heap + DuckDB + headroom within the limit --------------------------------------


@pytest.mark.parametrize(("kind", "name", "container_name"), CUBE_CONTAINERS, ids=IDS)
def test_node_heap_and_duckdb_fit_the_container_limit(bundled_synth: SynthResult, node: str, kind: str, name: str, container_name: str) -> None:
    from tests.support.manifests import resolve_env

    c = container(bundled_synth.documents, kind, name, container_name)
    env = resolve_env(c, bundled_synth.documents)
    heap = re.fullmatch(r"--max-old-space-size=(\d+)(?: --require (\S+))?", env["NODE_OPTIONS"])
    assert heap, env["NODE_OPTIONS"]
    assert heap[2] == cube_module.OTEL_PRELOAD  # Jaeger is on by default: the SDK is preloaded
    duckdb_limit = re.fullmatch(r"(\d+)(KB|MB|GB)", env["CUBEJS_DB_DUCKDB_MEMORY_LIMIT"])  # DuckDB: 1000-based
    duckdb_bytes = int(duckdb_limit[1]) * {"KB": 10**3, "MB": 10**6, "GB": 10**9}[duckdb_limit[2]]
    limit = memory_bytes(c["resources"]["limits"]["memory"])
    plan = cube_module.cube_memory(c["resources"]["limits"]["memory"], env["CUBEJS_DB_DUCKDB_MEMORY_LIMIT"], preload=heap[2])
    assert int(heap[1]) == plan.heap_mib and plan.otel_mib > 0
    assert int(heap[1]) * 2**20 + duckdb_bytes + (plan.native_mib + plan.otel_mib + plan.headroom_mib) * 2**20 <= limit
    # Node itself honours it (the cubejs/cube image runs `cubejs server`, a node script, from the
    # node base image: NODE_OPTIONS reaches the process; cube-js/cube packages/cubejs-docker/latest.Dockerfile).
    # The preload from this checkout's demo/cube/otel (what the init container copies), SDK off.
    options = env["NODE_OPTIONS"].replace(cube_module.OTEL_PRELOAD, json.dumps(str(CUBE_DIR / "otel" / "tracing.js")))
    probe = subprocess.run(
        [node, "-e", "process.stdout.write(JSON.stringify(require('v8').getHeapStatistics().heap_size_limit))"],
        env={"PATH": os.environ.get("PATH", ""), "NODE_OPTIONS": options, "OTEL_SDK_DISABLED": "true"}, capture_output=True, text=True, timeout=30,
    )
    assert probe.returncode == 0, probe.stderr
    heap_limit_mib = json.loads(probe.stdout) / 2**20
    assert int(heap[1]) <= heap_limit_mib <= int(heap[1]) + 128  # old space + young generation


def test_cube_memory_refuses_a_duckdb_limit_that_leaves_no_heap() -> None:
    plan = cube_module.cube_memory("1Gi", "512MB")
    assert plan.heap_mib >= 256
    with pytest.raises(ValueError, match="duckdb_memory_limit"):
        cube_module.cube_memory("1Gi", "900MB")
    # With the OpenTelemetry preload (Jaeger on) the SDK's 48 MiB come out of the heap first.
    traced = cube_module.cube_memory("1Gi", "512MB", preload=cube_module.OTEL_PRELOAD)
    assert (traced.heap_mib, traced.otel_mib) == (plan.heap_mib - 48, 48)
    assert traced.node_options == f"--max-old-space-size={traced.heap_mib} --require /cube/otel/tracing.js"
    with pytest.raises(ValueError, match=r"48 MiB OpenTelemetry SDK"):
        cube_module.cube_memory("1Gi", "560MB", preload=cube_module.OTEL_PRELOAD)
    cube_module.cube_memory("1Gi", "560MB")  # fits without it
