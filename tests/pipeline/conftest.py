"""Fixtures for the pipeline tests: the session's real SeaweedFS lakehouse (tests/conftest.py
``lakehouse``, shared with tests/orchestration), isolated per test by namespaces; dbt run as the real
CLI in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.ingest import seed_raw_tables, wait_for_catalog
from demo.lakehouse.local import LocalLakehouse, local_lakehouse
from demo.lakehouse.settings import LakehouseSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "demo" / "dbt"
DBT_BIN = Path(sys.executable).parent / "dbt"


@pytest.fixture(scope="session")
def extension_directory(tmp_path_factory: pytest.TempPathFactory) -> str:
    from demo.lakehouse.duckdb import install_extensions

    return install_extensions(str(tmp_path_factory.mktemp("duckdb-extensions")))


def isolated_settings(lakehouse: LocalLakehouse, extension_directory: str) -> LakehouseSettings:
    """Settings with fresh namespaces, so tests sharing the lakehouse never collide."""
    suffix = uuid.uuid4().hex[:8]
    return lakehouse.settings.model_copy(
        update={
            "namespace_raw": f"raw_{suffix}",
            "namespace_staging": f"staging_{suffix}",
            "namespace_marts": f"marts_{suffix}",
            "duckdb_extension_directory": extension_directory,
        }
    )


@pytest.fixture
def settings(lakehouse: LocalLakehouse, extension_directory: str) -> LakehouseSettings:
    """Settings with namespaces of this test only."""
    return isolated_settings(lakehouse, extension_directory)


def settings_env(settings: LakehouseSettings) -> dict[str, str]:
    """The FLOE_* variables for ``settings`` (what the constructs / local job would set)."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[LakehouseSettings.env_name(name)] = str(value)
    return env


@dataclass
class DbtRun:
    returncode: int
    output: str
    run_results: dict | None

    def failed_nodes(self) -> list[str]:
        if not self.run_results:
            return []
        return [r["unique_id"] for r in self.run_results["results"] if r["status"] in ("fail", "error")]


def run_dbt(settings: LakehouseSettings, work_dir: Path, *args: str, timeout: float = 300) -> DbtRun:
    """``dbt <args>`` on demo/dbt with only FLOE_* (+ the dbt file path) in the environment."""
    work_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(work_dir)),
        **settings_env(settings),
        "FLOE_DBT_DUCKDB_PATH": str(work_dir / "dbt.duckdb"),
        "DBT_TARGET_PATH": str(work_dir / "target"),
        "DBT_LOG_PATH": str(work_dir / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    result = subprocess.run(
        [
            str(DBT_BIN),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target",
            "local",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    results_path = work_dir / "target" / "run_results.json"
    run_results = json.loads(results_path.read_text()) if results_path.exists() else None
    return DbtRun(result.returncode, result.stdout + result.stderr, run_results)


@contextlib.contextmanager
def marts_lakehouse(
    tmp_path_factory: pytest.TempPathFactory, name: str, extension_directory: str, *,
    seed: int, n_customers: int, n_products: int, n_orders: int, extra_args: tuple[str, ...] = (),
) -> Iterator[LakehouseSettings]:
    """A SeaweedFS lakehouse seeded with ``seed`` and its marts built by the pipeline's dbt project:
    what the Cube tests read (each module its own, when it appends data). ``extra_args`` go to
    ``weed mini`` (tests/support/marts.py: a second identity)."""
    with local_lakehouse(tmp_path_factory.mktemp(f"{name}-lakehouse"), extra_args=extra_args) as lakehouse:
        wait_for_catalog(lakehouse.settings)
        settings = lakehouse.settings.model_copy(update={"duckdb_extension_directory": extension_directory})
        seed_raw_tables(settings, seed=seed, run_key="seed", n_customers=n_customers, n_products=n_products, n_orders=n_orders)
        build = run_dbt(settings, tmp_path_factory.mktemp(f"{name}-dbt"), "build")
        assert build.returncode == 0, build.output[-3000:]
        yield settings
