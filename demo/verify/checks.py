"""The checks. Each takes the :class:`Context` and returns a :class:`CheckResult` (or raises
:class:`CheckFailed`). They only READ, with two exceptions, both on purpose:

* ``catalog.writer`` creates a scratch namespace ``floe_verify_<random>`` and drops it again (and
  ``catalog.reader`` drops the one it tried to create, should the catalog wrongly accept it);
* ``dagster.trigger`` launches a ``generate_and_build`` run, and only with ``--trigger``.

Upstream API shapes, by check:
* Iceberg REST: apache/iceberg ``open-api/rest-catalog-open-api.yaml`` (``/v1/config``,
  ``/v1/{prefix}/namespaces``, ``.../tables``, OAuth2 ``client_credentials`` token endpoint).
* Dagster GraphQL: dagster-graphql 1.13 ``schema/roots/query.py`` (``workspaceOrError``,
  ``sensorOrError``, ``scheduleOrError``, ``runsOrError``), ``schema/external.py``
  (``WorkspaceLocationEntry.loadStatus``), ``schema/instigation.py`` (``InstigationState.status``).
* Cube REST (read in the npm release @cubejs-backend/api-gateway 1.7.43, ``dist/src/gateway.js``):
  ``load`` answers ``data``, ``external``, ``slowQuery`` and, in production too,
  ``usedPreAggregations`` trimmed to ``{<table>: {preAggregationId, lastUpdatedAt, type}}``
  (``publicUsedPreAggregations``); ``sql`` answers ``{"sql": {..., "preAggregations":
  [{"preAggregationId": "<cube>.<name>"}]}}``; ``{"error": "Continue wait"}`` with status 200 means
  ask again (``handleError``); before the refresh worker's first build a production API answers 400
  ``No pre-aggregation partitions were built yet ...`` (query-orchestrator ``PreAggregations.js``);
  the token is checked with ``jwt.verify(auth, CUBEJS_API_SECRET)`` and each new payload costs a
  verification, so one token serves the whole run.
* Cube GraphQL: ``POST /cubejs-api/graphql``, ``{ cube { <cube> { <member> } } }`` with each field
  named exactly as the model writes the member (``graphql.js`` ``makeSchema``/``safeName``: the cube
  prefix dropped, no camelCase); "Continue wait" comes back as an error message with HTTP 500
  (express-graphql). tests/verify validates every document against ``makeSchema`` over demo/cube.
* Marquez: MarquezProject/marquez ``spec/openapi.yml`` (``/namespaces``, ``/namespaces/{ns}/jobs``,
  ``/namespaces/{ns}/datasets``, ``/lineage?nodeId=dataset:<ns>:<name>&depth=`` → ``graph[]`` of
  nodes with ``id``, ``type``, ``inEdges``/``outEdges`` of ``{origin, destination}``).
* Jaeger query: jaegertracing/jaeger ``cmd/query/app/http_handler.go`` (``/api/services``,
  ``/api/traces?service=&start=&end=&limit=``, ``/api/traces/{traceID}`` (404 until the trace is
  stored), all ``{"data": ...}``; traces as in ``model/json/model.go``: ``traceID``, ``spans[]``
  with ``spanID``, ``operationName``, ``references[]`` (``refType`` ``CHILD_OF``, ``traceID``,
  ``spanID``), ``startTime``, ``tags``, ``processID``, and ``processes`` {id: {``serviceName``}}).
* W3C Trace Context: ``traceparent: 00-<32 hex trace id>-<16 hex parent span id>-01`` (sampled).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from demo.lakehouse.settings import LakehouseSettings
from demo.verify.report import FAIL, PASS, SKIP, CheckResult
from demo.verify.runner import Check, CheckFailed
from demo.verify.settings import VerifySettings, lineage_dataset_namespace

RAW_TABLES = ("customers", "products", "orders", "order_lines")
MARTS_TABLES = ("fct_orders", "dim_customers", "dim_products", "daily_revenue_by_category", "order_status_funnel")
SEED_JOB, TICK_JOB = "seed_raw_tables", "generate_and_build"
SEED_SENSOR, TICK_SCHEDULE = "seed_when_raw_tables_empty", "generate_orders_every_5_minutes"
REPOSITORY = "__repository__"
ROLLUP = "orders.orders_by_day"
#: Money is compared to the cent; counts exactly.
CENT = Decimal("0.01")


@dataclass
class Context:
    lake: LakehouseSettings
    settings: VerifySettings
    trigger: bool = False
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    #: Filled by checks for later ones (the triggered run id, the marts' totals).
    state: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: How long to wait between two reads when a figure may still be moving (pipeline mid-run).
    settle_seconds: float = 5.0
    #: Between two asks while Cube builds or the rollup catches up with the marts.
    poll_seconds: float = 2.0
    #: The one Cube token of this run (cube_headers).
    cube_authorization: str | None = None

    def result(self, name: str, status: str, figure: str, hint: str = "") -> CheckResult:
        return CheckResult(name, status, figure, hint if status == FAIL else "")  # type: ignore[arg-type]


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(CENT)


def _count(value: Any) -> int:
    return int(Decimal(str(value if value is not None else 0)))


# --- Iceberg REST catalog -----------------------------------------------------------------------


class Catalog:
    """The few Iceberg REST calls the checks need, as one principal."""

    def __init__(self, http: httpx.Client, lake: LakehouseSettings, client_id: str, client_secret: str) -> None:
        self.http, self.lake = http, lake
        token = http.post(
            lake.catalog_oauth2_uri,
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
                  "scope": lake.catalog_scope},
        )
        if token.status_code != 200:
            raise CheckFailed(
                f"token request for client {client_id!r} answered {token.status_code}",
                f"the catalog refused the credentials: check the principal's Secret and {lake.catalog_oauth2_uri}",
            )
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        config = http.get(f"{lake.catalog_uri}/v1/config", params={"warehouse": lake.catalog_warehouse}, headers=self.headers)
        if config.status_code != 200:
            raise CheckFailed(
                f"catalog {lake.catalog_warehouse!r}: /v1/config answered {config.status_code}",
                "the catalog does not exist yet: did the Polaris init Job complete? (make status)",
            )
        prefix = (config.json().get("overrides") or {}).get("prefix") or ""
        self.base = f"{lake.catalog_uri}/v1/{prefix}" if prefix else f"{lake.catalog_uri}/v1"

    def namespaces(self) -> list[str]:
        response = self.http.get(f"{self.base}/namespaces", headers=self.headers)
        response.raise_for_status()
        return [".".join(ns) for ns in response.json().get("namespaces", [])]

    def tables(self, namespace: str) -> list[str]:
        response = self.http.get(f"{self.base}/namespaces/{quote(namespace, safe='')}/tables", headers=self.headers)
        response.raise_for_status()
        return [t["name"] for t in response.json().get("identifiers", [])]

    def load(self, namespace: str, table: str) -> dict[str, Any]:
        response = self.http.get(f"{self.base}/namespaces/{quote(namespace, safe='')}/tables/{quote(table, safe='')}", headers=self.headers)
        response.raise_for_status()
        return response.json()

    def create_namespace(self, name: str) -> httpx.Response:
        return self.http.post(f"{self.base}/namespaces", json={"namespace": [name], "properties": {}}, headers=self.headers)

    def drop_namespace(self, name: str) -> httpx.Response:
        return self.http.delete(f"{self.base}/namespaces/{quote(name, safe='')}", headers=self.headers)


def writer(ctx: Context) -> Catalog:
    lake = ctx.lake
    return Catalog(ctx.http, lake, lake.catalog_client_id, lake.catalog_client_secret.get_secret_value())


def reader(ctx: Context) -> Catalog:
    s = ctx.settings
    return Catalog(ctx.http, ctx.lake, s.reader_client_id, s.reader_client_secret.get_secret_value())


def layer_namespaces(lake: LakehouseSettings) -> tuple[str, str, str]:
    return (lake.namespace_raw, lake.namespace_staging, lake.namespace_marts)


def check_catalog_namespaces(ctx: Context) -> CheckResult:
    cat = writer(ctx)
    present = set(cat.namespaces())
    missing = [ns for ns in layer_namespaces(ctx.lake) if ns not in present]
    if missing:
        raise CheckFailed(
            f"namespaces missing: {', '.join(missing)} (catalog has {', '.join(sorted(present)) or 'none'})",
            "the Polaris init Job creates them: check `kubectl logs job/floe-polaris-init`",
        )
    raw, marts = set(cat.tables(ctx.lake.namespace_raw)), set(cat.tables(ctx.lake.namespace_marts))
    figure = f"catalog {ctx.lake.catalog_warehouse}: raw/staging/marts present, {len(raw)} raw + {len(marts)} marts tables"
    missing_tables = [f"raw.{t}" for t in RAW_TABLES if t not in raw] + [f"marts.{t}" for t in MARTS_TABLES if t not in marts]
    if missing_tables:
        raise CheckFailed(f"{figure}; missing {', '.join(missing_tables)}",
                          "the seed run (raw) or dbt build (marts) has not completed: see the dagster.* checks")
    return ctx.result("catalog.namespaces", PASS, figure)


def check_catalog_reader(ctx: Context) -> CheckResult:
    cat = reader(ctx)
    loaded = 0
    for namespace in (ctx.lake.namespace_raw, ctx.lake.namespace_marts):
        for table in cat.tables(namespace):
            cat.load(namespace, table)
            loaded += 1
    if not loaded:
        raise CheckFailed("the reader lists no tables", "grant the reader's catalog role TABLE_LIST/TABLE_READ_DATA (Polaris init Job)")
    scratch = f"floe_verify_{secrets.token_hex(4)}"
    attempt = cat.create_namespace(scratch)
    if attempt.status_code in (200, 201, 204):
        cleanup = writer(ctx).drop_namespace(scratch)
        raise CheckFailed(
            f"the reader CREATED namespace {scratch} (HTTP {attempt.status_code}; dropped again: HTTP {cleanup.status_code})",
            "the read-only principal can write: its catalog role must hold only read privileges",
        )
    if attempt.status_code != 403:
        raise CheckFailed(f"the reader's write got HTTP {attempt.status_code}, not 403: {attempt.text[:160]}",
                          "expected the catalog to refuse the write as Forbidden (403)")
    return ctx.result("catalog.reader", PASS, f"listed and loaded {loaded} tables; write refused (403)")


def check_catalog_writer(ctx: Context) -> CheckResult:
    cat = writer(ctx)
    scratch = f"floe_verify_{secrets.token_hex(4)}"
    created = cat.create_namespace(scratch)
    if created.status_code not in (200, 201, 204):
        raise CheckFailed(f"the writer could not create a namespace: HTTP {created.status_code} {created.text[:160]}",
                          "grant the writer's catalog role CATALOG_MANAGE_CONTENT (Polaris init Job)")
    dropped = cat.drop_namespace(scratch)
    if dropped.status_code not in (200, 204):
        raise CheckFailed(f"created scratch namespace {scratch} but could not drop it: HTTP {dropped.status_code}",
                          f"drop the namespace {scratch} by hand; the writer lacks NAMESPACE_DROP")
    return ctx.result("catalog.writer", PASS, f"created and dropped scratch namespace {scratch}")


# --- S3 -----------------------------------------------------------------------------------------


def _s3(ctx: Context) -> Any:
    from demo.bootstrap.buckets import path_style_s3_client

    lake = ctx.lake
    return path_style_s3_client(
        lake.s3_endpoint, lake.s3_access_key_id, lake.s3_secret_access_key.get_secret_value(), lake.s3_region,
        connect_timeout=10,
    )


def check_storage(ctx: Context) -> CheckResult:
    from botocore.exceptions import BotoCoreError, ClientError

    s, s3 = ctx.settings, _s3(ctx)
    try:
        for bucket in (s.warehouse_bucket, s.cubestore_bucket):
            try:
                s3.head_bucket(Bucket=bucket)
            except ClientError as exc:
                raise CheckFailed(f"bucket {bucket!r} missing ({exc.response.get('Error', {}).get('Code')})",
                                  "the floe-minio-buckets Job creates it: check that Job's log") from exc
        cat = writer(ctx)
        empty, objects = [], 0
        for namespace, tables in ((ctx.lake.namespace_raw, RAW_TABLES), (ctx.lake.namespace_marts, MARTS_TABLES)):
            for table in tables:
                location = cat.load(namespace, table)["metadata"]["location"]
                bucket, _, prefix = location.split("://", 1)[1].partition("/")
                found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("KeyCount", 0)
                objects += found
                if not found:
                    empty.append(f"{namespace}.{table} ({location})")
        if empty:
            raise CheckFailed(f"no objects under {', '.join(empty)}",
                              "table metadata points at files S3 does not have: S3 data lost (emptyDir restarted?)")
        cube_objects = s3.list_objects_v2(Bucket=s.cubestore_bucket, MaxKeys=1000).get("KeyCount", 0)
    except (BotoCoreError, ClientError) as exc:
        raise CheckFailed(f"S3 at {ctx.lake.s3_endpoint}: {exc}", "check MinIO's pod and the S3 keys") from exc
    figure = f"{s.warehouse_bucket}: {objects} objects under {len(RAW_TABLES) + len(MARTS_TABLES)} table locations; {s.cubestore_bucket}: {cube_objects} objects"
    if not cube_objects:
        raise CheckFailed(figure, "Cube Store has uploaded no pre-aggregation yet: check floe-cube-refresh-worker's log")
    return ctx.result("storage.buckets", PASS, figure)


# --- Dagster ------------------------------------------------------------------------------------

WORKSPACE = """query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name loadStatus
      locationOrLoadError { __typename
        ... on RepositoryLocation { repositories { name jobs { name } } }
        ... on PythonError { message } } } }
    ... on PythonError { message }
  }
}"""

AUTOMATION = """query Automation($sensor: SensorSelector!, $schedule: ScheduleSelector!) {
  sensorOrError(sensorSelector: $sensor) { __typename ... on Sensor { sensorState { status } } ... on PythonError { message } }
  scheduleOrError(scheduleSelector: $schedule) { __typename ... on Schedule { scheduleState { status } } ... on PythonError { message } }
}"""

LAST_RUNS = """query LastRuns($job: String!) {
  runsOrError(filter: {pipelineName: $job}, limit: 1) {
    __typename
    ... on Runs { results { runId status } }
    ... on PythonError { message }
  }
}"""


def dagster_query(ctx: Context, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = ctx.http.post(f"{ctx.settings.dagster_url}/graphql", json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise CheckFailed(f"GraphQL error: {json.dumps(body['errors'])[:300]}", "the webserver's schema differs from dagster-graphql 1.13")
    return body["data"]


def check_dagster_location(ctx: Context) -> CheckResult:
    location = ctx.settings.dagster_location
    data = dagster_query(ctx, WORKSPACE)["workspaceOrError"]
    if data["__typename"] != "Workspace":
        raise CheckFailed(f"workspace: {data.get('message', data['__typename'])}", "the webserver cannot read its workspace.yaml")
    entries = {e["name"]: e for e in data["locationEntries"]}
    entry = entries.get(location)
    if entry is None:
        raise CheckFailed(f"no code location {location!r} (have: {', '.join(entries) or 'none'})",
                          "the workspace.yaml location_name and FLOE_DAGSTER_LOCATION must match")
    loaded = entry["locationOrLoadError"] or {}
    if entry["loadStatus"] != "LOADED" or loaded.get("__typename") != "RepositoryLocation":
        raise CheckFailed(f"location {location}: {entry['loadStatus']} {loaded.get('message', '')[:200]}",
                          "the code server (floe-dagster-user-code) failed to load the definitions: see its log")
    jobs = {j["name"] for repo in loaded["repositories"] for j in repo["jobs"]}
    missing = [j for j in (SEED_JOB, TICK_JOB, "build_marts") if j not in jobs]
    if missing:
        raise CheckFailed(f"location {location} lacks jobs {missing}", "the image runs other definitions than demo.orchestration.definitions")
    return ctx.result("dagster.location", PASS, f"location {location} loaded, {len(jobs)} jobs")


def check_dagster_automation(ctx: Context) -> CheckResult:
    selector = {"repositoryLocationName": ctx.settings.dagster_location, "repositoryName": REPOSITORY}
    data = dagster_query(ctx, AUTOMATION, {"sensor": {**selector, "sensorName": SEED_SENSOR},
                                           "schedule": {**selector, "scheduleName": TICK_SCHEDULE}})
    states = {
        SEED_SENSOR: (data["sensorOrError"].get("sensorState") or {}).get("status", data["sensorOrError"]["__typename"]),
        TICK_SCHEDULE: (data["scheduleOrError"].get("scheduleState") or {}).get("status", data["scheduleOrError"]["__typename"]),
    }
    figure = ", ".join(f"{k} {v}" for k, v in states.items())
    if any(v != "RUNNING" for v in states.values()):
        raise CheckFailed(figure, "start them in the Dagster UI (Automation); both default to RUNNING in the definitions")
    return ctx.result("dagster.automation", PASS, figure)


def last_run(ctx: Context, job: str) -> dict[str, Any] | None:
    data = dagster_query(ctx, LAST_RUNS, {"job": job})["runsOrError"]
    if data["__typename"] != "Runs":
        raise CheckFailed(f"runs: {data.get('message', data['__typename'])}", "the run storage (PostgreSQL) is not readable")
    return data["results"][0] if data["results"] else None


def check_dagster_seed(ctx: Context) -> CheckResult:
    run = last_run(ctx, SEED_JOB)
    if run is None:
        raise CheckFailed(f"no {SEED_JOB} run yet", "the sensor seeds within its interval once the daemon runs: check floe-dagster-daemon (or `make seed`)")
    if run["status"] != "SUCCESS":
        raise CheckFailed(f"last {SEED_JOB} run {run['runId']}: {run['status']}", "open the run in the Dagster UI to see why")
    return ctx.result("dagster.seed_run", PASS, f"last {SEED_JOB} run {run['runId'][:8]} SUCCESS")


def check_dagster_trigger(ctx: Context) -> CheckResult:
    if not ctx.trigger:
        return ctx.result("dagster.trigger", SKIP, "not asked (--trigger launches a generate_and_build run)")
    from demo.orchestration.raw import raw_run_config
    from demo.orchestration.trigger import TriggerError, launch_run, wait_for_run

    url, location = ctx.settings.dagster_url, ctx.settings.dagster_location
    try:
        run_id = launch_run(ctx.http, url, TICK_JOB, location, raw_run_config("append"))
    except TriggerError as exc:
        raise CheckFailed(f"launch refused: {str(exc)[:200]}", "see the message; the job's config or location differs") from exc
    with ctx.lock:
        ctx.state["triggered_run"] = run_id
    started = time.monotonic()
    status = wait_for_run(ctx.http, url, run_id, timeout=ctx.settings.verify_trigger_timeout_seconds)
    with ctx.lock:  # the run ends with dbt build: the marts are new from here (cube.freshness)
        ctx.state["triggered_finished"] = time.time()
    figure = f"run {run_id[:8]} {status} in {time.monotonic() - started:.0f}s"
    if status != "SUCCESS":
        raise CheckFailed(figure, "open the run in the Dagster UI to see which step failed")
    return ctx.result("dagster.trigger", PASS, figure)


# --- Data (DuckDB) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    orders: int
    amount: Decimal
    customers: int
    lifetime_value: Decimal
    products: int
    units_sold: int
    revenue: Decimal


def _duckdb(ctx: Context) -> Any:
    from demo.lakehouse.duckdb import connect

    return connect(ctx.lake)


def marts_totals(ctx: Context, con: Any | None = None, *, refresh: bool = False) -> Totals:
    """The marts' totals through DuckDB (cached for the Cube checks; ``refresh`` reads them again)."""
    with ctx.lock:
        cached = ctx.state.get("marts_totals")
    if cached is not None and con is None and not refresh:
        return cached
    own = con is None
    con = con or _duckdb(ctx)
    m = ctx.lake.namespace_marts
    try:
        orders, amount = con.execute(f'SELECT count(*), sum(amount) FROM lake."{m}".fct_orders').fetchone()
        customers, ltv = con.execute(f'SELECT count(*), sum(lifetime_value) FROM lake."{m}".dim_customers').fetchone()
        products, units, revenue = con.execute(f'SELECT count(*), sum(units_sold), sum(revenue) FROM lake."{m}".dim_products').fetchone()
    finally:
        if own:
            con.close()
    totals = Totals(_count(orders), _money(amount), _count(customers), _money(ltv), _count(products), _count(units), _money(revenue))
    with ctx.lock:
        ctx.state["marts_totals"] = totals
    return totals


