"""What the stack costs when nothing happens: `python -m bench.idle [--runs N]`.

An idle stack still spends CPU on schedule: exec probes (inside their containers, under their CPU
limits), the reconcile CronJob (every ``reconcile.schedule``) and, once per deploy, the bootstrap
Jobs. This prints CPU-seconds per hour for every one of them, from measured costs, and names the
largest:

- exec probes: the per-call cost recorded in floe/probe_costs.py (measured by bench/probes.py, which
  runs each probe's exact command against real PostgreSQL and the real daemon) x calls per hour;
- the reconcile: its containers from dist/ run here on intact state (real PostgreSQL initialised by
  dist/'s init script, SeaweedFS for S3, tests/bootstrap/fake_polaris.py for Polaris, as
  tests/recovery does), CPU = user + sys of the processes (rusage), median of ``--runs``; x runs per
  hour from the schedule. The admin tool's JVM runs only when check-realm finds the realm lost: its
  cost is listed apart, as an estimate (no JVM runs here);
- HTTP and TCP probes run in the kubelet, not the container: counted (calls per hour), not costed.

The machine is shared and noisy: read ratios, not absolute figures.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.probes import exec_probes
from floe.manifest_checks import PROBE_DEFAULTS, Manifests
from floe.probe_costs import recorded_cost

console = Console(width=180)
#: Not measurable here (no JVM image): the previous closing note's figure for one admin-tool run.
ADMIN_TOOL_ESTIMATE_CPU_SECONDS = 4.0


@dataclass
class Item:
    kind: str
    name: str
    per_call: float | None  # CPU-seconds, None = not in a container's quota
    per_hour_calls: float
    source: str

    @property
    def per_hour(self) -> float:
        return (self.per_call or 0.0) * self.per_hour_calls


def runs_per_hour(schedule: str) -> float:
    """Runs per hour of a cron schedule's minute field (``*/N``, ``N``, ``a,b``); hours field ``*``."""
    minute, hour, *_ = schedule.split()
    if hour != "*":
        raise ValueError(f"schedule {schedule!r}: only hourly-repeating schedules are costed")
    if minute.startswith("*/"):
        return 60 / int(minute[2:])
    if minute == "*":
        return 60.0
    return float(len(minute.split(",")))


def probe_items(documents: list[dict]) -> list[Item]:
    items = []
    for probe in exec_probes(documents):
        cost = recorded_cost(probe.command)
        name = f"{probe.owner['metadata']['name']}/{probe.container} {probe.kind}"
        # A startup probe stops once the container has started: nothing per hour when idle.
        calls = 0.0 if probe.kind == "startupProbe" else 3600 / probe.period
        source = cost.source if cost else "never measured"
        items.append(Item("exec probe", name, cost.cpu_seconds if cost else None, calls,
                          f"start-up only; {source}" if probe.kind == "startupProbe" else source))
    for pod in Manifests(documents, "").pods:
        if not pod.long_running:
            continue
        for _, c in pod.containers(init=False):
            for kind in ("readinessProbe", "livenessProbe"):
                probe = c.get(kind) or {}
                if "exec" not in probe and probe:
                    period = {**PROBE_DEFAULTS, **probe}["periodSeconds"]
                    items.append(Item("kubelet probe", f"{pod.owner['metadata']['name']}/{c['name']} {kind}", None, 3600 / period,
                                      "httpGet/tcpSocket: run by the kubelet, outside the container's quota"))
    return items


