"""``status``: one screen — pods, jobs, the last verify, the last Dagster runs, row counts of the raw tables.

Each section is gathered on its own and shows why it is unavailable instead of failing the whole screen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, UTC
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from floe.deploy.kubectl import CommandError, Kubectl
from floe.deploy.readiness import age, classify_pod, parse_time

USER_CODE_DEPLOYMENT = "floe-dagster-user-code"
#: The reconcile CronJob's Jobs carry this name label (constructs/reconcile.py); its container's last
#: line is the summary ``floe-reconcile {json}`` (demo/bootstrap/reconcile.py).
RECONCILE_NAME = "floe-reconcile"
RECONCILE_CONTAINER = "reconcile"
RECONCILE_PREFIX = "floe-reconcile "
COUNTS_COMMAND = ("python", "-m", "demo.ingest", "counts", "--json")


@dataclass(frozen=True)
class Section:
    title: str
    table: Table | None = None
    unavailable: str | None = None
    line: Text | None = None


def _age(created: str | None, now: datetime) -> str:
    return age(parse_time(created), now)


def pods_table(pods: dict[str, Any], now: datetime) -> Table:
    table = Table("pod", "ready", "status", "restarts", "age", title="Pods", title_justify="left")
    for pod in sorted(pods.get("items") or [], key=lambda p: p["metadata"]["name"]):
        view = classify_pod(pod, now)
        style = "green" if view.ready or view.phase == "Succeeded" else ("red" if any(p.fatal for p in view.problems) else "yellow")
        table.add_row(view.name, view.containers_ready, Text(view.reason, style=style), str(view.restarts), _age(pod["metadata"].get("creationTimestamp"), now))
    return table


def jobs_table(jobs: dict[str, Any], now: datetime) -> Table:
    table = Table("job", "status", "duration", "age", title="Jobs", title_justify="left")
    for job in sorted(jobs.get("items") or [], key=lambda j: j["metadata"]["name"]):
        status = job.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
        if "Complete" in conditions:
            state = Text("Complete", style="green")
        elif "Failed" in conditions:
            state = Text(f"Failed ({conditions['Failed'].get('reason', '')})", style="red")
        else:
            state = Text(f"Running ({status.get('active', 0)} active, {status.get('failed', 0)} failed)", style="yellow")
        start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
        duration = f"{int((end - start).total_seconds())}s" if start and end else "-"
        table.add_row(job["metadata"]["name"], state, duration, _age(job["metadata"].get("creationTimestamp"), now))
    return table


def counts_table(counts: dict[str, int | None]) -> Table:
    table = Table("raw table", "rows", title="Raw tables", title_justify="left")
    for name, rows in sorted(counts.items()):
        table.add_row(name, "missing" if rows is None else f"{rows:,}")
    return table


def raw_counts(kubectl: Kubectl, namespace: str) -> dict[str, int | None]:
    result = kubectl.run("exec", "-n", namespace, f"deploy/{USER_CODE_DEPLOYMENT}", "--", *COUNTS_COMMAND, timeout=120)
    # The last line is the JSON object (anything before it is log output).
    return json.loads(result.stdout.strip().splitlines()[-1])


def _reconcile_summary(logs: str) -> dict[str, Any] | None:
    for line in reversed(logs.strip().splitlines()):
        if line.startswith(RECONCILE_PREFIX):
            return json.loads(line[len(RECONCILE_PREFIX):])
    return None


def reconcile_line(kubectl: Kubectl, namespace: str, jobs: dict[str, Any]) -> Text:
    """One line: did the last reconcile find lost state and rebuild it? (from its summary line)"""
    mine = [
        j for j in jobs.get("items") or []
        if (j["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == RECONCILE_NAME
    ]
    if not mine:
        return Text("State: no reconcile has run yet (CronJob floe-reconcile, every few minutes)", style="yellow")
    last = max(mine, key=lambda j: j["metadata"].get("creationTimestamp") or "")
    name = last["metadata"]["name"]
    result = kubectl.run("logs", "-n", namespace, f"job/{name}", "-c", RECONCILE_CONTAINER, "--tail=20", check=False, timeout=20)
    summary = _reconcile_summary(result.stdout) if result.returncode == 0 else None
    when = last["metadata"].get("creationTimestamp", "?")
    if summary is None:
        detail = (result.stderr or "no summary line yet").strip().splitlines()
        return Text(f"State: last reconcile {name} ({when}) has no summary: {detail[-1] if detail else ''}", style="yellow")
    if not summary.get("ok", False):
        return Text(f"State: last reconcile {name} ({when}) FAILED: {'; '.join(summary.get('errors') or [])[:300]}", style="red")
    if summary.get("state_lost"):
        changed = ", ".join(summary.get("changed") or [])
        return Text(
            f"State: LOST AND REBUILT by {name} ({when}): {summary.get('created', 0)} created, "
            f"{summary.get('dropped', 0)} orphaned tables dropped ({changed[:300]}); the seed sensor re-seeds the raw tables",
            style="yellow",
        )
    return Text(f"State: intact (last reconcile {name} at {when}: {summary.get('unchanged', 0)} items unchanged)", style="green")


def verify_line(kubectl: Kubectl, namespace: str, now: datetime) -> Text:
    """One line: when `make verify` last ran here and how it went (the ConfigMap it keeps, floe/deploy/verify.py)."""
    from floe.deploy import verify

    text, style = verify.summary_line(verify.last_record(kubectl, namespace), now)
    return Text(text, style=style)


def gather(kubectl: Kubectl, namespace: str, runs: Callable[[], Table]) -> list[Section]:
    now = datetime.now(UTC)
    sections: list[Section] = []
    try:
        sections.append(Section("pods", pods_table(kubectl.get_json("pods", "-n", namespace), now)))
        jobs = kubectl.get_json("jobs", "-n", namespace)
        sections.append(Section("jobs", jobs_table(jobs, now)))
    except CommandError as exc:
        sections.append(Section("pods", unavailable=str(exc)))
        return sections  # no cluster: the rest would fail the same way
    try:
        sections.append(Section("state", line=reconcile_line(kubectl, namespace, jobs)))
    except (CommandError, ValueError) as exc:
        sections.append(Section("State", unavailable=str(exc)))
    try:
        sections.append(Section("verify", line=verify_line(kubectl, namespace, now)))
    except (CommandError, ValueError, KeyError) as exc:
        sections.append(Section("Last verify", unavailable=str(exc)))
    try:
        sections.append(Section("runs", runs()))
    except Exception as exc:  # noqa: BLE001 — any failure here is shown, not raised
        sections.append(Section("Dagster runs", unavailable=str(exc)))
    try:
        sections.append(Section("counts", counts_table(raw_counts(kubectl, namespace))))
    except (CommandError, ValueError, IndexError) as exc:
        sections.append(Section("Raw tables", unavailable=str(exc)))
    return sections


def render(sections: list[Section]) -> Group:
    parts: list[Any] = []
    for section in sections:
        if section.table is not None:
            parts.append(section.table)
        elif section.line is not None:
            parts.append(section.line)
        else:
            parts.append(Text(f"{section.title}: unavailable — {section.unavailable}", style="yellow"))
    return Group(*parts)