def _raw_figures(con: Any, raw: str) -> dict[str, Any]:
    counts = {t: con.execute(f'SELECT count(*) FROM lake."{raw}".{t}').fetchone()[0] for t in RAW_TABLES}
    amount, revenue = con.execute(
        f"""SELECT sum(l.line_amount),
                   sum(l.line_amount) FILTER (WHERE o.status NOT IN ('cancelled', 'returned'))
            FROM lake."{raw}".order_lines AS l JOIN lake."{raw}".orders AS o USING (order_id)"""
    ).fetchone()
    return {"counts": counts, "amount": _money(amount), "revenue": _money(revenue)}


def check_data(ctx: Context) -> CheckResult:
    """Row counts, and the marts agree with raw. A generation run appends to raw before dbt rebuilds
    the marts, so a mismatch is read again a few times (``settle_seconds`` apart) before failing."""
    con = _duckdb(ctx)
    try:
        for attempt in range(4):
            raw = _raw_figures(con, ctx.lake.namespace_raw)
            marts = marts_totals(ctx, con)
            problems = []
            if raw["counts"]["orders"] != marts.orders:
                problems.append(f"orders raw {raw['counts']['orders']} ≠ fct_orders {marts.orders}")
            if raw["amount"] != marts.amount:
                problems.append(f"amount raw {raw['amount']} ≠ fct_orders {marts.amount}")
            for label, value in (("dim_products.revenue", marts.revenue), ("dim_customers.lifetime_value", marts.lifetime_value)):
                if raw["revenue"] != value:
                    problems.append(f"revenue raw {raw['revenue']} ≠ {label} {value}")
            if not problems and marts.orders:
                break
            if attempt < 3:
                threading.Event().wait(ctx.settle_seconds)
    finally:
        con.close()
    counts = ", ".join(f"{k} {v}" for k, v in raw["counts"].items())
    figure = f"raw: {counts}; marts: {marts.orders} orders, {marts.customers} customers, {marts.products} products; revenue {marts.revenue}"
    if not marts.orders:
        raise CheckFailed(figure, "the marts are empty: has a generate_and_build run (dbt build) succeeded?")
    if problems:
        raise CheckFailed(f"{figure}; " + "; ".join(problems),
                          "the marts do not match raw: run `make generate` (dbt build) and look at its dbt tests")
    return ctx.result("data.marts_match_raw", PASS, figure)


