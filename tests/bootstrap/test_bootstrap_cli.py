"""The Jobs' entry point, run as the Job runs it: `python -m demo.bootstrap ...` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
from bootstrap_support import polaris_settings
from fake_polaris import FakePolaris

from demo.bootstrap.duckdb_extensions import EXTENSIONS
from demo.bootstrap.settings import PolarisInitSettings

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}
    return subprocess.run(
        [sys.executable, "-m", "demo.bootstrap", *args],
        cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )


def settings_env(settings: PolarisInitSettings) -> dict[str, str]:
    env = {}
    for field, value in settings.model_dump().items():
        if value is None:
            continue
        plain = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        env[PolarisInitSettings.env_name(field)] = str(plain)
    return env


def test_polaris_command_runs_twice_and_the_second_run_changes_nothing(fake_polaris: FakePolaris) -> None:
    env = settings_env(polaris_settings(fake_polaris.url))

    first = run_cli("polaris", env=env)
    second = run_cli("polaris", env=env)

    assert first.returncode == 0, first.stderr
    assert "Polaris init done: 24 change(s)" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "Polaris init done: 0 change(s), 24 already in place" in second.stdout
    for secret_var in ("FLOE_WRITER_CLIENT_SECRET", "FLOE_READER_CLIENT_SECRET", "FLOE_POLARIS_ROOT_CLIENT_SECRET"):
        assert env[secret_var] not in first.stdout + first.stderr


def test_missing_settings_exit_2_naming_the_variables_not_the_values() -> None:
    result = run_cli("polaris", env={"FLOE_WRITER_CLIENT_SECRET": "not-hex-and-secret"})

    assert result.returncode == 2
    assert "FLOE_POLARIS_URL: Field required" in result.stderr
    assert "FLOE_WRITER_CLIENT_SECRET" in result.stderr
    assert "not-hex-and-secret" not in result.stderr


def test_failure_exits_1_with_the_reason(fake_polaris: FakePolaris) -> None:
    env = settings_env(polaris_settings(fake_polaris.url, wait_timeout_seconds=0.3))
    env["FLOE_POLARIS_ROOT_CLIENT_SECRET"] = "wrong"

    result = run_cli("polaris", env=env)

    assert result.returncode == 1
    assert result.stderr.startswith("ERROR: Polaris at ") and "root credentials rejected" in result.stderr


def test_duckdb_extensions_install_offline_and_load_by_name(tmp_path: Path) -> None:
    target = tmp_path / "extensions"
    result = run_cli("duckdb-extensions", "--directory", str(target), env={})
    assert result.returncode == 0, result.stderr

    installed = sorted(p.name for p in target.rglob("*.duckdb_extension"))
    assert installed == sorted(f"{name}.duckdb_extension" for name in EXTENSIONS)
    # A fresh DuckDB that may not download anything loads them by name from that directory.
    con = duckdb.connect(config={"extension_directory": str(target), "autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    for name in EXTENSIONS:
        con.execute(f"LOAD {name}")
    loaded = {row[0] for row in con.execute(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    assert set(EXTENSIONS) <= loaded


def test_buckets_command_against_seaweedfs(lake) -> None:  # noqa: ANN001 - LocalLakehouse fixture
    env = {
        "FLOE_S3_ENDPOINT": f"http://127.0.0.1:{lake.s3_port}",
        "FLOE_S3_ADMIN_ACCESS_KEY_ID": lake.access_key,
        "FLOE_S3_ADMIN_SECRET_ACCESS_KEY": lake.secret_key,
        "FLOE_BUCKETS": "floe-cli-warehouse,floe-cli-cubestore",
    }
    first = run_cli("buckets", env=env)
    second = run_cli("buckets", env=env)

    assert first.returncode == 0, first.stderr
    assert "buckets done: 2 created, 0 already there" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "bucket floe-cli-warehouse: exists" in second.stdout
    assert "buckets done: 0 created, 2 already there" in second.stdout
