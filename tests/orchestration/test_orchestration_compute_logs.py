"""Run logs reach the Dagster UI: a run on the embedded lakehouse (the local profile's instance,
S3ComputeLogManager on SeaweedFS, as the cluster's on MinIO), then a real dagster-webserver's
GraphQL returns the run's stdout/stderr, although no local log file is left to read."""

from __future__ import annotations

import os

import boto3
import httpx
import yaml
from dagster import DagsterInstance, execute_job, reconstructable

from demo.lakehouse.local import COMPUTE_LOG_BUCKET
from demo.local import compute_log_env, instance_config
from demo.orchestration.definitions import seed_job_def
from demo.orchestration.instance import COMPUTE_LOG_PREFIX
from demo.orchestration.raw import raw_run_config
from tests.orchestration.conftest import PipelineEnv
from tests.support.dagster import definitions_webserver

RUN_LOG_FILES = """
query RunLogFiles($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on LogsCapturedEvent { fileKey stepKeys } } }
  }
}
"""
CAPTURED_LOGS = """
query CapturedLogs($runId: ID!, $fileKey: String!) {
  runOrError(runId: $runId) { __typename ... on Run { capturedLogs(fileKey: $fileKey) { stdout stderr } } }
}
"""


def test_a_runs_stdout_and_stderr_come_back_through_the_webservers_graphql(pipeline_env: PipelineEnv, monkeypatch) -> None:  # noqa: ANN001
    home = pipeline_env.dagster_home
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(home), sort_keys=False))
    for key, value in compute_log_env(pipeline_env.lake).items():
        monkeypatch.setenv(key, value)
    # boto3's default session keeps the first credentials it resolved in this process (an earlier
    # test's): start from none, as a fresh pod process does, so the env above is what counts.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

    with DagsterInstance.get() as instance:
        result = execute_job(reconstructable(seed_job_def), instance, run_config=raw_run_config("seed", run_key="logs"))
        assert result.success
        run_id = result.run_id

    # The webserver is another pod in the cluster: nothing of the run's local staging files.
    for leftover in [*home.rglob("*.out"), *home.rglob("*.err"), *home.rglob("*.complete")]:
        leftover.unlink()
    s3 = boto3.client("s3", endpoint_url=pipeline_env.lake.settings.s3_endpoint)
    listed = s3.list_objects_v2(Bucket=COMPUTE_LOG_BUCKET, Prefix=f"{COMPUTE_LOG_PREFIX}/").get("Contents", [])
    assert [o["Key"] for o in listed if run_id in o["Key"]], f"no compute logs of run {run_id} in s3://{COMPUTE_LOG_BUCKET}/{COMPUTE_LOG_PREFIX}/"

    with definitions_webserver(dict(os.environ), home / "webserver.log") as (url, _):
        with httpx.Client(timeout=60) as client:
            events = client.post(f"{url}/graphql", json={"query": RUN_LOG_FILES, "variables": {"runId": run_id}}).json()
            files = {e["fileKey"] for e in events["data"]["logsForRun"]["events"] if e["__typename"] == "LogsCapturedEvent"}
            assert files, events
            stdout, stderr = "", ""
            for file_key in files:
                answer = client.post(
                    f"{url}/graphql", json={"query": CAPTURED_LOGS, "variables": {"runId": run_id, "fileKey": file_key}}
                ).json()
                logs = answer["data"]["runOrError"]["capturedLogs"]
                stdout += logs["stdout"] or ""
                stderr += logs["stderr"] or ""
    # Dagster's console logger writes the step's log lines to stderr: our step's own message is there.
    assert "seed logs: rows written" in stderr, stderr[-3000:]
    assert "STEP_SUCCESS" in stderr or "raw_tables" in stderr + stdout