# --- Cube ---------------------------------------------------------------------------------------

#: Cube asks the client to ask again (REST: HTTP 200 {"error": ...}; GraphQL: HTTP 500 {"errors": [{"message": ...}]}).
CONTINUE_WAIT = "Continue wait"
#: A production API (no refresh) before the refresh worker's first build: HTTP 400 with this message
#: (query-orchestrator PreAggregations.noPreAggregationPartitionsBuiltMessage).
NOT_BUILT = "No pre-aggregation partitions were built yet"
REFRESH_WORKER_HINT = ("the refresh worker (floe-cube-refresh-worker) builds the rollups into Cube Store: check its log and "
                       "Cube Store's (floe-cubestore-router); it builds within a minute once the marts exist")


def cube_token(secret: str, *, lifetime: int = 3600) -> str:
    """A JWT (HS256) signed with CUBEJS_API_SECRET, as Cube's default checkAuth verifies it."""
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"iat": int(time.time()), "exp": int(time.time()) + lifetime}).encode())
    signature = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{signature}"


def cube_headers(ctx: Context) -> dict[str, str]:
    """One token for the whole run: Cube verifies each new token payload once (40-200 ms) and caches
    it, so a token signed per request would put that cost into every latency sample."""
    with ctx.lock:
        if ctx.cube_authorization is None:
            ctx.cube_authorization = cube_token(ctx.settings.cube_api_secret.get_secret_value(), lifetime=6 * 3600)
        return {"Authorization": ctx.cube_authorization}


