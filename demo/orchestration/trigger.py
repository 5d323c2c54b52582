"""Trigger a pipeline job by hand through Dagster's GraphQL API (the webserver's ``/graphql``).

    python -m demo.orchestration.trigger generate_and_build --url http://127.0.0.1:3000 --wait

The GraphQL documents below are the ones docs/pipeline.md shows for curl; the tests post them to a
running ``dagster-webserver``. Schema names as in dagster-graphql 1.13 (``launchRun`` in
``schema/roots/mutation.py``, result union ``LaunchRunResult`` in ``schema/runs.py``; ``runOrError``
in ``schema/roots/query.py``).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import typer

from demo.orchestration.raw import raw_run_config

LAUNCH_RUN = """mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
  }
}"""

RUN_STATUS = """query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}"""

#: Dagster's name for the one repository a module/Definitions code location has.
REPOSITORY = "__repository__"
#: The code location name when loaded with ``-m demo.orchestration.definitions`` (``dagster dev``,
#: ``dagster-webserver``); the cluster's workspace.yaml names its own (``location_name``).
DEFAULT_LOCATION = "demo.orchestration.definitions"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


class TriggerError(RuntimeError):
    pass


def launch_variables(job: str, location: str, run_config: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "selector": {"repositoryLocationName": location, "repositoryName": REPOSITORY, "jobName": job}
    }
    if run_config:
        params["runConfigData"] = run_config
    return {"executionParams": params}


def graphql(client: httpx.Client, url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{url.rstrip('/')}/graphql", json={"query": query, "variables": variables})
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise TriggerError(json.dumps(body["errors"]))
    return body["data"]


def launch_run(client: httpx.Client, url: str, job: str, location: str, run_config: dict[str, Any] | None = None) -> str:
    """Launch ``job`` and return its run id (raises :class:`TriggerError` with Dagster's reason)."""
    result = graphql(client, url, LAUNCH_RUN, launch_variables(job, location, run_config))["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise TriggerError(f"{result['__typename']}: {json.dumps(result)}")
    return result["run"]["runId"]


def wait_for_run(client: httpx.Client, url: str, run_id: str, timeout: float = 600) -> str:
    """Poll the run's status until it finishes; returns SUCCESS, FAILURE or CANCELED."""
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        run = graphql(client, url, RUN_STATUS, {"runId": run_id})["runOrError"]
        if run["__typename"] != "Run":
            raise TriggerError(json.dumps(run))
        status = run["status"]
        if status in FINISHED:
            return status
        time.sleep(1)
    # QUEUED for good: the instance queues runs (QueuedRunCoordinator) and no dagster-daemon runs.
    raise TimeoutError(f"run {run_id} not finished after {timeout:.0f}s (status {status})")


def main(
    job: Annotated[str, typer.Argument(help="seed_raw_tables, generate_and_build or build_marts")],
    url: Annotated[str, typer.Option(envvar="FLOE_DAGSTER_URL", help="Dagster webserver")] = "http://127.0.0.1:3000",
    location: Annotated[str, typer.Option(help="Code location name")] = DEFAULT_LOCATION,
    orders: Annotated[int, typer.Option(help="New orders (generate_and_build; 0: the configured default)")] = 0,
    wait: Annotated[bool, typer.Option(help="Wait for the run to finish")] = False,
) -> None:
    run_config = None
    if job == "generate_and_build":
        run_config = raw_run_config("append", n_orders=orders)
    elif job == "seed_raw_tables":
        run_config = raw_run_config("seed")
    with httpx.Client(timeout=30) as client:
        run_id = launch_run(client, url, job, location, run_config)
        typer.echo(f"launched {job}: run {run_id} ({url.rstrip('/')}/runs/{run_id})")
        if wait:
            status = wait_for_run(client, url, run_id)
            typer.echo(f"run {run_id}: {status}")
            if status != "SUCCESS":
                raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
