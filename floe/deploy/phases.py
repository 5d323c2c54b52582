"""Apply phase by phase; between phases, wait for real readiness, fail fast, explain.

The loop polls one ``kubectl get ... -o json`` per interval and hands it to the pure
:func:`floe.deploy.readiness.evaluate`; the clock is injectable so tests replay recorded states.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Protocol

import yaml

from floe.deploy.diagnosis import CapacityNote, Report, build_report
from floe.deploy.kubectl import CommandError, Kubectl
from floe.deploy.manifests import Phase, Stack
from floe.deploy.outcome import ExitCode
from floe.deploy.readiness import Evaluation, Policy, evaluate



class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def utcnow(self) -> datetime: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def utcnow(self) -> datetime:
        return datetime.now(UTC)


ProgressCallback = Callable[[str, float, Evaluation], None]


@dataclass(frozen=True)
class PhaseResult:
    phase: str
    exit_code: ExitCode
    apply_seconds: float
    wait_seconds: float
    evaluation: Evaluation | None = None
    report: Report | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.apply_seconds + self.wait_seconds


@dataclass(frozen=True)
class DeployResult:
    phases: tuple[PhaseResult, ...] = field(default=())

    @property
    def exit_code(self) -> ExitCode:
        return next((p.exit_code for p in self.phases if p.exit_code != ExitCode.SUCCESS), ExitCode.SUCCESS)


def progress_line(evaluation: Evaluation) -> str:
    """One line naming what is not ready yet and why (the pods' STATUS, the first problem)."""
    parts = []
    for w in evaluation.pending:
        why = ", ".join(f"{p.name} {p.reason}" for p in w.pods if not p.ready) or w.summary
        if w.ref.kind == "Job":
            why = w.summary + (f"; {why}" if w.pods and why != w.summary else "")
        parts.append(f"{w.ref} ({why})")
    return "waiting for " + "; ".join(parts) if parts else "all ready"


def wait_for(
    kubectl: Kubectl,
    namespace: str,
    phase: Phase,
    *,
    timeout: float,
    poll_interval: float = 2.0,
    clock: Clock | None = None,
    policy: Policy = Policy(),
    on_progress: ProgressCallback | None = None,
) -> tuple[ExitCode, Evaluation, float]:
    """Poll until every workload of ``phase`` is Ready (0), one failed for good (1) or ``timeout`` passed (2)."""
    clock = clock or SystemClock()
    start = clock.monotonic()
    expected = phase.workloads
    transient_errors = 0
    evaluation = Evaluation(tuple())
    while True:
        elapsed = clock.monotonic() - start
        try:
            cluster = kubectl.workloads_and_pods(namespace)
            transient_errors = 0
        except CommandError:
            # One missed poll (API server busy) is not a failure; a run of them is.
            transient_errors += 1
            if transient_errors >= 5:
                raise
            cluster = None
        if cluster is not None:
            evaluation = evaluate(expected, cluster, clock.utcnow(), policy)
            if on_progress:
                on_progress(phase.name, elapsed, evaluation)
            if evaluation.ready:
                return ExitCode.SUCCESS, evaluation, elapsed
            if evaluation.failed:
                return ExitCode.FAILURE, evaluation, elapsed
        if elapsed >= timeout:
            return ExitCode.TIMEOUT, evaluation, elapsed
        clock.sleep(min(poll_interval, max(timeout - elapsed, 0.1)))


def apply_phase(kubectl: Kubectl, phase: Phase) -> None:
    """``kubectl apply -f`` each file of the phase, exactly as a user would by hand.

    No special case for Jobs: a bootstrap Job's name carries a digest of its spec
    (constructs.base.job_name), so a changed Job is a new object and plain apply never hits the
    "field is immutable" error of an updated pod template."""
    for path in phase.files:
        if not any(yaml.safe_load_all(path.read_text())):
            continue  # an empty chart: `kubectl apply` would fail with "no objects passed to apply"
        kubectl.apply_file(str(path))


def ensure_namespace(kubectl: Kubectl, stack: Stack) -> None:
    """Create the Namespace first, so objects that precede it in a file never hit 'namespace not found'."""
    namespace = stack.namespace_object
    if namespace is not None:
        kubectl.apply_stdin(yaml.safe_dump(namespace))


def diagnose(
    kubectl: Kubectl, namespace: str, phase: str, evaluation: Evaluation, exit_code: ExitCode, elapsed: float, capacity: CapacityNote | None
) -> Report:
    try:
        events = kubectl.events(namespace)
    except (CommandError, ValueError):  # the report still names pods and reasons without events
        events = []
    return build_report(
        evaluation,
        outcome="timed out" if exit_code == ExitCode.TIMEOUT else "failed",
        phase=phase,
        elapsed_seconds=elapsed,
        events=events,
        fetch_logs=lambda pod, container, previous: kubectl.logs(namespace, pod, None if container == "*" else container, previous=previous),
        capacity=capacity,
    )


def deploy(
    kubectl: Kubectl,
    stack: Stack,
    phases: Sequence[Phase],
    *,
    timeout: float,
    poll_interval: float = 2.0,
    clock: Clock | None = None,
    policy: Policy = Policy(),
    on_progress: ProgressCallback | None = None,
    on_phase_start: Callable[[Phase], None] | None = None,
    on_phase_done: Callable[[PhaseResult], None] | None = None,
    capacity: CapacityNote | None = None,
) -> DeployResult:
    """Apply and wait for each phase in order; stop at the first that fails or times out."""
    clock = clock or SystemClock()
    namespace = stack.namespace
    results: list[PhaseResult] = []
    ensure_namespace(kubectl, stack)
    for phase in phases:
        if on_phase_start:
            on_phase_start(phase)
        start = clock.monotonic()
        try:
            apply_phase(kubectl, phase)
        except CommandError as exc:
            result = PhaseResult(phase.name, ExitCode.FAILURE, clock.monotonic() - start, 0.0, error=str(exc))
            results.append(result)
            if on_phase_done:
                on_phase_done(result)
            break
        applied = clock.monotonic() - start
        code, evaluation, waited = wait_for(
            kubectl, namespace, phase, timeout=timeout, poll_interval=poll_interval, clock=clock, policy=policy, on_progress=on_progress
        )
        report = None if code == ExitCode.SUCCESS else diagnose(kubectl, namespace, phase.name, evaluation, code, waited, capacity)
        result = PhaseResult(phase.name, code, applied, waited, evaluation, report)
        results.append(result)
        if on_phase_done:
            on_phase_done(result)
        if code != ExitCode.SUCCESS:
            break
    return DeployResult(tuple(results))