CUBE_QUERIES: dict[str, dict[str, Any]] = {
    "orders": {"measures": ["orders.count", "orders.total_amount"]},
    "customers": {"measures": ["customers.count", "customers.total_lifetime_value"]},
    "products": {"measures": ["products.count", "products.units_sold", "products.revenue"]},
}
#: The query the orders_by_day rollup serves (day grain; status is one of its dimensions).
ROLLUP_QUERY: dict[str, Any] = {
    "measures": ["orders.count", "orders.total_amount"],
    "dimensions": ["orders.status"],
    "timeDimensions": [{"dimension": "orders.created_at", "granularity": "day"}],
}


def graphql_field(member: str) -> str:
    """Cube's GraphQL field of ``<cube>.<member>``: the member's name exactly as the model writes it
    (api-gateway graphql.js ``safeName`` drops the cube prefix; no camelCase)."""
    return member.split(".", 1)[1]


def cube_graphql_document(cube: str, members: Iterable[str]) -> str:
    return f"query {{ cube {{ {cube} {{ {' '.join(graphql_field(m) for m in members)} }} }} }}"


#: The documents check_cube_graphql sends (tests validate them against Cube's own makeSchema).
CUBE_GRAPHQL_DOCUMENTS: dict[str, str] = {cube: cube_graphql_document(cube, q["measures"]) for cube, q in CUBE_QUERIES.items()}


