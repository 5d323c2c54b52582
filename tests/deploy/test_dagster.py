"""seed/generate and the run list against a real dagster-webserver on 127.0.0.1 (stand-in jobs)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from floe.deploy import dagster
from floe.deploy.ports import any_free_port
from tests.support.listening import wait_listening

REPO = Path(__file__).parents[2]


def test_job_names_match_the_demo_definitions() -> None:
    """The deploy tool does not import the pipeline (dagster + dbt at import); it must name its jobs right."""
    tree = ast.parse((REPO / "demo/orchestration/definitions.py").read_text())
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Constant)
    }
    assert dagster.JOBS == {"seed": constants["SEED_JOB"], "generate": constants["TICK_JOB"]}


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """dagster-webserver serving two jobs with the demo's names; runs launch in-process (default launcher)."""
    home = tmp_path_factory.mktemp("dagster-home")
    # No daemon here: launch runs at submit (DefaultRunCoordinator) instead of queueing them.
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    defs = home / "defs.py"
    defs.write_text(
        textwrap.dedent(
            f"""
            from dagster import Definitions, in_process_executor, job, op

            @op
            def ok():
                return 1

            @op
            def boom():
                raise RuntimeError("generation failed on purpose")

            # In-process, as the demo's own jobs (traced_in_process_executor): each launched run is one
            # run-worker process, not one more process (and dagster import) per step.
            @job(name={dagster.JOBS['seed']!r}, executor_def=in_process_executor)
            def seed():
                ok()

            @job(name={dagster.JOBS['generate']!r}, executor_def=in_process_executor)
            def generate():
                boom()

            defs = Definitions(jobs=[seed, generate])
            """
        )
    )
    port = any_free_port()
    log = (home / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-f", str(defs)],
        env=os.environ | {"DAGSTER_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT, cwd=home,
    )
    try:
        if not wait_listening(port, 180, alive=lambda: proc.poll() is None):
            pytest.fail(f"dagster-webserver did not start: {(home / 'webserver.log').read_text()[-3000:]}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.timeout(400)
def test_launch_wait_and_list_runs(webserver: int) -> None:
    seed_run = dagster.launch("127.0.0.1", webserver, dagster.JOBS["seed"])
    assert dagster.wait_for_run("127.0.0.1", webserver, seed_run, timeout=180, poll_interval=0.5) == "SUCCESS"
    generate_run = dagster.launch("127.0.0.1", webserver, dagster.JOBS["generate"])
    assert dagster.wait_for_run("127.0.0.1", webserver, generate_run, timeout=180, poll_interval=0.5) == "FAILURE"
    runs = dagster.recent_runs("127.0.0.1", webserver, limit=5)
    assert [(r.run_id, r.job_name, r.status) for r in runs[:2]] == [
        (generate_run, dagster.JOBS["generate"], "FAILURE"),
        (seed_run, dagster.JOBS["seed"], "SUCCESS"),
    ]
    assert runs[1].started is not None and runs[1].seconds is not None


@pytest.mark.timeout(400)
def test_unknown_job_is_a_clear_error(webserver: int) -> None:
    with pytest.raises(dagster.DagsterError, match="Dagster refused to launch no_such_job"):
        dagster.launch("127.0.0.1", webserver, "no_such_job")


@pytest.mark.timeout(400)
def test_cli_seed_with_dagster_url_exits_by_run_outcome(webserver: int) -> None:
    from typer.testing import CliRunner

    from floe.deploy.cli import app

    ok = CliRunner().invoke(app, ["seed", "--dagster-url", f"http://127.0.0.1:{webserver}"])
    assert ok.exit_code == 0, ok.output
    assert "SUCCESS" in ok.output
    failed = CliRunner().invoke(app, ["generate", "--dagster-url", f"http://127.0.0.1:{webserver}"])
    assert failed.exit_code == 1 and "FAILURE" in failed.output
