"""The dagster-daemon liveness probe: the daemon's own heartbeats, read from PostgreSQL, cheaply.

    python -m demo.orchestration.daemon_liveness --tolerance 90 SENSOR BACKFILL ...

Why not ``dagster-daemon liveness-check``: it imports all of Dagster and opens the instance (run,
event-log and schedule storage) to read one table, 2.6-3.9 CPU-seconds per call (``make bench``,
bench/probes.py). Under the daemon's CPU limit that is a probe which times out and restarts a
healthy pod. This reads the same rows with psycopg2 alone (about 0.1 CPU-seconds) and applies the
same rule:

* the rows: run storage's ``daemon_heartbeats`` table, ``body`` = the serialized ``DaemonHeartbeat``
  (dagster 1.13.27 ``dagster/_core/storage/runs/schema.py`` ``DaemonHeartbeatsTable`` and
  ``SqlRunStorage.get_daemon_heartbeats``);
* the rule: ``dagster/_daemon/controller.py`` ``all_daemons_live`` -> ``get_daemon_statuses(...,
  ignore_errors=True)``: every required daemon type has a heartbeat with
  ``now <= timestamp + heartbeat_interval (30 s) + tolerance``; errors in a heartbeat do not count.

The startup probe adds ``--since-start-of-pid 1``: only heartbeats posted after this container's
main process started count. Without it, after a Recreate the heartbeats of the previous pod (under
120 s old) passed the startup probe at once, liveness took over, and a new daemon slower than ~105 s
to post its own was killed, and could loop. PID 1 of the container is ``dagster-daemon run`` (exec
form, no shared process namespace); its start is read from ``/proc`` (``starttime`` of
``/proc/1/stat`` after the boot time ``btime`` of ``/proc/stat``), on the node's clock, which the
daemon's heartbeat timestamps use too.

``tests/contract/test_dagster_pods.py`` runs this probe against the real daemon and checks, on
fresh and stale heartbeats written by Dagster's own API, that its verdict equals Dagster's, and
that the required types named by the construct are those the rendered dagster.yaml requires.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

#: The variables our dagster.yaml reads (``{env: ...}``) for its PostgreSQL connection; the probe
#: connects with the same ones. The constructs import this to set them.
PG_ENV = {
    "host": "FLOE_DAGSTER_PG_HOST",
    "port": "FLOE_DAGSTER_PG_PORT",
    "db": "FLOE_DAGSTER_PG_DB",
    "user": "FLOE_DAGSTER_PG_USERNAME",
    "password": "FLOE_DAGSTER_PG_PASSWORD",
}
#: dagster._daemon.controller.DEFAULT_HEARTBEAT_INTERVAL_SECONDS: how often each daemon posts one.
HEARTBEAT_INTERVAL_SECONDS = 30
#: How long the probe waits for PostgreSQL (the probe's own timeoutSeconds must be longer).
CONNECT_TIMEOUT_SECONDS = 3


def stale_daemons(
    heartbeats: dict[str, float], required: list[str], *, tolerance: float, now: float | None = None
) -> list[str]:
    """The required daemon types without a live heartbeat (``heartbeats``: type -> timestamp)."""
    now = time.time() if now is None else now
    return [
        daemon
        for daemon in required
        if daemon not in heartbeats or now > heartbeats[daemon] + HEARTBEAT_INTERVAL_SECONDS + tolerance
    ]


def process_start_time(pid: int = 1) -> float:
    """When process ``pid`` started (epoch seconds, to the kernel's clock tick), from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        # Field 22 is starttime (ticks since boot); fields after the ")" of comm start at field 3.
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = int(fields[19])
    with open("/proc/stat") as handle:
        boot = next(float(line.split()[1]) for line in handle if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def read_heartbeats() -> dict[str, float]:
    import psycopg2

    connection = psycopg2.connect(
        host=os.environ[PG_ENV["host"]],
        port=os.environ[PG_ENV["port"]],
        dbname=os.environ[PG_ENV["db"]],
        user=os.environ[PG_ENV["user"]],
        password=os.environ[PG_ENV["password"]],
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name="dagster-daemon-liveness",
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT body FROM daemon_heartbeats")
            bodies = [json.loads(row[0]) for row in cursor.fetchall()]
    finally:
        connection.close()
    return {body["daemon_type"]: float(body["timestamp"]) for body in bodies}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tolerance", type=float, required=True, help="seconds beyond the 30 s heartbeat interval")
    parser.add_argument("--since-start-of-pid", type=int, default=None, metavar="PID",
                        help="count only heartbeats posted after this process started (the startup probe: PID 1)")
    parser.add_argument("required", nargs="+", help="daemon types that must be live (DagsterInstance.get_required_daemon_types)")
    args = parser.parse_args(argv)
    try:
        heartbeats = read_heartbeats()
        if args.since_start_of_pid is not None:
            started = process_start_time(args.since_start_of_pid)
            older = sorted(d for d, t in heartbeats.items() if t < started and d in args.required)
            heartbeats = {d: t for d, t in heartbeats.items() if t >= started}
        stale = stale_daemons(heartbeats, args.required, tolerance=args.tolerance)
    except Exception as exc:  # no database, no table yet: not live
        print(f"cannot read daemon heartbeats: {type(exc).__name__}: {exc}".strip(), file=sys.stderr)
        return 1
    if stale:
        since = f" since this container started ({', '.join(older)} only from before)" if args.since_start_of_pid is not None and older else ""
        print(f"no heartbeat within {HEARTBEAT_INTERVAL_SECONDS + args.tolerance:g}s{since}: {', '.join(stale)}", file=sys.stderr)
        return 1
    print("daemon live")
    return 0


if __name__ == "__main__":
    sys.exit(main())