def expected_cube_totals(t: Totals) -> dict[str, dict[str, Decimal | int]]:
    return {
        "orders": {"orders.count": t.orders, "orders.total_amount": t.amount},
        "customers": {"customers.count": t.customers, "customers.total_lifetime_value": t.lifetime_value},
        "products": {"products.count": t.products, "products.units_sold": t.units_sold, "products.revenue": t.revenue},
    }


def _same(expected: Decimal | int, got: Any) -> bool:
    return _money(got) == _money(expected)


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _cube_call(ctx: Context, what: str, send: Callable[[], httpx.Response], messages: Callable[[dict[str, Any]], list[str]]) -> dict[str, Any]:
    """Send until Cube stops saying "Continue wait" (any status) or that no rollup is built yet (400),
    up to FLOE_VERIFY_CUBE_WAIT_SECONDS; then the body, or a failure naming what Cube said."""
    s = ctx.settings
    started = time.monotonic()
    while True:
        response = send()
        if response.status_code == 403:
            raise CheckFailed(f"Cube {what} answered 403", "the token was refused: FLOE_CUBE_API_SECRET must equal Cube's CUBEJS_API_SECRET")
        body = _json_body(response)
        said = messages(body)
        waited = time.monotonic() - started
        continue_wait = any(CONTINUE_WAIT in m for m in said)
        not_built = any(NOT_BUILT in m for m in said)
        with ctx.lock:  # waited out once in this run already: the next checks fail at once
            gave_up = bool(ctx.state.get("cube_not_built"))
        if (continue_wait or (not_built and not gave_up)) and waited < s.verify_cube_wait_seconds:
            threading.Event().wait(0 if continue_wait else ctx.poll_seconds)  # Cube itself held a "Continue wait" for a while
            continue
        if not_built:
            with ctx.lock:
                ctx.state["cube_not_built"] = True
            raise CheckFailed(f"Cube {what}: no pre-aggregation built yet after {waited:.0f}s (HTTP {response.status_code})", REFRESH_WORKER_HINT)
        if continue_wait:
            raise CheckFailed(f"Cube {what}: still \"Continue wait\" after {waited:.0f}s", "Cube is still building or the data source is slow: see floe-cube's log")
        if response.status_code != 200 or said:
            text = "; ".join(said) or response.text
            raise CheckFailed(f"Cube {what} answered {response.status_code}: {text[:200]}", "see floe-cube's log (data source, catalog attach, Cube Store)")
        return body


def cube_get(ctx: Context, path: str, query: dict[str, Any]) -> dict[str, Any]:
    """GET a Cube REST endpoint (``/cubejs-api/v1/<path>``)."""
    url = f"{ctx.settings.cube_api_url}/cubejs-api/v1/{path}"
    return _cube_call(ctx, path, lambda: ctx.http.get(url, params={"query": json.dumps(query)}, headers=cube_headers(ctx)),
                      lambda body: [str(body["error"])] if body.get("error") else [])


def cube_graphql(ctx: Context, document: str) -> dict[str, Any]:
    """POST a document to ``/cubejs-api/graphql``."""
    url = f"{ctx.settings.cube_api_url}/cubejs-api/graphql"
    return _cube_call(ctx, "GraphQL", lambda: ctx.http.post(url, json={"query": document}, headers=cube_headers(ctx)),
                      lambda body: [str(e.get("message")) if isinstance(e, dict) else str(e) for e in body.get("errors") or []])


def until_fresh(ctx: Context, compare: Callable[[Totals], tuple[list[str], Any]]) -> tuple[Totals, Any]:
    """Compare Cube with the marts of the same moment, again while they differ, for up to the
    freshness target: a rollup rebuilds when its mart's snapshot changes (demo/cube/model), so a
    difference that outlives the target is stale or wrong data, never a race with the schedule."""
    s = ctx.settings
    deadline = time.monotonic() + s.verify_freshness_target_seconds
    totals = marts_totals(ctx)
    while True:
        wrong, figure = compare(totals)
        if not wrong:
            return totals, figure
        if time.monotonic() >= deadline:
            raise CheckFailed("; ".join(wrong) + f" (for {s.verify_freshness_target_seconds:.0f}s)",
                              "Cube serves other numbers than the marts for longer than the freshness target: a stale rollup "
                              f"({REFRESH_WORKER_HINT}) or a model/marts mismatch")
        threading.Event().wait(ctx.poll_seconds)
        totals = marts_totals(ctx, refresh=True)