def cpu_of(run) -> float:  # noqa: ANN001 - a zero-argument callable
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def reconcile_items(stack, runs: int, base: Path) -> list[Item]:  # noqa: ANN001 - a SynthResult
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bootstrap"))
    from fake_polaris import FakePolaris

    from demo.lakehouse.local import local_lakehouse
    from tests.recovery.test_recovery import CRON, init_databases, realm_credentials, run_realm_check, run_reconcile
    from tests.support.postgres import postgres_server

    cron = next(d for d in stack.documents if d["kind"] == "CronJob" and d["metadata"]["name"] == CRON)
    per_hour = runs_per_hour(cron["spec"]["schedule"])
    realm, root_id, root_secret = realm_credentials(stack)
    with postgres_server(database="bootstrap") as pg, local_lakehouse(base / "weed") as lake:
        init_databases(stack, pg)
        fake = FakePolaris(realm=realm, root_client_id=root_id, root_client_secret=root_secret).start()
        try:
            parts = (pg, lake, fake)
            run_reconcile(stack, parts, base / "warm")  # first run creates everything: the stack is then intact
            checks, steps = [], []
            for i in range(runs):
                checks.append(cpu_of(lambda i=i: run_realm_check(stack, parts, base / f"check{i}")))
                steps.append(cpu_of(lambda i=i: run_reconcile(stack, parts, base / f"run{i}")))
        finally:
            fake.stop()
    return [
        Item("CronJob", f"{CRON} check-realm (init)", statistics.median(checks), per_hour,
             f"measured, median of {runs}: {', '.join(f'{c:.2f}' for c in checks)} CPU-s; one token request, no JVM"),
        Item("CronJob", f"{CRON} reconcile (intact state)", statistics.median(steps), per_hour,
             f"measured, median of {runs}: {', '.join(f'{c:.2f}' for c in steps)} CPU-s; buckets, Polaris, tables, Dagster storage checked"),
        Item("CronJob", f"{CRON} bootstrap-realm (intact: skipped)", 0.0, per_hour,
             f"bash test only; the JVM (~{ADMIN_TOOL_ESTIMATE_CPU_SECONDS:g} CPU-s, estimate) runs only after a state loss"),
    ]


def job_items(documents: list[dict]) -> list[Item]:
    items = []
    for doc in documents:
        if doc["kind"] == "Job" and doc["metadata"]["labels"].get("app.kubernetes.io/component") == "bootstrap":
            items.append(Item("Job", doc["metadata"]["labels"]["app.kubernetes.io/name"], None, 0.0,
                              "once per deploy (content-named; a re-apply within the 1-day TTL changes nothing): 0 per hour when idle"))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from tests.infra.conftest import synth

    with tempfile.TemporaryDirectory(prefix="floe-bench-idle-") as tmp:
        base = Path(tmp)
        stack = synth(base / "synth")
        items = [*probe_items(stack.documents), *reconcile_items(stack, args.runs, base), *job_items(stack.documents)]
    items.sort(key=lambda i: (-i.per_hour, i.kind, i.name))
    table = Table("kind", "item", "CPU-s / call", "calls / h", "CPU-s / h", "source", title="Idle cost of the stack (CPU-seconds per hour)", title_justify="left")
    for item in items:
        table.add_row(item.kind, item.name, "-" if item.per_call is None else f"{item.per_call:.3f}", f"{item.per_hour_calls:.0f}",
                      f"{item.per_hour:.1f}", item.source)
    console.print(table)
    total = sum(i.per_hour for i in items)
    largest = [i for i in items if i.per_hour > 0][:3]
    console.print(f"total: {total:.1f} CPU-s per hour ({total / 36:.2f} % of one core) in container quotas; largest: "
                  + "; ".join(f"{i.name} {i.per_hour:.1f} ({100 * i.per_hour / total:.0f} %)" for i in largest))
    console.print(f"a state loss adds one admin-tool JVM run (~{ADMIN_TOOL_ESTIMATE_CPU_SECONDS:g} CPU-s, estimate), before this change paid on every run: "
                  f"~{ADMIN_TOOL_ESTIMATE_CPU_SECONDS * runs_per_hour(next(d for d in stack.documents if d['kind'] == 'CronJob')['spec']['schedule']):.0f} CPU-s per hour")


if __name__ == "__main__":
    main()
