"""demo/cube/cube.js + lakehouse.js: valid JavaScript, loadable without Cube, and the statements they
send to Cube's DuckDB equal Python's init_sql (demo/lakehouse/duckdb.py) for the same settings."""

from __future__ import annotations

import json
import subprocess

import pytest
from pydantic import SecretStr

from demo.lakehouse.duckdb import EXTENSIONS, init_sql
from demo.lakehouse.settings import LakehouseSettings
from tests.pipeline.conftest import settings_env

from .conftest import CUBE_DIR
from .upstream_env import OURS_CUBE


def js_statements(node: str, env: dict[str, str]) -> list[str]:
    script = f"process.stdout.write(JSON.stringify(require({json.dumps(str(CUBE_DIR / 'lakehouse.js'))}).lakehouseInitStatements(process.env)))"
    result = subprocess.run([node, "-e", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def make_settings(**overrides: object) -> LakehouseSettings:
    values: dict[str, object] = {
        "catalog_uri": "http://floe-polaris:8181/api/catalog",
        "catalog_warehouse": "floe",
        "catalog_oauth2_uri": "http://floe-polaris:8181/api/catalog/v1/oauth/tokens",
        "catalog_client_id": "reader-id",
        "catalog_client_secret": SecretStr("reader-secret"),
        "s3_endpoint": "http://floe-minio:9000",
        "s3_access_key_id": "key",
        "s3_secret_access_key": SecretStr("secret"),
        "duckdb_extension_directory": "/cube/duckdb-extensions",
    }
    values.update(overrides)
    return LakehouseSettings.model_validate(values)


@pytest.mark.parametrize("name", ["cube.js", "lakehouse.js"])
def test_node_check_passes(node: str, name: str) -> None:
    result = subprocess.run([node, "--check", str(CUBE_DIR / name)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_node_check_would_catch_a_syntax_error(node: str, tmp_path) -> None:  # noqa: ANN001
    broken = tmp_path / "cube.js"
    broken.write_text((CUBE_DIR / "cube.js").read_text().replace("driverFactory: (", "driverFactory: (("))
    assert subprocess.run([node, "--check", str(broken)], capture_output=True, timeout=30).returncode != 0


def test_cube_js_loads_without_cube_packages(node: str) -> None:
    """Cube packages are required lazily: the config object loads in plain node, with only the
    options Cube knows (an unknown top-level key fails Cube's options validation)."""
    script = f"const c = require({json.dumps(str(CUBE_DIR / 'cube.js'))}); process.stdout.write(JSON.stringify(Object.keys(c)))"
    result = subprocess.run([node, "-e", script], env={"PATH": ""}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["driverFactory"]
    # The refresh worker (CUBEJS_REFRESH_WORKER=true) also gets its pass interval; the API does not,
    # since a numeric scheduledRefreshTimer would make it refresh too.
    worker = subprocess.run([node, "-e", script.replace("Object.keys(c)", "c.scheduledRefreshTimer")],
                            env={"PATH": "", "CUBEJS_REFRESH_WORKER": "true"}, capture_output=True, text=True, timeout=30)
    assert worker.returncode == 0 and json.loads(worker.stdout) == 10, worker.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"duckdb_extension_directory": None},  # download mode: DuckDB's default directory
        {"s3_endpoint": "https://s3.example.com:9000/", "s3_region": "eu-central-1"},
        {"catalog_client_secret": SecretStr("it's got 'quotes'"), "catalog_scope": "PRINCIPAL_ROLE:floe_reader"},
        {"duckdb_temp_directory": "/cube/duckdb-spill", "duckdb_max_temp_directory_size": "896MiB", "duckdb_memory_limit": "512MB"},
    ],
    ids=["bundled", "no-extension-dir", "https-endpoint", "quotes-and-scope", "duckdb-sizing"],
)
def test_statements_equal_python_init_sql(node: str, overrides: dict[str, object]) -> None:
    settings = make_settings(**overrides)
    assert js_statements(node, settings_env(settings)) == init_sql(settings)


def test_statements_load_extensions_in_order_and_attach_read_only_catalog(node: str) -> None:
    statements = js_statements(node, settings_env(make_settings()))
    assert [s.removeprefix("LOAD ") for s in statements if s.startswith("LOAD ")] == list(EXTENSIONS)
    assert statements[-1].startswith("ATTACH IF NOT EXISTS 'floe' AS lake (TYPE iceberg")
    assert "CLIENT_ID 'reader-id'" in statements[-3]


def test_missing_setting_is_named(node: str) -> None:
    env = settings_env(make_settings())
    del env["FLOE_CATALOG_URI"]
    script = f"require({json.dumps(str(CUBE_DIR / 'lakehouse.js'))}).lakehouseInitStatements(process.env)"
    result = subprocess.run([node, "-e", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "FLOE_CATALOG_URI is required" in result.stderr


def test_lakehouse_js_reads_exactly_the_listed_settings(node: str) -> None:
    script = f"process.stdout.write(JSON.stringify(Object.values(require({json.dumps(str(CUBE_DIR / 'lakehouse.js'))}).ENV)))"
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    read = set(json.loads(result.stdout))
    assert read == set(OURS_CUBE)
    assert read <= {LakehouseSettings.env_name(f) for f in LakehouseSettings.model_fields}


def test_cube_js_passes_cubes_own_options_validation(node: str, node_duckdb) -> None:  # noqa: ANN001
    """server-core 1.7.43 validateOptions (Joi, what Cube runs on the loaded cube.js) accepts it and
    would reject a misspelt option."""
    validate = "require('@cubejs-backend/server-core/dist/src/core/optionsValidate').validateOptions"
    config = f"require({json.dumps(str(CUBE_DIR / 'cube.js'))})"
    env = {"PATH": "", "NODE_PATH": str(node_duckdb)}
    for worker in ("false", "true"):
        ok = subprocess.run([node, "-e", f"{validate}({config})"], env={**env, "CUBEJS_REFRESH_WORKER": worker},
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
    typo = subprocess.run([node, "-e", f"{validate}({{...{config}, driverFactry: () => null}})"], env=env, capture_output=True, text=True, timeout=60)
    assert typo.returncode != 0 and '"driverFactry" is not allowed' in typo.stderr
