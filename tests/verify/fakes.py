"""Small HTTP servers on 127.0.0.1 that answer in the shapes Cube, Marquez and Jaeger document
(none of them can run on these machines). Each knob makes one answer wrong, so the tests can show
every check fails on it.

Shapes, by upstream source:
* Cube REST (npm @cubejs-backend/api-gateway 1.7.43, dist/src/gateway.js): ``load`` answers
  ``{query, lastRefreshTime, usedPreAggregations, annotation, dataSource, dbType, extDbType, external,
  slowQuery, total, data: [{"<cube>.<member>": "<value as string>"}]}`` (``prepareResultTransformData``;
  in production ``usedPreAggregations`` is trimmed to ``{preAggregationId, lastUpdatedAt, type}`` per
  table and absent when no rollup served the query); ``sql`` answers ``{"sql": {sql: [text, params],
  preAggregations: [{preAggregationId: "<cube>.<name>", tableName, ...}], external, ...}}``; "Continue
  wait" is ``{"error": "Continue wait"}`` with status 200 and an orchestrator error (the
  not-yet-built message of query-orchestrator's PreAggregations.js) status 400 (``handleError``); a
  bad token is 403 ``{"error": "Invalid token"}``.
* Cube GraphQL: the schema is Cube's own ``makeSchema`` over demo/cube (tests/support/cube_graphql.py),
  the document is validated and executed against it with graphql-core, and the HTTP status follows
  express-graphql 0.12 (400 invalid document, 500 when ``data`` is null: a resolver error such as
  "Continue wait", since the root field ``cube`` is non-null).
* Marquez: MarquezProject/marquez spec/openapi.yml — NamespaceList ``{namespaces: [{name}]}``,
  JobList ``{jobs: [{name, namespace, ...}], totalCount}``, DatasetList ``{datasets: [{name,
  namespace, ...}], totalCount}``, LineageGraph ``{graph: [{id, type, data, inEdges, outEdges}]}``
  with GraphEdge ``{origin, destination}``; node ids ``dataset:<ns>:<name>`` / ``job:<ns>:<name>``.
* Jaeger query: jaegertracing/jaeger cmd/query/app/http_handler.go ``structuredResponse``
  ``{data, total, limit, offset, errors}``; ``/api/services`` data = service names; ``/api/traces``
  data = traces as model/json/model.go (``traceID``, ``spans: [{traceID, spanID, operationName,
  references, startTime, duration, tags: [{key, type, value}], processID}]``, ``processes``);
  ``/api/traces/{traceID}`` data = [that trace], or 404 with ``errors: [{code: 404, msg: "trace not
  found"}]`` and ``data: null`` (``getTrace`` -> ``handleError(..., http.StatusNotFound)``). A span
  whose parent came from the caller's ``traceparent`` keeps it as ``references: [{refType: "CHILD_OF",
  traceID, spanID: <the caller's span id>}]`` (model/converter from OTLP ``parent_span_id``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from demo.lakehouse.duckdb import DBT_LOCAL_DATABASE
from demo.verify.checks import Totals

Handler = Callable[[str, str, dict[str, list[str]], dict[str, str], bytes], tuple[int, Any]]


@contextmanager
def serve(handler: Handler) -> Iterator[str]:
    """Serve ``handler(method, path, query, headers, body) -> (status, json)``; yields the base URL."""

    class Request(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            status, payload = handler(self.command, unquote(parts.path), parse_qs(parts.query), dict(self.headers), body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer  # noqa: N815 (http.server API)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Request)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- Cube ---------------------------------------------------------------------------------------


def _jwt_ok(token: str, secret: str) -> bool:
    try:
        head, body, signature = token.split(".")
    except ValueError:
        return False
    expected = base64.urlsafe_b64encode(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return hmac.compare_digest(expected, signature) and claims.get("exp", 0) > time.time()


#: query-orchestrator 1.7.43 PreAggregations.noPreAggregationPartitionsBuiltMessage (its first words).
NOT_BUILT_MESSAGE = ("No pre-aggregation partitions were built yet for the pre-aggregation serving this query and "
                     "this API instance wasn't set up to build pre-aggregations. Please make sure your refresh worker is "
                     "configured correctly, running, pre-aggregation tables are built and all pre-aggregation refresh "
                     "settings like timezone match. Expected table name patterns: prod_pre_aggregations.orders_orders_by_day_*_*_*")


@dataclass
class FakeCube:
    totals: Totals
    secret: str
    #: The GraphQL schema Cube's own makeSchema builds from demo/cube (tests/support/cube_graphql.py):
    #: documents are validated and executed against it, so the answers have Cube's shape.
    graphql_sdl: str
    #: Knobs.
    offset: int = 0  # added to every count: "wrong totals"
    stale: Totals | None = None  # the rollup (and every answer) still holds these older marts
    pre_aggregation: bool = True  # the rollup is planned and served from Cube Store
    external: bool | None = None  # override the `external` flag of a rollup answer (a rollup not in Cube Store)
    continue_wait_first: int = 0  # so many "Continue wait" answers first
    not_built_first: int = 0  # so many 400 "no partitions built yet" answers first
    delay: float = 0.0
    requests: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        import graphql

        self.schema = graphql.build_schema(self.graphql_sdl)

    def values(self) -> dict[str, Any]:
        t = self.stale or self.totals
        return {
            "orders.count": t.orders + self.offset, "orders.total_amount": t.amount,
            "customers.count": t.customers + self.offset, "customers.total_lifetime_value": t.lifetime_value,
            "products.count": t.products + self.offset, "products.units_sold": t.units_sold, "products.revenue": t.revenue,
        }

    def _waiting(self) -> str | None:
        if self.not_built_first:
            self.not_built_first -= 1
            return NOT_BUILT_MESSAGE
        if self.continue_wait_first:
            self.continue_wait_first -= 1
            return "Continue wait"
        return None

    def _graphql(self, body: bytes) -> tuple[int, Any]:
        """As express-graphql 0.12 answers for Cube's schema: 400 with ``errors`` on an invalid
        document; the resolver's error (Cube's "Continue wait", a 400 of the query) with ``data: null``
        -> HTTP 500, since ``cube`` is non-null at the root; else 200 ``{"data": ...}``."""
        import graphql

        try:
            document = graphql.parse(json.loads(body)["query"])
        except graphql.GraphQLError as exc:
            return 400, {"errors": [{"message": exc.message}]}
        invalid = graphql.validate(self.schema, document)
        if invalid:
            return 400, {"errors": [{"message": e.message} for e in invalid]}
        waiting = self._waiting()
        by_cube: dict[str, dict[str, float]] = {}
        for member, value in self.values().items():
            cube, name = member.split(".", 1)
            by_cube.setdefault(cube, {})[name] = float(value)  # Cube's measures are GraphQL Float

        def cube(info: Any, **args: Any) -> list[dict[str, Any]]:
            if waiting:
                raise RuntimeError(waiting)
            return [by_cube]  # measures only: one row

        result = graphql.execute(self.schema, document, root_value={"cube": cube})
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [{"message": e.message, "locations": [{"line": 1, "column": 9}], "path": ["cube"]} for e in result.errors]
        return (500 if result.data is None else 200), payload

    def __call__(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self.requests.append(path)
        if self.delay:
            threading.Event().wait(self.delay)
        token = headers.get("Authorization", "")
        if not _jwt_ok(token, self.secret):
            return 403, {"error": "Invalid token"}
        self.tokens.add(token)
        if path == "/cubejs-api/graphql":
            return self._graphql(body)
        waiting = self._waiting()
        if waiting == "Continue wait":
            return 200, {"error": "Continue wait"}
        if waiting:
            return 400, {"error": waiting}
        q = json.loads(query["query"][0])
        rollup = bool(q.get("dimensions"))
        if path == "/cubejs-api/v1/sql":
            pre = [{"preAggregationId": "orders.orders_by_day", "tableName": "prod_pre_aggregations.orders_orders_by_day",
                    "type": "rollup", "external": True}] if rollup and self.pre_aggregation else []
            return 200, {"sql": {"sql": ["SELECT 1", []], "preAggregations": pre, "external": bool(pre), "order": {}}}
        if path == "/cubejs-api/v1/load":
            values = self.values()
            served = rollup and self.pre_aggregation
            if rollup:  # two status rows per the day grain, summing to the totals
                n, amount = values["orders.count"], values["orders.total_amount"]
                data = [
                    {"orders.status": "delivered", "orders.created_at.day": "2026-01-01T00:00:00.000",
                     "orders.count": str(n - 1), "orders.total_amount": str(amount - 10)},
                    {"orders.status": "placed", "orders.created_at.day": "2026-01-02T00:00:00.000",
                     "orders.count": "1", "orders.total_amount": "10.00"},
                ]
            else:
                data = [{m: str(values[m]) for m in q["measures"]}]
            answer = {"query": q, "lastRefreshTime": "2026-01-01T00:00:00.000Z", "annotation": {}, "data": data,
                      "dataSource": "default", "dbType": "duckdb", "extDbType": "cubestore",
                      "external": served if self.external is None else self.external, "slowQuery": False, "total": None}
            if served:  # production: publicUsedPreAggregations (preAggregationId, lastUpdatedAt, type)
                answer["usedPreAggregations"] = {"prod_pre_aggregations.orders_orders_by_day_abc_def_ghi": {
                    "preAggregationId": "orders.orders_by_day", "lastUpdatedAt": 1767225600000, "type": "rollup"}}
            return 200, answer
        return 404, {"error": f"no route {path}"}


# --- Marquez ------------------------------------------------------------------------------------


@dataclass
class FakeMarquez:
    job_namespace: str
    dataset_namespace: str
    warehouse: str
    missing_job: str | None = None
    drop_edge_to_marts: bool = False

    def __call__(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        ds, wh = self.dataset_namespace, self.warehouse
        # The staging view as demo.orchestration.dbt names it: dbt's local DuckDB database, schema, model.
        raw, stg, fct = f"{wh}.raw.orders", f"{DBT_LOCAL_DATABASE}.staging.stg_orders", f"{wh}.marts.fct_orders"
        jobs = [j for j in ("dagster.seed_raw_tables", "dagster.generate_and_build", "ingest.raw_tables",
                            "dbt.stg_orders", "dbt.fct_orders") if j != self.missing_job]
        if path == "/api/v1/namespaces":
            return 200, {"namespaces": [{"name": n, "ownerName": "anonymous"} for n in (self.job_namespace, ds, "duckdb://floe")]}
        if path == f"/api/v1/namespaces/{self.job_namespace}/jobs":
            return 200, {"jobs": [{"name": j, "namespace": self.job_namespace} for j in jobs], "totalCount": len(jobs)}
        if path == f"/api/v1/namespaces/{ds}/datasets":
            names = [raw, f"{wh}.raw.order_lines", fct]
            return 200, {"datasets": [{"name": n, "namespace": ds} for n in names], "totalCount": len(names)}
        if path == "/api/v1/namespaces/duckdb://floe/datasets":
            return 200, {"datasets": [{"name": stg, "namespace": "duckdb://floe"}], "totalCount": 1}
        if path == "/api/v1/lineage":
            node_ids = [f"dataset:{ds}:{raw}", f"job:{self.job_namespace}:dbt.stg_orders", f"dataset:duckdb://floe:{stg}",
                        f"job:{self.job_namespace}:dbt.fct_orders", f"dataset:{ds}:{fct}"]
            edges = list(zip(node_ids, node_ids[1:], strict=False))
            if self.drop_edge_to_marts:
                edges = edges[:-1]
            graph = [{"id": n, "type": "DATASET" if n.startswith("dataset:") else "JOB", "data": {},
                      "inEdges": [{"origin": a, "destination": b} for a, b in edges if b == n],
                      "outEdges": [{"origin": a, "destination": b} for a, b in edges if a == n]} for n in node_ids]
            assert query["nodeId"] == [node_ids[0]], query
            return 200, {"graph": graph}
        return 404, {"code": 404, "message": f"HTTP 404 Not Found: {path}"}


# --- Jaeger -------------------------------------------------------------------------------------


@dataclass
class FakeJaeger:
    service: str
    run_id: str = "0f1e2d3c-0000-4000-8000-000000000000"
    traces: bool = True
    dbt_spans: bool = True
    #: Cube's side: the ``traceparent`` headers Cube received (see :func:`traced`), exported as the
    #: spans the OpenTelemetry SDK in Cube writes (an http server span + an express handler span).
    cube_service: str = "floe-cube"
    received: list[str] = field(default_factory=list)
    cube_spans: bool = True  # False: Cube sends nothing
    cube_continues: bool = True  # False: Cube's server span has another parent than the caller's span

    def cube_trace(self, trace_id: str) -> dict[str, Any] | None:
        parents = [h.split("-")[2] for h in self.received if h and h.split("-")[1] == trace_id]
        if not self.cube_spans or not parents:
            return None
        parent = parents[0] if self.cube_continues else "00f067aa0ba902b7"
        server, handler = "53995c3f42cd8ad8", "5fb397be34d26b51"

        def span(span_id: str, name: str, parent_id: str, kind: str) -> dict[str, Any]:
            return {"traceID": trace_id, "spanID": span_id, "operationName": name, "flags": 1,
                    "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent_id}],
                    "startTime": 1_800_000_000_000_000, "duration": 2500, "processID": "p1", "logs": [], "warnings": None,
                    "tags": [{"key": "span.kind", "type": "string", "value": kind},
                             {"key": "otel.scope.name", "type": "string", "value": "@opentelemetry/instrumentation-http"}]}

        spans = [span(server, "GET /cubejs-api/v1/load", parent, "server"),
                 span(handler, "request handler - /cubejs-api/v1/load", server, "internal")]
        return {"traceID": trace_id, "spans": spans, "warnings": [f"invalid parent span IDs={parent}; skipping clock skew adjustment"],
                "processes": {"p1": {"serviceName": self.cube_service, "tags": [{"key": "telemetry.sdk.language", "type": "string", "value": "nodejs"}]}}}

    def __call__(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        def structured(data: Any) -> dict[str, Any]:
            return {"data": data, "total": len(data), "limit": 0, "offset": 0, "errors": None}

        if path.startswith("/api/traces/"):
            trace = self.cube_trace(path.rsplit("/", 1)[1])
            if trace is None:
                return 404, {"data": None, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 404, "msg": "trace not found"}]}
            return 200, structured([trace])
        if path == "/api/services":
            return 200, structured([self.service, "jaeger"] if self.traces else ["jaeger"])
        if path == "/api/traces":
            if not self.traces or query.get("service") != [self.service]:
                return 200, structured([])
            ops = ["dagster.run generate_and_build", "dagster.step raw_tables", "iceberg.write raw", "dagster.step dbt_models"]
            if self.dbt_spans:
                ops += ["dbt build", "dbt.model fct_orders", "dbt.test not_null_fct_orders_order_id"]
            spans = [{"traceID": "a1b2c3d4e5f60718", "spanID": f"{i:016x}", "operationName": op, "references": [],
                      "startTime": 1_800_000_000_000_000 + i, "duration": 1000, "processID": "p1",
                      "tags": [{"key": "dagster.run_id", "type": "string", "value": self.run_id}] if i == 0 else []}
                     for i, op in enumerate(ops)]
            trace = {"traceID": "a1b2c3d4e5f60718", "spans": spans,
                     "processes": {"p1": {"serviceName": self.service, "tags": []}}, "warnings": None}
            return 200, structured([trace])
        return 404, structured([])


def traced(cube: Handler, jaeger: FakeJaeger) -> Handler:
    """``cube`` as the traced Cube: every ``traceparent`` it receives reaches ``jaeger``'s store."""

    def handler(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        jaeger.received.append(next((v for k, v in headers.items() if k.lower() == "traceparent"), ""))
        return cube(method, path, query, headers, body)

    return handler
