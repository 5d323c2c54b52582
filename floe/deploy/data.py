"""The data phase at the end of ``make deploy-local-full``: the stack is not "deployed" until it has data.

Ready pods are not enough for ``make verify``: the marts exist only after the sensor's seed run and a
first ``generate_and_build`` run (ingest + dbt build), and Cube answers only once the refresh worker
has built the rollups. So the deploy tool, after the last phase, waits (with progress and a deadline)
until, in order:

1. the seed run succeeded (the sensor requests it once the raw tables are empty);
2. a ``generate_and_build`` run succeeded: the deploy launches one (it does not wait for the
   schedule) unless one already succeeded or is under way;
3. Cube answers with the marts' totals: the rollup query (served from Cube Store) gives the same
   order count and amount as a query no rollup can serve (Cube's DuckDB over the marts themselves).

A failed run fails the phase with the run's error and its last log lines; the deadline times it out
naming what it was waiting for. The decisions are a pure function of what Dagster and Cube answer
(:func:`step`), so the tests replay recorded answers (seed still running, first build failed, Cube
not yet built) without a cluster.

GraphQL documents: dagster-graphql 1.13 (``runsOrError``, ``runOrError``, ``logsForRun`` in
schema/roots/query.py; events in schema/logs/events.py), validated against its schema in
tests/verify/test_cube_graphql_schema.py. Cube: the REST shapes demo/verify/checks.py documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from floe.deploy.outcome import ExitCode

SEED_JOB, GENERATE_JOB = "seed_raw_tables", "generate_and_build"
SEED_SENSOR = "seed_when_raw_tables_empty"
REFRESH_WORKER = "floe-cube-refresh-worker"
FAILED = {"FAILURE", "CANCELED"}
DEFAULT_TIMEOUT_SECONDS = 900

LAST_RUN = """query LastRun($job: String!) {
  runsOrError(filter: {pipelineName: $job}, limit: 1) {
    __typename
    ... on Runs { results { runId status startTime endTime } }
    ... on PythonError { message }
  }
}"""

RUN_LOGS = """query RunLogs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename
      ... on MessageEvent { message level stepKey }
      ... on ErrorEvent { error { message } } } }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}"""

#: Every GraphQL document sent from here (validated against dagster-graphql's schema in the tests).
DOCUMENTS = {"LAST_RUN": LAST_RUN, "RUN_LOGS": RUN_LOGS}

#: The orders_by_day rollup's query, and the same totals through a member no rollup holds
#: (order_id), which Cube computes with its DuckDB on the marts themselves.
ROLLUP_QUERY = {"measures": ["orders.count", "orders.total_amount"], "dimensions": ["orders.status"],
                "timeDimensions": [{"dimension": "orders.created_at", "granularity": "day"}]}
MARTS_QUERY = {"measures": ["orders.count", "orders.total_amount"], "filters": [{"member": "orders.order_id", "operator": "set"}]}
CONTINUE_WAIT = "Continue wait"
NOT_BUILT = "No pre-aggregation partitions were built yet"


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str


@dataclass(frozen=True)
class RunFailure:
    message: str
    log_tail: tuple[str, ...]


class Waiting(Exception):
    """Cube cannot answer yet (building, or no rollup built); the message says which."""


class DataSource(Protocol):
    def last_run(self, job: str) -> Run | None: ...
    def launch(self, job: str) -> str: ...
    def failure(self, run_id: str) -> RunFailure: ...
    #: ((orders, amount) from the rollup, (orders, amount) from the marts); raises Waiting.
    def cube_totals(self) -> tuple[tuple[int, Decimal], tuple[int, Decimal]]: ...


@dataclass
class Progress:
    """What the loop knows between two polls."""
    launched: str | None = None
    line: str = ""
    done: bool = False
    failure: str | None = None
    log_tail: tuple[str, ...] = ()


def _failed(job: str, run: Run, data: DataSource, what: str) -> Progress:
    failure = data.failure(run.run_id)
    return Progress(failure=f"{job} run {run.run_id} {run.status}: {failure.message or 'no error message'} — {what}",
                    log_tail=failure.log_tail)


def step(data: DataSource, progress: Progress) -> Progress:
    """One poll: the next state from what Dagster and Cube answer now."""
    seed = data.last_run(SEED_JOB)
    if seed is None:
        return Progress(progress.launched, f"waiting for the seed run (sensor {SEED_SENSOR}, requested once the raw tables are empty)")
    if seed.status in FAILED:
        return _failed(SEED_JOB, seed, data, "fix the cause, then `make seed` (the sensor does not retry the same state)")
    if seed.status != "SUCCESS":
        return Progress(progress.launched, f"seed run {seed.run_id[:8]} {seed.status}")
    generate = data.last_run(GENERATE_JOB)
    launched = progress.launched
    if generate is not None and generate.run_id == launched and generate.status in FAILED:
        return _failed(GENERATE_JOB, generate, data, "the marts were not built; fix the cause, then `make generate`")
    if generate is None or (generate.status in FAILED and generate.run_id != launched):
        launched = data.launch(GENERATE_JOB)  # the first build now, not at the schedule's next tick
        return Progress(launched, f"launched {GENERATE_JOB} run {launched[:8]} (new orders, then dbt build)")
    if generate.status != "SUCCESS":
        return Progress(launched, f"{GENERATE_JOB} run {generate.run_id[:8]} {generate.status} (new orders, then dbt build)")
    try:
        (rollup_orders, rollup_amount), (marts_orders, marts_amount) = data.cube_totals()
    except Waiting as exc:
        return Progress(launched, f"marts built; Cube: {exc}")
    if (rollup_orders, rollup_amount) != (marts_orders, marts_amount):
        return Progress(launched, f"marts built; Cube's rollup holds {rollup_orders} orders / {rollup_amount}, the marts "
                                  f"{marts_orders} / {marts_amount}: waiting for the refresh worker ({REFRESH_WORKER})")
    return Progress(launched, f"Cube serves the marts from its rollup: {marts_orders} orders, amount {marts_amount}", done=True)


@dataclass(frozen=True)
class DataResult:
    exit_code: ExitCode
    seconds: float
    line: str
    problem: str | None = None
    log_tail: tuple[str, ...] = field(default=())


#: Consecutive polls Dagster or Cube may be unreachable (a port-forward restarting) before it fails.
UNREACHABLE_POLLS = 10


def wait_for_data(
    data: DataSource, *, timeout: float, poll: float, clock: Any, on_progress: Callable[[float, str], None] = lambda _s, _l: None,
) -> DataResult:
    start = clock.monotonic()
    progress = Progress()
    unreachable = 0
    while True:
        elapsed = clock.monotonic() - start
        try:
            progress = step(data, progress)
            unreachable = 0
        except OSError as exc:  # httpx.TransportError is not one; the caller's source maps it (HttpSource)
            unreachable += 1
            if unreachable >= UNREACHABLE_POLLS:
                return DataResult(ExitCode.FAILURE, elapsed, progress.line, f"Dagster or Cube unreachable {unreachable} times in a row: {exc}")
            progress = Progress(progress.launched, f"{progress.line} (not reachable just now: {exc})".strip())
        if progress.failure:
            return DataResult(ExitCode.FAILURE, elapsed, progress.line, progress.failure, progress.log_tail)
        on_progress(elapsed, progress.line)
        if progress.done:
            return DataResult(ExitCode.SUCCESS, elapsed, progress.line)
        if elapsed >= timeout:
            return DataResult(ExitCode.TIMEOUT, elapsed, progress.line,
                              f"no data after {timeout:.0f}s; last: {progress.line}. `make status` shows the runs and pods; "
                              f"`kubectl logs -n <namespace> deploy/{REFRESH_WORKER}` the rollup builds")
        clock.sleep(min(poll, max(timeout - elapsed, 0.1)))


# --- the real sources: Dagster's GraphQL and Cube's REST API through port-forwards --------------------


def _error_lines(events: list[dict[str, Any]]) -> tuple[str, tuple[str, ...]]:
    errors = [e["error"]["message"].strip() for e in events if isinstance(e.get("error"), dict) and e["error"].get("message")]
    failures = [e.get("message", "") for e in events if e.get("__typename") in ("RunFailureEvent", "ExecutionStepFailureEvent")]
    lines = tuple(f"{e.get('level', '')} {e.get('stepKey') or '-'}: {e.get('message', '')}".strip() for e in events if e.get("message"))
    return " ".join((errors or failures or [""])[-1].split()), lines[-20:]


@dataclass
class HttpSource:
    """Dagster at ``dagster_url`` and Cube at ``cube_url`` (both forwarded), with a Cube token."""

    http: Any  # httpx.Client
    dagster_url: str
    cube_url: str
    cube_token: str
    launcher: Callable[[str], str]

    def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:  # a dropped port-forward: retried by wait_for_data
            raise ConnectionError(f"{url.split('?')[0]}: {exc}") from exc

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self._send("POST", f"{self.dagster_url}/graphql", json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"Dagster GraphQL errors: {json.dumps(body['errors'])[:300]}")
        return body["data"]

    def last_run(self, job: str) -> Run | None:
        result = self._graphql(LAST_RUN, {"job": job})["runsOrError"]
        if result["__typename"] != "Runs":
            raise RuntimeError(f"runsOrError: {result.get('message', result['__typename'])}")
        runs = result["results"]
        return Run(runs[0]["runId"], runs[0]["status"]) if runs else None

    def launch(self, job: str) -> str:
        return self.launcher(job)

    def failure(self, run_id: str) -> RunFailure:
        result = self._graphql(RUN_LOGS, {"runId": run_id})["logsForRun"]
        if result["__typename"] != "EventConnection":
            return RunFailure(result.get("message", result["__typename"]), ())
        message, lines = _error_lines(result["events"])
        return RunFailure(message, lines)

    def _load(self, query: dict[str, Any]) -> tuple[int, Decimal]:
        response = self._send("GET", f"{self.cube_url}/cubejs-api/v1/load", params={"query": json.dumps(query)},
                              headers={"Authorization": self.cube_token})
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        if error == CONTINUE_WAIT:
            raise Waiting("still computing (Continue wait)")
        if NOT_BUILT in error:
            raise Waiting(f"no rollup built yet ({REFRESH_WORKER} builds it once the marts exist)")
        if response.status_code != 200 or error:
            raise Waiting(f"HTTP {response.status_code} {(error or response.text)[:200]}")
        rows = body.get("data") or []
        return (sum(int(Decimal(str(r.get("orders.count") or 0))) for r in rows),
                sum((Decimal(str(r.get("orders.total_amount") or 0)) for r in rows), Decimal(0)).quantize(Decimal("0.01")))

    def cube_totals(self) -> tuple[tuple[int, Decimal], tuple[int, Decimal]]:
        return self._load(ROLLUP_QUERY), self._load(MARTS_QUERY)


def cube_api_service(stack: Any) -> tuple[str, int]:
    """(Service, port) of Cube's API: the forwarded Service whose port is the ``PORT`` of the Cube
    container that serves the SQL API too (the API Deployment, not the refresh worker)."""
    from floe.deploy.manifests import pod_spec

    for obj in stack.objects():
        for container in (pod_spec(obj) or {}).get("containers") or []:
            env = {e.get("name"): e.get("value") for e in container.get("env") or []}
            if "CUBEJS_PG_SQL_PORT" in env and env.get("PORT"):
                port = int(env["PORT"])
                for spec in stack.port_forwards():
                    if spec.service_port == port and "cube" in spec.service:
                        return spec.service, port
    raise LookupError("no Service in dist/ forwards Cube's API (a container with CUBEJS_PG_SQL_PORT and PORT)")
