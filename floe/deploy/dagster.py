"""Trigger the demo's Dagster jobs and list recent runs through the webserver's GraphQL API.

Launching uses Dagster's own client (``dagster_graphql.DagsterGraphQLClient.submit_job_execution``,
which runs the ``launchPipelineExecution`` mutation and infers the code location); listing runs is one
``runsOrError`` query (schema: dagster_graphql/schema/roots/query.py, ``Run`` fields in
schema/pipelines/pipeline.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, UTC

import httpx

from floe.deploy.kubectl import Kubectl
from floe.deploy.ports import BIND_ADDRESS, PortForwardProcess, any_free_port

# The demo's job names (demo/orchestration/definitions.py). One place to change them.
JOBS = {"seed": "seed_raw_tables", "generate": "generate_and_build"}
WEBSERVER_SERVICE = "floe-dagster-webserver"
WEBSERVER_PORT = 80
TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}

RECENT_RUNS_QUERY = """
query RecentRuns($limit: Int) {
  runsOrError(limit: $limit) {
    __typename
    ... on Runs { results { runId jobName status creationTime startTime endTime } }
    ... on PythonError { message }
    ... on InvalidPipelineRunsFilterError { message }
  }
}
"""


class DagsterError(Exception):
    pass


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    job_name: str
    status: str
    started: datetime | None
    seconds: float | None


def _client(host: str, port: int):
    # Imported here: dagster pulls in a lot, and most commands never talk to it.
    from dagster_graphql import DagsterGraphQLClient

    return DagsterGraphQLClient(host, port_number=port, timeout=30)


def launch(host: str, port: int, job_name: str) -> str:
    """Submit ``job_name`` and return its run id."""
    from dagster_graphql import DagsterGraphQLClientError

    try:
        return _client(host, port).submit_job_execution(job_name)
    except DagsterGraphQLClientError as exc:
        raise DagsterError(f"Dagster refused to launch {job_name}: {exc}") from None


def wait_for_run(host: str, port: int, run_id: str, timeout: float, poll_interval: float = 2.0) -> str:
    """Poll the run's status until it is terminal (SUCCESS/FAILURE/CANCELED); return it."""
    client = _client(host, port)
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_run_status(run_id).value
        if status in TERMINAL_STATUSES or time.monotonic() >= deadline:
            return status
        time.sleep(poll_interval)


def recent_runs(host: str, port: int, limit: int = 5) -> list[RunSummary]:
    response = httpx.post(f"http://{host}:{port}/graphql", json={"query": RECENT_RUNS_QUERY, "variables": {"limit": limit}}, timeout=30)
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise DagsterError(f"GraphQL errors: {body['errors']}")
    result = body["data"]["runsOrError"]
    if result["__typename"] != "Runs":
        raise DagsterError(f"{result['__typename']}: {result.get('message')}")
    runs = []
    for run in result["results"]:
        start, end = run.get("startTime"), run.get("endTime")
        runs.append(
            RunSummary(
                run_id=run["runId"],
                job_name=run["jobName"],
                status=run["status"],
                started=datetime.fromtimestamp(start, UTC) if start else None,
                seconds=(end - start) if start and end else None,
            )
        )
    return runs


@contextlib.contextmanager
def forwarded(kubectl: Kubectl, namespace: str, service: str, port: int, timeout: float = 20.0) -> Iterator[int]:
    """A temporary ``kubectl port-forward`` to ``service:port`` on a free local port; yields that port."""
    local = any_free_port()
    argv = kubectl.argv("port-forward", "-n", namespace, f"svc/{service}", f"{local}:{port}", "--address", BIND_ADDRESS)
    forward = PortForwardProcess(argv)
    try:
        if not forward.wait_ready(timeout):
            reason = forward.last_error() if not forward.running else f"kubectl did not say it was forwarding within {timeout:.0f}s"
            raise DagsterError(f"could not port-forward to svc/{service}: {reason}")
        yield local
    finally:
        forward.stop()
