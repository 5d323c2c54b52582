"""The PostgreSQL connection budget: every client's pool at the configured replicas must fit the
server's ``max_connections`` with headroom (``postgres.max_connections``, issue 18 item 6).

Each client and how many connections it may hold at once:

- Polaris: an Agroal pool per replica (``polaris.db_pool_size`` -> QUARKUS_DATASOURCE_JDBC_MAX_SIZE).
- Marquez: a Dropwizard pool per replica (``marquez.db_pool_size`` -> db.maxSize).
- Dagster webserver: dagster-webserver's optimize_for_webserver gives each of its three storages
  (runs, event log, schedules) a SQLAlchemy pool of 1 + ``dagster.webserver_db_pool_max_overflow``.
- Every other Dagster process uses NullPool (dagster-postgres: a connection per operation, closed
  after it): bounded by its threads that touch storage. The daemon: one per daemon thread it runs
  (:func:`dagster_daemon_threads`) plus the liveness probe's; the code server: a few for sensor and
  schedule evaluation; a run: the run worker and its step processes (an estimate, below).
- The reconcile CronJob (one Dagster instance, one bootstrap step at a time) and the backup's
  pg_dump (one connection).
- A rolling update of a replicated Deployment (maxSurge 1) runs one extra pod: the largest pool of
  those, once (one Deployment rolls at a time under kubectl apply's order; a conservative bound).
- PostgreSQL keeps ``superuser_reserved_connections`` (3) for superusers.

The constants marked "estimate" are not pools but the most a NullPool process opens at once; they
are deliberately generous. docs/production.md shows the table for the cluster profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floe.config import StackConfig

#: PostgreSQL's default superuser_reserved_connections (postgresql.conf).
SUPERUSER_RESERVED = 3
#: dagster-webserver's storages, each with its own pool (run, event log, schedule).
WEBSERVER_STORAGES = 3
#: estimate: the code server's concurrent storage use (sensor/schedule evaluations, gRPC threads).
CODE_SERVER_CONNECTIONS = 2
#: estimate: one run: the run worker plus up to 3 step processes at once (multiprocess executor).
RUN_CONNECTIONS = 4
#: estimate: the reconcile step's Dagster instance and its psycopg2 checks.
RECONCILE_CONNECTIONS = 2
#: The daemons every floe instance runs (constructs/dagster.py REQUIRED_DAEMONS).
BASE_DAEMONS = 6


@dataclass(frozen=True)
class Client:
    name: str
    per_pod: int
    pods: int
    field: str

    @property
    def total(self) -> int:
        return self.per_pod * self.pods


def dagster_daemon_threads(config: StackConfig) -> int:
    d = config.dagster
    return BASE_DAEMONS + int(d.run_monitoring.enabled) + int(d.run_retries.max_retries > 0)


def clients(config: StackConfig) -> list[Client]:
    """Every PostgreSQL client of the stack and its most connections at once."""
    d = config.dagster
    runs = d.max_concurrent_runs
    found = [
        Client("polaris", config.polaris.db_pool_size, config.polaris.replicas, "polaris.db_pool_size x polaris.replicas"),
        Client(
            "dagster-webserver", WEBSERVER_STORAGES * (1 + d.webserver_db_pool_max_overflow), d.webserver_replicas,
            "3 x (1 + dagster.webserver_db_pool_max_overflow) x dagster.webserver_replicas",
        ),
        Client("dagster-daemon", dagster_daemon_threads(config) + 1, 1, "its daemon threads + the liveness probe"),
    ]
    if d.run_launcher == "k8s":
        found += [
            Client("dagster-user-code", CODE_SERVER_CONNECTIONS, 1, "estimate"),
            Client("dagster-run", RUN_CONNECTIONS, runs, "estimate x dagster.max_concurrent_runs"),
        ]
    else:  # runs execute in the code server's pod
        found.append(Client("dagster-user-code", CODE_SERVER_CONNECTIONS + RUN_CONNECTIONS * runs, 1, "estimate, runs included"))
    if config.marquez.enabled:
        found.append(Client("marquez", config.marquez.db_pool_size, config.marquez.replicas, "marquez.db_pool_size x marquez.replicas"))
    if config.reconcile.enabled:
        found.append(Client("reconcile", RECONCILE_CONNECTIONS, 1, "estimate"))
    if config.postgres.backup is not None:
        found.append(Client("postgres-backup", 1, 1, "pg_dump"))
    surging = [c for c in found if c.pods > 1 and c.name in ("polaris", "dagster-webserver", "marquez")]
    if surging:
        largest = max(surging, key=lambda c: c.per_pod)
        found.append(Client(f"rolling update ({largest.name})", largest.per_pod, 1, "maxSurge 1"))
    return found


def limit(config: StackConfig) -> int:
    """What the pools may use: max_connections less the reserved and the headroom."""
    pg = config.postgres
    return pg.max_connections - SUPERUSER_RESERVED - pg.connection_headroom


def table(config: StackConfig) -> str:
    rows = [f"  {c.name}: {c.per_pod} x {c.pods} = {c.total} ({c.field})" for c in clients(config)]
    return "\n".join(rows)


def budget_problem(config: StackConfig) -> str | None:
    """None when the pools fit, else a message naming the fields to change."""
    total = sum(c.total for c in clients(config))
    if total <= limit(config):
        return None
    pg = config.postgres
    return (
        f"postgres.max_connections: the PostgreSQL clients may open {total} connections at the configured "
        f"replicas, more than max_connections {pg.max_connections} less {SUPERUSER_RESERVED} reserved for "
        f"superusers and connection_headroom {pg.connection_headroom} ({limit(config)}). Lower a pool "
        f"(polaris.db_pool_size, marquez.db_pool_size, dagster.webserver_db_pool_max_overflow) or replicas, "
        f"or raise postgres.max_connections:\n{table(config)}"
    )


# --- the "connection-pools" manifest check: the same budget, read off the objects ---------------

MAX_CONNECTIONS_ARG = "max_connections="


def _literal_env(container: dict) -> dict[str, str]:
    return {v["name"]: str(v["value"]) for v in container.get("env") or [] if "value" in v}


def pools_in_objects(documents: list[dict]) -> tuple[list[tuple[str, int | None, int]], int | None]:
    """([(object, per-pod pool or None when unbounded, pods)], the in-cluster server's
    max_connections or None) for the pooled clients of ``documents``: Polaris (an Agroal datasource:
    QUARKUS_DATASOURCE_JDBC_URL), Marquez (a Dropwizard config's db block), dagster-webserver."""
    import yaml

    from floe import fast_yaml
    from floe.manifest_checks import pod_template, ref

    config_maps = {d["metadata"]["name"]: d for d in documents if d.get("kind") == "ConfigMap"}
    pools: list[tuple[str, int | None, int]] = []
    server_max = None
    for doc in documents:
        if doc.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        spec = pod_template(doc)["spec"]
        replicas = int(doc["spec"].get("replicas", 1))
        mounted = {v["configMap"]["name"] for v in spec.get("volumes") or [] if "configMap" in v}
        for c in spec.get("containers") or []:
            env = _literal_env(c)
            argv = [*(c.get("command") or []), *(c.get("args") or [])]
            if argv[:1] == ["postgres"] and any(a.startswith(MAX_CONNECTIONS_ARG) for a in argv):
                server_max = int(next(a for a in argv if a.startswith(MAX_CONNECTIONS_ARG))[len(MAX_CONNECTIONS_ARG) :])
            if "QUARKUS_DATASOURCE_JDBC_URL" in env:
                size = env.get("QUARKUS_DATASOURCE_JDBC_MAX_SIZE")
                pools.append((f"{ref(doc)}/{c['name']} QUARKUS_DATASOURCE_JDBC_MAX_SIZE", int(size) if size else None, replicas))
            if argv[:1] == ["dagster-webserver"]:
                overflow = argv[argv.index("--db-pool-max-overflow") + 1] if "--db-pool-max-overflow" in argv else None
                per_pod = WEBSERVER_STORAGES * (1 + int(overflow)) if overflow is not None else None
                pools.append((f"{ref(doc)}/{c['name']} --db-pool-max-overflow", per_pod, replicas))
        for name in sorted(mounted):
            for text in (config_maps.get(name, {}).get("data") or {}).values():
                try:
                    parsed = yaml.load(text, Loader=fast_yaml.LOADER)
                except yaml.YAMLError:
                    continue
                db = parsed.get("db") if isinstance(parsed, dict) else None
                if isinstance(db, dict) and str(db.get("url", "")).startswith("jdbc:postgresql:"):
                    size = db.get("maxSize")
                    pools.append((f"{ref(doc)} ConfigMap/{name} db.maxSize", int(size) if size is not None else None, replicas))
    return pools, server_max


def objects_problems(documents: list[dict]) -> list[tuple[str, str]]:
    """(object, problem): a pooled client without an explicit bound, or pools that together exceed
    the in-cluster server's max_connections less the superuser reserve."""
    pools, server_max = pools_in_objects(documents)
    problems = [(where.split(" ")[0], f"{where.split(' ', 1)[1]} is not set: the client's default pool is not sized to the server")
                for where, size, _ in pools if size is None]
    if server_max is not None and not problems:
        total = sum(size * pods for _, size, pods in pools if size is not None)
        if total > server_max - SUPERUSER_RESERVED:
            rows = ", ".join(f"{where} {size} x {pods}" for where, size, pods in pools)
            problems.append(("postgres", f"pooled clients may hold {total} connections, more than max_connections {server_max} less {SUPERUSER_RESERVED} reserved: {rows}"))
    return problems
