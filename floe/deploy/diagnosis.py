"""The failure report: each failing pod/job, its reason, recent events, last log lines and a hint.

:func:`build_report` gathers (events and logs through kubectl), :func:`render_report` is pure text, so
the report's content is tested on recorded cluster states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from floe.deploy.readiness import Evaluation, Failure, Problem, WorkloadView, parse_time
from floe.deploy.manifests import describe_cpu
from floe.quantities import format_memory

MAX_EVENTS = 6
LOG_TAIL = 20


@dataclass(frozen=True)
class EventLine:
    when: str
    type: str
    reason: str
    object: str
    message: str
    count: int


@dataclass(frozen=True)
class ReportItem:
    workload: WorkloadView
    events: tuple[EventLine, ...]
    logs: tuple[tuple[str, str], ...]  # (pod/container [previous], text)


@dataclass(frozen=True)
class CapacityNote:
    """The stack's requests vs the node's allocatable, for 'pending on resources'."""

    requested_cpu_m: int
    requested_memory: int
    allocatable_cpu_m: int | None = None
    allocatable_memory: int | None = None


@dataclass(frozen=True)
class Report:
    outcome: str  # "failed" | "timed out"
    phase: str
    elapsed_seconds: float
    items: tuple[ReportItem, ...]
    capacity: CapacityNote | None = None
    extra_hints: tuple[str, ...] = field(default=())

    @property
    def failures(self) -> list[Failure]:
        return list(dict.fromkeys(p.failure for item in self.items for p in item.workload.all_problems))


def _event_time(event: Mapping[str, Any]) -> str:
    series = event.get("series") or {}
    # core/v1 Event: lastTimestamp for deduplicated (count) events; events.k8s.io-style writers leave it
    # null and set eventTime / series.lastObservedTime instead.
    return (
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or event.get("metadata", {}).get("creationTimestamp")
        or ""
    )


def events_for(events: Iterable[Mapping[str, Any]], names: set[str], limit: int = MAX_EVENTS) -> list[EventLine]:
    """The most recent events whose involvedObject is one of ``names`` (pods and the workload itself)."""
    picked = [e for e in events if (e.get("involvedObject") or e.get("regarding") or {}).get("name") in names]
    picked.sort(key=lambda e: parse_time(_event_time(e)) or parse_time("1970-01-01T00:00:00Z"))
    lines = []
    for e in picked[-limit:]:
        involved = e.get("involvedObject") or e.get("regarding") or {}
        count = int(e.get("count") or (e.get("series") or {}).get("count") or 1)
        lines.append(
            EventLine(
                when=_event_time(e),
                type=e.get("type", ""),
                reason=e.get("reason", ""),
                object=f"{involved.get('kind', '').lower()}/{involved.get('name', '')}",
                message=(e.get("message") or e.get("note") or "").strip(),
                count=count,
            )
        )
    return lines


LogFetcher = Callable[[str, str, bool], str]  # (pod, container, previous) -> text


def _log_targets(workload: WorkloadView) -> list[tuple[str, str, bool]]:
    """(pod, container, previous) whose logs explain the problems; a container is read once."""
    targets: dict[tuple[str, str], bool] = {}
    for problem in workload.all_problems:
        if problem.pod is None or problem.failure in (Failure.IMAGE_NOT_BUILT, Failure.IMAGE_PULL, Failure.INSUFFICIENT_RESOURCES, Failure.UNSCHEDULABLE, Failure.CONFIG_ERROR):
            continue  # never started: there are no logs to read
        containers = [problem.container] if problem.container else []
        if not containers:
            # Not-ready pod: read every container of it that has started.
            containers = ["*"]
        for container in containers:
            key = (problem.pod, container)
            targets[key] = targets.get(key, False) or problem.wants_previous_logs
    if not targets and not any(p.pod for p in workload.all_problems) and workload.ref.kind == "Job" and workload.pods:
        # A failed Job whose pods show nothing (exited 0, then the Job failed on a deadline): read its newest pod.
        targets[(workload.pods[-1].name, "*")] = False
    return [(pod, container, previous) for (pod, container), previous in targets.items()]


def build_report(
    evaluation: Evaluation,
    *,
    outcome: str,
    phase: str,
    elapsed_seconds: float,
    events: list[Mapping[str, Any]],
    fetch_logs: LogFetcher,
    capacity: CapacityNote | None = None,
) -> Report:
    items = []
    for workload in evaluation.pending:
        names = {workload.ref.name} | {p.name for p in workload.pods}
        logs = []
        for pod, container, previous in _log_targets(workload):
            text = fetch_logs(pod, container, previous)
            label = f"{pod}" + ("" if container == "*" else f"/{container}") + (" (previous run)" if previous else "")
            logs.append((label, text))
        items.append(ReportItem(workload, tuple(events_for(events, names)), tuple(logs)))
    return Report(outcome, phase, elapsed_seconds, tuple(items), capacity)


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines()) if text.strip() else prefix + "(empty)"


def _problem_line(problem: Problem) -> str:
    where = "/".join(x for x in (problem.pod, problem.container) if x) or "(workload)"
    fatal = "" if problem.fatal else " [still retrying]"
    return f"    - {where}: {problem.reason} — {problem.failure.value}{fatal}" + (f": {problem.message}" if problem.message else "")


def render_report(report: Report) -> str:
    """Plain text (rich prints it as is; CI logs keep it readable)."""
    lines = [f"Phase '{report.phase}' {report.outcome} after {report.elapsed_seconds:.0f}s. Not ready:"]
    for item in report.items:
        w = item.workload
        lines.append(f"\n  {w.ref}: {w.state.value} ({w.summary})")
        for pod in w.pods:
            lines.append(f"    pod {pod.name}: {pod.reason}, ready {pod.containers_ready}, restarts {pod.restarts}")
        problems = w.all_problems
        if problems:
            lines.append("    problems:")
            lines.extend(_problem_line(p) for p in problems)
        if item.events:
            lines.append("    recent events:")
            for e in item.events:
                times = f" (x{e.count})" if e.count > 1 else ""
                lines.append(f"      {e.when} {e.type} {e.reason} {e.object}{times}: {e.message}")
        for label, text in item.logs:
            lines.append(f"    last log lines of {label}:")
            lines.append(_indent(text))
    hints = list(dict.fromkeys(p.hint for item in report.items for p in item.workload.all_problems))
    if Failure.INSUFFICIENT_RESOURCES in report.failures and report.capacity:
        c = report.capacity
        note = f"The stack requests {describe_cpu(c.requested_cpu_m)} and {format_memory(c.requested_memory)} memory"
        if c.allocatable_memory is not None and c.allocatable_cpu_m is not None:
            note += f"; the node offers {describe_cpu(c.allocatable_cpu_m)} and {format_memory(c.allocatable_memory)}"
        hints.append(note + ".")
    if report.outcome == "timed out" and not any(p.fatal for item in report.items for p in item.workload.all_problems):
        hints.append(
            "Nothing failed outright: the services are slow to start (first image pulls take minutes). "
            "Re-run with a longer --timeout, or watch `kubectl get pods -n <ns> -w`."
        )
    hints.extend(report.extra_hints)
    if hints:
        lines.append("\nWhat to do:")
        lines.extend(f"  * {h}" for h in hints)
    return "\n".join(lines)
