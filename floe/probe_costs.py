"""What each exec probe in dist/ costs per call, measured, and how much of a container's CPU its
probes may take.

A probe's command runs inside the container, under the container's CPU limit, next to the
process it checks. ``dagster-daemon liveness-check`` taught us the price of not knowing: 2.6-3.9
CPU-seconds per call, every 8 s, under a 500m limit shared with the daemon; throttled, it timed out
and the kubelet restarted a healthy daemon (issue 8). The "probe-cost" manifest check
(floe/manifest_checks.py) uses these figures; ``make bench`` (bench/probes.py) measures them again:
it runs each exec probe of dist/ with its container's env against real PostgreSQL (and the real
daemon) and prints CPU-seconds per call next to the figure recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeCost:
    #: The start of the probe's exec command that identifies it (its arguments vary by config).
    command: tuple[str, ...]
    #: CPU-seconds (user + sys, the command and its children) per call: the highest of the bench's runs.
    cpu_seconds: float
    #: Where the figure comes from.
    source: str


#: Recorded from ``python -m bench.probes`` (5 runs each, the highest rounded up; 2-core machine,
#: load average 4, the real daemon heartbeating); re-run it when a probe command or the image changes.
PROBE_COSTS: tuple[ProbeCost, ...] = (
    ProbeCost(("pg_isready",), 0.03, "bench/probes.py: 0.022-0.024 CPU-s (client only, against PostgreSQL)"),
    ProbeCost(
        ("python", "-m", "demo.orchestration.daemon_liveness"),
        0.08,
        "bench/probes.py: 0.053-0.063 CPU-s (interpreter + psycopg2 + one SELECT on daemon_heartbeats)",
    ),
    # No longer used; kept so the check recognises (and rejects) it if it comes back.
    ProbeCost(
        ("dagster-daemon", "liveness-check"),
        3.9,
        "issue 8: 2.6-3.9 CPU-s; bench/probes.py: 3.06-3.35 CPU-s (imports Dagster, opens the instance)",
    ),
)

#: Steady state (readiness + liveness), and start-up, each: probes may use at most this share of the
#: container's CPU limit on average (cost / period), leaving the rest to the process itself.
MAX_CPU_SHARE = 0.10
#: A probe's timeout must cover this many times its CPU time at the full CPU limit (the process it
#: checks competes for the same quota, so a probe never gets all of it).
TIMEOUT_HEADROOM = 2.0


def recorded_cost(command: list[str]) -> ProbeCost | None:
    """The recorded cost of the longest recorded prefix of ``command`` (None: never measured)."""
    matches = [c for c in PROBE_COSTS if tuple(command[: len(c.command)]) == c.command]
    return max(matches, key=lambda c: len(c.command), default=None)
