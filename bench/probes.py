"""What each exec probe of dist/ costs: `python -m bench.probes [--runs N]`.

An exec probe runs inside its container, under the container's CPU limit, next to the process it
checks. For every exec probe in a freshly synthesized stack this runs the probe's exact command with
its container's env (Secrets resolved, the image's ENV, mounted files; tests/support/pods.py, as the
contract tests run the Dagster pods) against a real PostgreSQL initialised by our own init script,
with the real `dagster-daemon run` heartbeating into it, and measures the CPU time (user + sys of
the command and its children, from wait4's rusage) of each call. It prints per probe: CPU-seconds
per call, the period, cost / period against the container's CPU limit, and the cost recorded in
floe/probe_costs.py (which the "probe-cost" manifest check uses). The replaced
`dagster-daemon liveness-check` is measured too, for comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from floe.manifest_checks import PROBE_DEFAULTS, Manifests
from floe.probe_costs import MAX_CPU_SHARE, recorded_cost
from floe.quantities import cpu_millicores
from demo.processes import stop_process_group

console = Console(width=180)
REPLACED_DAEMON_PROBE = ["dagster-daemon", "liveness-check"]


@dataclass
class ExecProbe:
    owner: dict
    container: str
    kind: str
    command: list[str]
    period: int
    cpu_limit: float


def exec_probes(documents: list[dict]) -> list[ExecProbe]:
    found = []
    for pod in Manifests(documents, "").pods:
        for _, c in pod.containers(init=False):
            res = c.get("resources") or {}
            cpu = (res.get("limits") or {}).get("cpu") or (res.get("requests") or {}).get("cpu") or "0"
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = c.get(kind) or {}
                if "exec" in probe:
                    period = {**PROBE_DEFAULTS, **probe}["periodSeconds"]
                    found.append(ExecProbe(pod.owner, c["name"], kind, probe["exec"]["command"], period, cpu_millicores(cpu) / 1000))
    return found


def cpu_seconds(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> tuple[float, int]:
    """CPU-seconds (user + sys, children included) and exit code of one call."""
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime, process.returncode
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"{argv} still running after {timeout}s")
        time.sleep(0.02)


def wait_until(predicate, what: str, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise TimeoutError(f"{what} not reached after {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="calls per probe")
    args = parser.parse_args()

    from tests.infra.conftest import synth
    from tests.support.manifests import find, resolve_env, container
    from tests.support.pods import _rewrite, dockerfile_env, materialize, pg_env
    from tests.support.postgres import postgres_server

    base = Path(tempfile.mkdtemp(prefix="floe-bench-probes-"))
    daemon_process = None
    try:
        docs = synth(base / "synth").documents
        probes = exec_probes(docs)
        with postgres_server(database="bootstrap") as pg:
            # PostgreSQL as the pod makes it: our init script creates the application roles and databases.
            script = find(docs, "ConfigMap", "floe-postgres-init")["data"]["10-floe-databases.sh"]
            pg_container_env = resolve_env(container(docs, "Deployment", "floe-postgres"), docs)
            init_env = {
                **pg_env(pg), **{k: v for k, v in pg_container_env.items() if k.startswith("FLOE_DB_")},
                "POSTGRES_USER": pg.user, "POSTGRES_DB": pg_container_env["POSTGRES_DB"],
            }
            subprocess.run(["bash", "-c", script], env=init_env, check=True, capture_output=True, timeout=60)
            rewrites = {"floe-postgres": pg.host, "5432": str(pg.port), "0.0.0.0": "127.0.0.1"}
            image_env = dockerfile_env()
            pods = {}
            for probe in probes:
                key = (probe.owner["kind"], probe.owner["metadata"]["name"], probe.container)
                if key not in pods:
                    pods[key] = materialize(docs, *key, root=base / "pods" / key[1], rewrites=rewrites, image_env=image_env)
            # The daemon heartbeats into PostgreSQL while its probe is measured (a probe on an empty
            # table would read nothing). It migrates the schema on start.
            daemon = pods.get(("Deployment", "floe-dagster-daemon", "daemon"))
            if daemon is not None:
                log = (base / "daemon.log").open("wb")
                daemon_process = subprocess.Popen(daemon.argv, env=daemon.env, cwd=daemon.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                liveness = next(p for p in probes if p.owner["metadata"]["name"] == "floe-dagster-daemon" and p.kind == "livenessProbe")
                command = [_rewrite(a, rewrites, {}) for a in liveness.command]
                wait_until(lambda: cpu_seconds(command, daemon.env, daemon.cwd)[1] == 0, "daemon heartbeats")
                probes.append(ExecProbe(liveness.owner, "daemon", "(replaced)", REPLACED_DAEMON_PROBE, 8, liveness.cpu_limit))

            table = Table(title=f"exec probes: CPU per call ({args.runs} runs) vs the container's CPU")
            for column in ("workload/container", "probe", "command", "CPU-s/call (median, max)", "recorded", "period", "cost/period", "of CPU limit"):
                table.add_column(column, justify="left" if column in ("workload/container", "probe", "command") else "right")
            for probe in probes:
                pod = pods[(probe.owner["kind"], probe.owner["metadata"]["name"], probe.container)]
                command = [_rewrite(a, rewrites, {}) for a in probe.command]
                samples, codes = [], set()
                for _ in range(args.runs):
                    seconds, code = cpu_seconds(command, pod.env, pod.cwd)
                    samples.append(seconds)
                    codes.add(code)
                worst = max(samples)
                recorded = recorded_cost(probe.command)
                per_second = worst / probe.period
                share = per_second / probe.cpu_limit if probe.cpu_limit else float("inf")
                flag = "" if share <= MAX_CPU_SHARE else " [red](over budget)[/]"
                table.add_row(
                    f"{probe.owner['metadata']['name']}/{probe.container}",
                    probe.kind.removesuffix("Probe") + ("" if codes == {0} else f" (exit {sorted(codes)})"),
                    " ".join(probe.command[:3]) + (" ..." if len(probe.command) > 3 else ""),
                    f"{statistics.median(samples):.3f}, {worst:.3f}",
                    f"{recorded.cpu_seconds:g}" if recorded else "[red]none[/]",
                    f"{probe.period}s",
                    f"{per_second * 1000:.0f}m",
                    f"{share:.1%} of {probe.cpu_limit * 1000:.0f}m{flag}",
                )
            console.print(table)
            console.print(
                f"budget: exec probes may use {MAX_CPU_SHARE:.0%} of the container's CPU limit (floe/probe_costs.py); "
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
            )
    finally:
        if daemon_process is not None:
            stop_process_group(daemon_process)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
