"""dbt's JSON schemas saved with the baked parse (demo.orchestration.dbt_schemas): the same schemas dbt
builds, used by a new process's first invocation, and only when saved by this environment's packages."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from demo.orchestration import dbt_schemas
from demo.orchestration.dbt import DBT_PROJECT_DIR, MANIFEST_TARGET

REPO = Path(__file__).resolve().parents[2]

BAKE = (
    "from dagster_dbt import DbtProject; from demo.orchestration.dbt import ensure_manifest; "
    "ensure_manifest(DbtProject(project_dir={project!r}, profiles_dir={project!r}, target_path={target!r}))"
)
#: A new process's first dbt invocation on ``project`` (as the Dagster step runs it).
PARSE = (
    "import json; from demo.orchestration.dbt import FloeDbtCliResource, dbt_executable; "
    "invocation = FloeDbtCliResource(project_dir={project!r}, profiles_dir={project!r}, target='local', "
    "dbt_executable=dbt_executable())"
    ".cli(['parse'], raise_on_error=False); invocation.wait(); "
    "print(json.dumps({{'ok': invocation.is_successful(), 'target': str(invocation.target_path)}}))"
)


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the dbt project with its parse baked as the image bakes it (a process of its own)."""
    project = tmp_path_factory.mktemp("schemas") / "dbt"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    script = BAKE.format(project=str(project), target=MANIFEST_TARGET)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "DBT_"))}
    env["FLOE_DUCKDB_EXTENSION_DIRECTORY"] = str(project.parent / "ext")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return project


def _first_parse(project: Path, tmp_path: Path) -> tuple[dict, str]:
    env = {
        **os.environ,
        "DBT_TARGET_PATH": str(tmp_path / "runs"),
        "FLOE_DBT_DUCKDB_PATH": str(tmp_path / "dbt.duckdb"),
        "FLOE_DUCKDB_EXTENSION_DIRECTORY": str(tmp_path / "ext"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PARSE.format(project=str(project))], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome, (Path(outcome["target"]) / "dbt.log").read_text()


def test_the_baked_schemas_are_the_ones_dbt_builds_for_this_environment(baked: Path) -> None:
    from mashumaro.jsonschema import build_json_schema

    saved = orjson.loads((baked / MANIFEST_TARGET / dbt_schemas.FILE_NAME).read_bytes())
    assert saved["key"] == dbt_schemas.environment_key()
    # What dbt checks before any node: the project, its flags, the profile and the adapter's credentials.
    assert {
        "dbt.contracts.project.Project",
        "dbt.contracts.project.ProjectFlags",
        "dbt.contracts.project.ProfileConfig",
        "dbt.adapters.duckdb.credentials.DuckDBCredentials",
    } <= set(saved["schemas"])
    for name, schema in saved["schemas"].items():
        module, _, qualname = name.rpartition(".")
        cls = getattr(importlib.import_module(module), qualname)
        assert _unordered(orjson.loads(orjson.dumps(build_json_schema(cls).to_dict()))) == _unordered(schema), name


def _unordered(schema: object) -> object:
    """``schema`` with each ``anyOf`` as a set: mashumaro lists a Union's members in the order of
    typing's cached Union object, which depends on what the process imported first (dbt's own
    in-process schema varies the same way); the order means nothing to the validation."""
    if isinstance(schema, dict):
        return {k: sorted(json.dumps(_unordered(m), sort_keys=True) for m in v) if k == "anyOf" else _unordered(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_unordered(item) for item in schema]
    return schema


@pytest.mark.parametrize("same_environment", [True, False])
def test_a_new_process_validates_against_the_saved_schemas_of_its_own_environment_only(
    baked: Path, tmp_path: Path, same_environment: bool
) -> None:
    """A saved Project schema that no project satisfies: dbt refuses dbt_project.yml with it when the
    file was saved by this environment's packages, and builds its own (the project passes) otherwise."""
    project = tmp_path / "dbt"
    shutil.copytree(baked, project)
    schemas_file = project / MANIFEST_TARGET / dbt_schemas.FILE_NAME
    saved = orjson.loads(schemas_file.read_bytes())
    saved["schemas"]["dbt.contracts.project.Project"] = {"type": "object", "required": ["floe-no-such-key"]}
    if not same_environment:
        saved["key"] = {**saved["key"], "dbt-core": "0.0.0"}
    schemas_file.write_bytes(orjson.dumps(saved))
    outcome, log = _first_parse(project, tmp_path)
    if same_environment:
        assert not outcome["ok"]
        assert "floe-no-such-key" in log
    else:
        assert outcome["ok"], log[-3000:]
        assert "floe-no-such-key" not in log
