"""``status``: one screen — pods, jobs, the last Dagster runs, row counts of the raw tables.

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
from floe.deploy.readiness import classify_pod, parse_time

USER_CODE_DEPLOYMENT = "floe-dagster-user-code"
COUNTS_COMMAND = ("python", "-m", "demo.ingest", "counts", "--json")


@dataclass(frozen=True)
class Section:
    title: str
    table: Table | None = None
    unavailable: str | None = None


def _age(created: str | None, now: datetime) -> str:
    when = parse_time(created)
    if when is None:
        return "?"
    seconds = int((now - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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


def gather(kubectl: Kubectl, namespace: str, runs: Callable[[], Table]) -> list[Section]:
    now = datetime.now(UTC)
    sections: list[Section] = []
    try:
        sections.append(Section("pods", pods_table(kubectl.get_json("pods", "-n", namespace), now)))
        sections.append(Section("jobs", jobs_table(kubectl.get_json("jobs", "-n", namespace), now)))
    except CommandError as exc:
        sections.append(Section("pods", unavailable=str(exc)))
        return sections  # no cluster: the rest would fail the same way
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
        else:
            parts.append(Text(f"{section.title}: unavailable — {section.unavailable}", style="yellow"))
    return Group(*parts)