def _cube_rest_wrong(ctx: Context, totals: Totals) -> tuple[list[str], int]:
    expected = expected_cube_totals(totals)
    wrong, rows = [], 0
    for cube, query in CUBE_QUERIES.items():
        data = cube_get(ctx, "load", query).get("data") or []
        rows += len(data)
        if not data:
            wrong.append(f"{cube}: no rows")
            continue
        for member, value in expected[cube].items():
            got = sum((Decimal(str(row.get(member) or 0)) for row in data), Decimal(0))
            if not _same(value, got):
                wrong.append(f"{member} {got} ≠ marts {value}")
    return wrong, rows


def check_cube_rest(ctx: Context) -> CheckResult:
    _, rows = until_fresh(ctx, lambda totals: _cube_rest_wrong(ctx, totals))
    return ctx.result("cube.rest", PASS, f"3 cubes, {rows} rows, totals equal the marts")


def _rollup_totals(result: dict[str, Any]) -> tuple[int, Decimal]:
    data = result.get("data") or []
    return (sum(_count(r.get("orders.count")) for r in data),
            _money(sum((Decimal(str(r.get("orders.total_amount") or 0)) for r in data), Decimal(0))))


def check_cube_preaggregation(ctx: Context) -> CheckResult:
    """Served from the rollup in Cube Store: ``external: true`` and ``usedPreAggregations`` naming
    ``orders.orders_by_day`` (1.7.43 reports its id in production too, trimmed to preAggregationId,
    lastUpdatedAt and type), with the marts' totals."""
    plan = cube_get(ctx, "sql", ROLLUP_QUERY).get("sql") or {}
    planned = [p.get("preAggregationId") for p in plan.get("preAggregations") or []]

    def compare(t: Totals) -> tuple[list[str], dict[str, Any]]:
        result = cube_get(ctx, "load", ROLLUP_QUERY)
        used = [u.get("preAggregationId") for u in (result.get("usedPreAggregations") or {}).values() if isinstance(u, dict)]
        external = result.get("external")
        figure = f"planned {planned or 'none'}, used {used or 'none'}, external={external}, {len(result.get('data') or [])} rows"
        if external is not True or ROLLUP not in used:
            raise CheckFailed(figure, f"the rollup query was not served from {ROLLUP} in Cube Store (external: true): "
                                      "check floe-cube-refresh-worker and Cube Store's logs")
        count, amount = _rollup_totals(result)
        wrong = [] if (count, amount) == (t.orders, t.amount) else [
            f"{figure}; rollup totals {count} orders / {amount} ≠ marts {t.orders} / {t.amount}"]
        return wrong, result

    _, result = until_fresh(ctx, compare)
    return ctx.result("cube.preaggregation", PASS,
                      f"served from {ROLLUP} in Cube Store (external), {len(result.get('data') or [])} rows, totals equal the marts")


def check_cube_freshness(ctx: Context) -> CheckResult:
    """With --trigger: how long after the triggered run's dbt build finished Cube served the new
    marts through the rollup (the plan: within FLOE_VERIFY_FRESHNESS_TARGET_SECONDS, 60 s)."""
    s = ctx.settings
    with ctx.lock:
        finished = ctx.state.get("triggered_finished")
    if not ctx.trigger:
        return ctx.result("cube.freshness", SKIP, "not asked (--trigger measures dbt finished → Cube serves the new totals)")
    if finished is None:
        raise CheckFailed("no triggered run finished", "see dagster.trigger")
    target = s.verify_freshness_target_seconds
    totals = marts_totals(ctx, refresh=True)
    while True:
        count, amount = _rollup_totals(cube_get(ctx, "load", ROLLUP_QUERY))
        lag = time.time() - finished
        if (count, amount) == (totals.orders, totals.amount):
            break
        if lag > target + s.verify_cube_wait_seconds:
            raise CheckFailed(f"Cube still serves {count} orders / {amount} against marts {totals.orders} / {totals.amount} "
                              f"{lag:.0f}s after dbt finished (target {target:.0f}s)", REFRESH_WORKER_HINT)
        threading.Event().wait(ctx.poll_seconds)
    figure = f"Cube served the new marts {lag:.0f}s after dbt finished (target {target:.0f}s)"
    if lag > target:
        raise CheckFailed(figure, f"slower than the target: {REFRESH_WORKER_HINT}")
    return ctx.result("cube.freshness", PASS, figure)


