"""dbt run in the Dagster step's process (demo.orchestration.dbt): the manifest parsed once under a
lock, partial parsing carried across invocations, and dbt's exit status and events as the CLI's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from demo.orchestration.dbt import DBT_PROJECT_DIR, MANIFEST_TARGET, FloeDbtCliResource, dbt_executable, dbt_project, dbt_resource
from dagster_dbt.core.dbt_cli_invocation import PARTIAL_PARSE_FILE_NAME

REPO = Path(__file__).resolve().parents[2]


def _dbt_log_events(folder: Path) -> list[str]:
    return [json.loads(line)["info"]["name"] for line in (folder / "dbt.log").read_text().splitlines() if line.startswith("{")]


def _dbt_log_event_data(folder: Path) -> dict[str, list[dict]]:
    """dbt's events by name, each with its data, from the invocation's debug log."""
    found: dict[str, list[dict]] = {}
    for line in (folder / "dbt.log").read_text().splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            found.setdefault(event["info"]["name"], []).append(event.get("data", {}))
    return found


def test_two_processes_parse_the_manifest_once_and_never_read_half_of_it(tmp_path: Path) -> None:
    project_dir = tmp_path / "dbt"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    script = (
        "import sys, json; from dagster_dbt import DbtProject; from demo.orchestration.dbt import ensure_manifest; "
        f"p = ensure_manifest(DbtProject(project_dir={str(project_dir)!r}, profiles_dir={str(project_dir)!r}, "
        f"target_path={MANIFEST_TARGET!r}, target='local')); "
        "print(len(json.loads(p.read_text())['nodes']))"
    )
    env = {**os.environ, "DBT_TARGET_PATH": str(tmp_path / "runs"), "FLOE_DUCKDB_EXTENSION_DIRECTORY": str(tmp_path / "ext")}
    env.pop("FLOE_PIPELINE_REPARSE", None)
    both = [
        subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in both]
    for process, (out, err) in zip(both, outputs, strict=True):
        assert process.returncode == 0, err[-2000:]
        assert int(out.strip().splitlines()[-1]) > 0  # a whole manifest, with the models and tests
    target = project_dir / MANIFEST_TARGET
    # One parse happened (the other process waited, then found the manifest): one dbt log, and no
    # half-written or stale folder left beside it.
    assert _dbt_log_events(target).count("MainReportVersion") == 1
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".dagster.") and p.is_dir()) == []


def test_partial_parse_is_carried_from_one_invocation_to_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "runs"))
    monkeypatch.setenv("FLOE_DBT_DUCKDB_PATH", str(tmp_path / "dbt.duckdb"))
    # The dbt plugin installs DuckDB's extensions when dbt loads the profile: into this test's folder.
    monkeypatch.setenv("FLOE_DUCKDB_EXTENSION_DIRECTORY", str(tmp_path / "ext"))
    baked = Path(dbt_project().project_dir) / MANIFEST_TARGET / PARTIAL_PARSE_FILE_NAME
    assert baked.exists()

    first = dbt_resource().cli(["parse"], raise_on_error=False)
    first.wait()
    assert first.is_successful()
    cached = tmp_path / "runs" / PARTIAL_PARSE_FILE_NAME
    assert cached.exists() and cached.read_bytes() == (first.target_path / PARTIAL_PARSE_FILE_NAME).read_bytes()

    second = dbt_resource().cli(["parse"], raise_on_error=False)
    second.wait()
    assert second.is_successful()
    events = _dbt_log_events(second.target_path)
    assert "PartialParsingEnabled" in events and "UnableToPartialParse" not in events

    # An env var dbt_project.yml reads changes: dbt itself decides to parse everything again.
    monkeypatch.setenv("FLOE_NAMESPACE_MARTS", "marts_other")
    third = dbt_resource().cli(["parse"], raise_on_error=False)
    third.wait()
    assert third.is_successful()
    assert "UnableToPartialParse" in _dbt_log_events(third.target_path)
    manifest = json.loads((third.target_path / "manifest.json").read_text())
    assert manifest["nodes"]["model.floe.fct_orders"]["schema"] == "marts_other"


def test_the_first_invocation_in_a_new_data_folder_reuses_the_baked_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A parse baked with no FLOE_* at all (as the image build has none) is reused by the first dbt
    invocation of a new data folder whose DuckDB file and target folder are its own and whose
    namespaces are set (as every pod's are): partial, nothing parsed again, by dbt's own log."""
    project_dir = tmp_path / "dbt"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    bake = (
        "from dagster_dbt import DbtProject; from demo.orchestration.dbt import ensure_manifest; "
        f"ensure_manifest(DbtProject(project_dir={str(project_dir)!r}, profiles_dir={str(project_dir)!r}, "
        f"target_path={MANIFEST_TARGET!r}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "DBT_"))}
    baked = subprocess.run([sys.executable, "-c", bake], cwd=REPO, env=clean, capture_output=True, text=True, timeout=600)
    assert baked.returncode == 0, baked.stderr[-3000:]
    assert (project_dir / MANIFEST_TARGET / PARTIAL_PARSE_FILE_NAME).exists()

    folder = tmp_path / "new-data-folder"
    for name, value in {
        "DBT_TARGET_PATH": str(folder / "dbt-target"),
        "FLOE_DBT_DUCKDB_PATH": str(folder / "dbt.duckdb"),
        "FLOE_DUCKDB_EXTENSION_DIRECTORY": str(tmp_path / "ext"),
        "FLOE_NAMESPACE_RAW": "raw",
        "FLOE_NAMESPACE_MARTS": "marts",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FLOE_PIPELINE_DBT_TARGET", raising=False)
    resource = FloeDbtCliResource(project_dir=str(project_dir), profiles_dir=str(project_dir), dbt_executable=dbt_executable())
    first = resource.cli(["parse"], raise_on_error=False)
    first.wait()
    assert first.is_successful()
    events = _dbt_log_event_data(first.target_path)
    assert "UnableToPartialParse" not in events, events.get("UnableToPartialParse")
    (enabled,) = events["PartialParsingEnabled"]
    assert (enabled.get("added", 0), enabled.get("changed", 0), enabled.get("deleted", 0)) == (0, 0, 0), enabled

    # The check still bites: another dbt target than the bake's is parsed from scratch by dbt.
    other = FloeDbtCliResource(project_dir=str(project_dir), profiles_dir=str(project_dir), target="cluster", dbt_executable=dbt_executable())
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "another-folder"))
    refused = other.cli(["parse"], raise_on_error=False)
    refused.wait()
    assert refused.is_successful()
    assert "UnableToPartialParse" in _dbt_log_event_data(refused.target_path)


def test_dbt_errors_fail_the_invocation_with_dbts_exit_code_and_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "runs"))
    invocation = dbt_resource().cli(["build", "--select", "no_such_model_anywhere", "--profile", "no_such_profile"], raise_on_error=False)
    invocation.wait()
    assert not invocation.is_successful()
    assert invocation.process.returncode == 2  # dbt's own "dbt failed" (1 = a node failed)
    error = invocation.get_error()
    assert error is not None and "no_such_profile" in str(error)


def test_each_invocation_attaches_the_catalog_of_its_own_time(pipeline_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """dbt-duckdb keeps one DuckDB instance per process (catalog attached from FLOE_* when it opened);
    like the end of a `dbt` process, the end of an invocation closes it, so the next one connects anew."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    first = dbt_resource().cli(["show", "--inline", "select 42 as answer"], raise_on_error=False)
    first.wait()
    assert first.is_successful()
    assert DuckDBConnectionManager._ENV is None

    # The catalog moves (another port): the next invocation must not reuse the old attachment.
    monkeypatch.setenv("FLOE_CATALOG_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("FLOE_CATALOG_OAUTH2_URI", "http://127.0.0.1:9/v1/oauth/tokens")
    second = dbt_resource().cli(["show", "--inline", "select 42 as answer"], raise_on_error=False)
    second.wait()
    assert not second.is_successful()
    assert "cannot attach Iceberg catalog" in str(second.get_error())