def latency_figures(timings: list[float]) -> tuple[float, float]:
    p50 = statistics.median(timings)
    p95 = sorted(timings)[max(0, -(-95 * len(timings) // 100) - 1)]
    return p50, p95


def check_cube_latency(ctx: Context) -> CheckResult:
    s = ctx.settings
    cube_get(ctx, "load", ROLLUP_QUERY)  # warm-up, not counted
    timings = []
    for _ in range(s.verify_latency_queries):
        started = time.perf_counter()
        cube_get(ctx, "load", ROLLUP_QUERY)
        timings.append((time.perf_counter() - started) * 1000)
    p50, p95 = latency_figures(timings)
    figure = f"p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(timings)} warm queries (budget {s.verify_latency_budget_ms:.0f} ms)"
    if p95 > s.verify_latency_budget_ms:
        raise CheckFailed(figure, "slower than planned: is the rollup served from Cube Store (cube.preaggregation)? are the pods CPU-throttled?")
    return ctx.result("cube.latency", PASS, figure)


def _cube_graphql_wrong(ctx: Context, totals: Totals) -> tuple[list[str], None]:
    expected = expected_cube_totals(totals)
    wrong = []
    for cube, document in CUBE_GRAPHQL_DOCUMENTS.items():
        rows = (cube_graphql(ctx, document).get("data") or {}).get("cube") or []
        if not rows:
            wrong.append(f"{cube}: no rows")
            continue
        for member, value in expected[cube].items():
            got = sum((Decimal(str((row.get(cube) or {}).get(graphql_field(member)) or 0)) for row in rows), Decimal(0))
            if not _same(value, got):
                wrong.append(f"{member} {got} ≠ marts {value}")
    return wrong, None


def check_cube_graphql(ctx: Context) -> CheckResult:
    until_fresh(ctx, lambda totals: _cube_graphql_wrong(ctx, totals))
    return ctx.result("cube.graphql", PASS, "3 cubes, totals equal the marts")


#: The same question as the REST orders query, through Cube's SQL API (MEASURE() is Cube SQL).
CUBE_SQL = "SELECT MEASURE(count) AS orders, MEASURE(total_amount) AS amount FROM orders"


def check_cube_sql(ctx: Context) -> CheckResult:
    import psycopg2

    s = ctx.settings
    try:
        conn = psycopg2.connect(host=s.cube_sql_host, port=s.cube_sql_port, user=s.cube_sql_user,
                                password=s.cube_sql_password.get_secret_value(), dbname=s.cube_sql_database, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise CheckFailed(f"cannot connect to {s.cube_sql_host}:{s.cube_sql_port}: {str(exc).strip()[:200]}",
                          "Cube's SQL API is down or the user/password differ from CUBEJS_SQL_USER/CUBEJS_SQL_PASSWORD") from exc

    def compare(t: Totals) -> tuple[list[str], str]:
        with conn.cursor() as cur:
            cur.execute(CUBE_SQL)
            orders, amount = cur.fetchone()
        figure = f"{_count(orders)} orders, amount {_money(amount)}"
        if (_count(orders), _money(amount)) != (t.orders, t.amount):
            return [f"{figure} ≠ marts {t.orders} / {t.amount}"], figure
        return [], figure

    try:
        _, figure = until_fresh(ctx, compare)
    finally:
        conn.close()
    return ctx.result("cube.sql", PASS, f"{figure} (equal to the marts)")


# --- Marquez ------------------------------------------------------------------------------------


def _marquez(ctx: Context, path: str, **params: Any) -> dict[str, Any]:
    response = ctx.http.get(f"{ctx.settings.marquez_url}/api/v1/{path}", params=params)
    response.raise_for_status()
    return response.json()


def lineage_reaches(graph: Iterable[dict[str, Any]], start: str, target: str) -> bool:
    """True when ``target`` is downstream of ``start`` following the nodes' outEdges."""
    edges: dict[str, list[str]] = {}
    for node in graph:
        for edge in node.get("outEdges") or []:
            edges.setdefault(edge["origin"], []).append(edge["destination"])
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in edges.get(queue.popleft(), []):
            if nxt == target:
                return True
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return False


def check_marquez(ctx: Context) -> CheckResult:
    s, lake = ctx.settings, ctx.lake
    if not s.marquez_url:
        return ctx.result("marquez.lineage", SKIP, "Marquez is off (FLOE_MARQUEZ_URL unset)")
    datasets_ns = lineage_dataset_namespace(lake)
    namespaces = {n["name"] for n in _marquez(ctx, "namespaces", limit=1000).get("namespaces", [])}
    missing = [n for n in (s.lineage_namespace, datasets_ns) if n not in namespaces]
    if missing:
        raise CheckFailed(f"namespaces missing: {missing}", "no lineage arrived: check OPENLINEAGE_URL on floe-dagster-user-code and its log")
    jobs = {j["name"] for j in _marquez(ctx, f"namespaces/{quote(s.lineage_namespace, safe='')}/jobs", limit=1000).get("jobs", [])}
    wanted_jobs = [f"dagster.{SEED_JOB}", f"dagster.{TICK_JOB}", "ingest.raw_tables", "dbt.fct_orders", "dbt.stg_orders"]
    datasets = {d["name"] for d in _marquez(ctx, f"namespaces/{quote(datasets_ns, safe='')}/datasets", limit=1000).get("datasets", [])}
    wh = lake.catalog_warehouse
    wanted_datasets = [f"{wh}.{lake.namespace_raw}.orders", f"{wh}.{lake.namespace_marts}.fct_orders"]
    staging = {d["name"] for d in _marquez(ctx, f"namespaces/{quote('duckdb://floe', safe='')}/datasets", limit=1000).get("datasets", [])}
    problems = [f"job {j}" for j in wanted_jobs if j not in jobs] + [f"dataset {d}" for d in wanted_datasets if d not in datasets]
    if not any(name.endswith(".stg_orders") for name in staging):
        problems.append("staging dataset *.stg_orders (duckdb://floe)")
    if problems:
        raise CheckFailed("missing " + ", ".join(problems), "lineage is incomplete: has a generate_and_build run finished with lineage on?")
    start, target = (f"dataset:{datasets_ns}:{name}" for name in wanted_datasets)
    graph = _marquez(ctx, "lineage", nodeId=start, depth=20).get("graph", [])
    if not lineage_reaches(graph, start, target):
        raise CheckFailed(f"no lineage path {wanted_datasets[0]} → {wanted_datasets[1]} ({len(graph)} nodes)",
                          "dbt's model events did not link raw to marts: check the dbt.* jobs' inputs in Marquez")
    return ctx.result("marquez.lineage", PASS, f"{len(jobs)} jobs, {len(datasets)} iceberg datasets, raw.orders → marts.fct_orders linked")


# --- Jaeger -------------------------------------------------------------------------------------


def check_jaeger(ctx: Context) -> CheckResult:
    s = ctx.settings
    if not s.jaeger_url:
        return ctx.result("jaeger.traces", SKIP, "Jaeger is off (FLOE_JAEGER_URL unset)")
    services = ctx.http.get(f"{s.jaeger_url}/api/services")
    services.raise_for_status()
    if s.jaeger_service not in (services.json().get("data") or []):
        raise CheckFailed(f"service {s.jaeger_service!r} has no traces (services: {services.json().get('data')})",
                          "check OTEL_EXPORTER_OTLP_ENDPOINT/OTEL_SERVICE_NAME on floe-dagster-user-code")
    now_us = int(time.time() * 1_000_000)
    response = ctx.http.get(f"{s.jaeger_url}/api/traces", params={
        "service": s.jaeger_service, "operation": f"dagster.run {TICK_JOB}", "limit": 20,
        "start": now_us - 24 * 3600 * 1_000_000, "end": now_us})
    response.raise_for_status()
    traces = response.json().get("data") or []
    with ctx.lock:
        wanted_run = ctx.state.get("triggered_run")

    def root(trace: dict[str, Any]) -> dict[str, Any] | None:
        return next((sp for sp in trace.get("spans", []) if sp.get("operationName") == f"dagster.run {TICK_JOB}"), None)

    def run_id(span: dict[str, Any]) -> str:
        return next((str(t.get("value")) for t in span.get("tags", []) if t.get("key") == "dagster.run_id"), "?")

    runs = [(root(t), t) for t in traces]
    runs = [(r, t) for r, t in runs if r is not None and (wanted_run is None or run_id(r) == wanted_run)]
    if not runs:
        which = f"run {wanted_run}" if wanted_run else f"any {TICK_JOB} run in the last 24 h"
        raise CheckFailed(f"no trace of {which}", "spans are flushed at the end of each run: has one finished since Jaeger started? (in-memory storage)")
    span, trace = max(runs, key=lambda rt: rt[0].get("startTime", 0))
    ops = [sp.get("operationName", "") for sp in trace.get("spans", [])]
    dbt = [o for o in ops if o.startswith("dbt")]
    iceberg = [o for o in ops if o.startswith("iceberg.")]
    figure = f"trace {trace.get('traceID', '?')[:8]} of run {run_id(span)[:8]}: {len(ops)} spans, {len(dbt)} dbt, {len(iceberg)} iceberg"
    if not dbt or not iceberg:
        raise CheckFailed(figure, "the run's trace lacks its dbt or Iceberg spans: check the code server's log for exporter errors")
    return ctx.result("jaeger.traces", PASS, f"{figure}; {cube_trace(ctx)}")


def _trace_ids() -> tuple[str, str]:
    """A fresh W3C trace id and parent span id (hex; the trace id's first half never zero, so
    Jaeger prints it with all 32 digits)."""
    trace_id = "%02x%s" % (secrets.randbelow(255) + 1, secrets.token_hex(15))
    return trace_id, secrets.token_hex(8)


def cube_trace(ctx: Context) -> str:
    """Query Cube with our own ``traceparent``, then find that trace in Jaeger with a span of the
    Cube API's service whose parent is our span: the client's trace continued into Cube."""
    s = ctx.settings
    service = s.jaeger_cube_service
    trace_id, parent_id = _trace_ids()
    headers = {"Authorization": cube_token(s.cube_api_secret.get_secret_value()), "traceparent": f"00-{trace_id}-{parent_id}-01"}
    # Any answer will do (even "Continue wait"): the span is written for every request Cube serves.
    ctx.http.get(f"{s.cube_api_url}/cubejs-api/v1/load", params={"query": json.dumps(ROLLUP_QUERY)}, headers=headers)
    deadline = time.monotonic() + s.verify_trace_wait_seconds
    while True:
        response = ctx.http.get(f"{s.jaeger_url}/api/traces/{trace_id}")
        if response.status_code not in (200, 404):
            raise CheckFailed(f"Jaeger /api/traces/{trace_id} answered {response.status_code}", "see floe-jaeger's log")
        traces = (response.json().get("data") or []) if response.status_code == 200 else []
        spans = [
            span
            for trace in traces
            for span in trace.get("spans") or []
            if ((trace.get("processes") or {}).get(span.get("processID")) or {}).get("serviceName") == service
        ]
        if spans or time.monotonic() >= deadline:
            break
        threading.Event().wait(1.0)
    if not spans:
        raise CheckFailed(
            f"no {service} span in trace {trace_id} {s.verify_trace_wait_seconds:.0f}s after a Cube query carrying it",
            f"Cube sends no spans: check NODE_OPTIONS (--require .../tracing.js) and OTEL_* on {service}, its "
            "copy-otel-sdk init container, and its log for 'floe tracing'",
        )
    continued = [
        span for span in spans
        if any(ref.get("refType") == "CHILD_OF" and ref.get("spanID") == parent_id for ref in span.get("references") or [])
    ]
    if not continued:
        raise CheckFailed(
            f"trace {trace_id[:8]}: {len(spans)} {service} spans, none a child of the client's span {parent_id}",
            f"Cube did not continue the caller's W3C trace context: OTEL_PROPAGATORS on {service} must include tracecontext",
        )
    return f"Cube trace {trace_id[:8]}: {len(spans)} {service} spans, {continued[0].get('operationName')!r} continues the client's span"


# --- the list -----------------------------------------------------------------------------------


def all_checks(settings: VerifySettings) -> list[Check]:
    # A Cube check may wait for the first build, then for a rollup to catch up with the marts.
    cube_timeout = settings.verify_check_timeout_seconds + settings.verify_cube_wait_seconds + settings.verify_freshness_target_seconds
    return [
        Check("catalog.namespaces", check_catalog_namespaces),
        Check("catalog.reader", check_catalog_reader),
        Check("catalog.writer", check_catalog_writer),
        Check("storage.buckets", check_storage),
        Check("dagster.location", check_dagster_location),
        Check("dagster.automation", check_dagster_automation),
        Check("dagster.seed_run", check_dagster_seed),
        Check("dagster.trigger", check_dagster_trigger, timeout=settings.verify_trigger_timeout_seconds + 60),
        Check("data.marts_match_raw", check_data),
        Check("cube.freshness", check_cube_freshness, timeout=cube_timeout),
        Check("cube.rest", check_cube_rest, timeout=cube_timeout),
        Check("cube.preaggregation", check_cube_preaggregation, timeout=cube_timeout),
        Check("cube.graphql", check_cube_graphql, timeout=cube_timeout),
        Check("cube.sql", check_cube_sql, timeout=cube_timeout),
        Check("cube.latency", check_cube_latency, timeout=cube_timeout),
        Check("marquez.lineage", check_marquez),
        Check("jaeger.traces", check_jaeger),
    ]


CHECK_NAMES: tuple[str, ...] = tuple(c.name for c in all_checks(VerifySettings.model_construct(
    verify_trigger_timeout_seconds=1, verify_check_timeout_seconds=1, verify_cube_wait_seconds=1, verify_freshness_target_seconds=1)))
