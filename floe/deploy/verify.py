"""``verify``: run the verification Job in the namespace, stream its progress, report, keep the result.

The Job template is synthesized with the stack into ``dist/verify/verify.k8s.yaml`` (out of reach of
``kubectl apply -f dist/``, constructs/verify.py). Each run:

1. checks the ground first, and changes nothing if it is wrong: the context is one we would deploy
   to, the API server answers, the namespace exists, every long-running workload of ``dist/`` is
   Ready (a half-up stack is reported as such, with the deploy tool's own readiness view);
2. creates a Job from the template under a unique name (``<name>-<UTC time>-<random>``), with the
   run's ``--timeout`` (and ``--trigger`` only when asked: nothing else launches a pipeline run);
3. waits for its pod to start; an image that cannot be pulled, a missing Secret, a pod that gets
   no node is reported with the deploy diagnosis (floe/deploy/diagnosis.py) and the Job deleted;
4. streams the pod's log (the ``[verify]`` progress lines), then reads the verifier's last line
   (``floe-verify <json>``, demo/verify/report.py) and the container's exit code;
5. keeps the outcome in a ConfigMap of the namespace (:func:`record_config_map`), which
   ``make status`` shows as "Last verify: ...".

Why a ConfigMap and not a file under ``dist/``: the result describes the cluster, not the
checkout. ``dist/`` is replaced wholesale by every synth (floe/synth.py swaps it atomically, and
``make deploy-local-full`` synthesizes first), while the ConfigMap lives exactly as long as the
stack it describes (``make undeploy-local`` deletes the namespace and it with it), can be read from
any machine or CI step that reaches the cluster, and outlives the Job (deleted
``ttlSecondsAfterFinished`` after it ends, logs and all). It holds no lakehouse data and no secret.

Exit codes: those of the Job (0 every enabled check passed, 1 a failure, 2 a timeout); 1 when the
ground is wrong or the Job never started; 2 when it did not finish in time.
"""

from __future__ import annotations

import copy
import json
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import yaml

from demo.verify.report import PASS, SKIP, FAIL, PROGRESS_PREFIX, REPORT_PREFIX, Report, ReportParseError, parse_report
from floe.deploy.diagnosis import build_report, render_report
from floe.deploy.kubectl import CommandError, Kubectl
from floe.deploy.manifests import (  # the Job template's contract, shared with constructs/verify.py
    DEFAULT_TIMEOUT_SECONDS,
    START_ALLOWANCE_SECONDS,
    TTL_SECONDS_AFTER_FINISHED,
    VERIFY_COMMAND,
    VERIFY_CONTAINER,
    VERIFY_DIR,
    VERIFY_FILE,
    ManifestError,
    ObjectRef,
    Stack,
    verify_args,
)
from floe.deploy.outcome import ExitCode
from floe.deploy.phases import SystemClock
from floe.deploy.readiness import (
    Evaluation,
    Policy,
    PodView,
    State,
    WorkloadView,
    age,
    classify_pod,
    evaluate,
    parse_time,
    selector_matches,
    _owned_by_job,
)

#: The plan's budget for a deploy, from the first apply to every workload Ready.
PLAN_DEPLOY_SECONDS = 300
#: Label of the ConfigMap holding the last run's outcome (its name: ``<template name label>-last``).
LAST_LABEL = "floe.dev/verify-report"
LAST_KEY = "last-verify.json"
RUN_LABEL = "floe.dev/verify-run"
NAME_LABEL = "app.kubernetes.io/name"


# --- the Job of one run ----------------------------------------------------------------------------


def load_template(dist: Path) -> dict[str, Any]:
    path = dist / VERIFY_DIR / VERIFY_FILE
    if not path.is_file():
        raise ManifestError(f"{path} does not exist: synthesize first (`make synth`), with the same config as the deployed stack")
    jobs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "Job"]
    if len(jobs) != 1:
        raise ManifestError(f"{path} must hold exactly one Job, found {len(jobs)}")
    return jobs[0]


def new_run_id(now: datetime, token: str | None = None) -> str:
    """``20261125-171500-3fa2``: sorts by time, unique even for two runs in the same second."""
    return f"{now:%Y%m%d-%H%M%S}-{token or secrets.token_hex(2)}"


def base_name(template: dict[str, Any]) -> str:
    return template["metadata"]["labels"][NAME_LABEL]


def _container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    found = [c for c in containers if c["name"] == VERIFY_CONTAINER]
    if len(found) != 1:
        raise ManifestError(f"the verify Job template has no container {VERIFY_CONTAINER!r}")
    return found[0]


#: The verifier's setting (demo/verify/settings.py) for the p95 gate of cube.latency.
LATENCY_BUDGET_ENV = "FLOE_VERIFY_LATENCY_BUDGET_MS"


def run_manifest(
    template: dict[str, Any], *, run_id: str, timeout: float, trigger: bool, latency_budget_ms: float | None = None
) -> dict[str, Any]:
    """The template as one run: its own name and run label, the run's args and deadline, and the
    latency budget when one is given (else the verifier's default: the plan's 100 ms)."""
    job = copy.deepcopy(template)
    job["metadata"]["name"] = f"{base_name(template)}-{run_id}"
    for meta in (job["metadata"], job["spec"]["template"]["metadata"]):
        meta.setdefault("labels", {})[RUN_LABEL] = run_id
    _container(job)["args"] = verify_args(timeout=timeout, trigger=trigger)
    if latency_budget_ms is not None:
        env = [e for e in _container(job).get("env") or [] if e.get("name") != LATENCY_BUDGET_ENV]
        _container(job)["env"] = [*env, {"name": LATENCY_BUDGET_ENV, "value": f"{latency_budget_ms:g}"}]
    job["spec"]["activeDeadlineSeconds"] = int(timeout) + START_ALLOWANCE_SECONDS
    return job


# --- checking the ground ---------------------------------------------------------------------------


class NotReady(Exception):
    """The ground is wrong (no namespace, a half-up stack): the message says what and what to do."""


def check_namespace(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.run("get", "namespace", namespace, "-o", "name", f"--request-timeout={kubectl.request_timeout}", check=False, timeout=30)
    if result.returncode == 0:
        return
    if "NotFound" in result.stderr or "not found" in result.stderr:
        raise NotReady(
            f"namespace {namespace!r} does not exist on context {kubectl.context or '(current)'}: the stack is not deployed there. "
            "Deploy it first (`make deploy-local-full`), or point --context / --dist at the right cluster and stack."
        )
    raise CommandError(result)


def long_running(stack: Stack) -> list[ObjectRef]:
    """What must be Ready for a verification to mean anything. Jobs are not waited for: the
    bootstrap Jobs are deleted a day after they finish (ttlSecondsAfterFinished)."""
    return [ref for phase in stack.phases for ref in phase.workloads if ref.kind != "Job"]


def check_stack_up(stack: Stack, cluster: dict[str, Any], now: datetime) -> Evaluation:
    """The readiness of every long-running workload of ``dist/``; raises :class:`NotReady` naming
    the ones that are not (why, and the deploy tool's hint where a failure is known)."""
    evaluation = evaluate(long_running(stack), cluster, now, Policy())
    if evaluation.ready:
        return evaluation
    lines = []
    for w in evaluation.pending:
        why = "; ".join(f"{p.name} {p.reason}" for p in w.pods if not p.ready) or w.summary
        lines.append(f"  {w.ref}: {why}")
    hints = list(dict.fromkeys(p.hint for p in evaluation.problems if p.fatal))
    pending, total = len(evaluation.pending), len(evaluation.workloads)
    text = f"the stack is not up: {pending} of {total} workloads not Ready, so nothing was verified:\n" + "\n".join(lines)
    text += "\nWhat to do: finish the deploy (`make deploy-local-full` waits for readiness and explains failures) or look at `make status`."
    if hints:
        text += "\n" + "\n".join(f"  * {h}" for h in hints)
    raise NotReady(text)


# --- running the Job -------------------------------------------------------------------------------


#: (argv, seconds) -> the process's output lines until it ends or the seconds pass.
Streamer = Callable[[Sequence[str], float], Iterator[str]]


def popen_lines(argv: Sequence[str], seconds: float) -> Iterator[str]:
    """``kubectl logs -f`` as lines; killed after ``seconds`` (a dropped stream only ends the
    progress display: the result is read from the Job afterwards)."""
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    except FileNotFoundError:
        return
    timer = threading.Timer(max(seconds, 0.1), proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            yield line.rstrip("\n")
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Outcome:
    exit_code: ExitCode
    job: str | None = None
    report: Report | None = None
    #: Why there is no report, or what went wrong around it (plain text).
    problem: str | None = None
    #: The deploy diagnosis of a pod that never started (rendered text).
    diagnosis: str | None = None
    log_tail: tuple[str, ...] = ()
    started: datetime | None = None
    finished: datetime | None = None
    trigger: bool = False


def _job_pods(kubectl: Kubectl, namespace: str, job: str) -> list[dict[str, Any]]:
    pods = kubectl.get_json("pods", "-n", namespace, "-l", f"job-name={job}")
    mine = [p for p in pods.get("items") or [] if _owned_by_job(p, job)]
    return sorted(mine, key=lambda p: p["metadata"].get("creationTimestamp") or "")


def _diagnose(kubectl: Kubectl, namespace: str, job: str, view: PodView, outcome: str, elapsed: float) -> str:
    workload = WorkloadView(ObjectRef("Job", job), State.PROGRESSING, "pod not started", (view,))
    try:
        events = kubectl.events(namespace)
    except (CommandError, ValueError):
        events = []
    report = build_report(
        Evaluation((workload,)), outcome=outcome, phase="verify", elapsed_seconds=elapsed, events=events,
        fetch_logs=lambda pod, container, previous: kubectl.logs(namespace, pod, None if container == "*" else container, previous=previous),
    )
    return render_report(report)


def wait_for_start(
    kubectl: Kubectl, namespace: str, job: str, *, timeout: float, poll: float, clock: Any, policy: Policy = Policy()
) -> tuple[str, PodView | None]:
    """("started" | "failed" | "timeout", the pod's view) once its container runs or has run."""
    start = clock.monotonic()
    view: PodView | None = None
    while True:
        pods = _job_pods(kubectl, namespace, job)
        if pods:
            view = classify_pod(pods[-1], clock.utcnow(), policy)
            if view.phase in ("Running", "Succeeded", "Failed"):
                return "started", view
            if any(p.fatal for p in view.problems):
                return "failed", view
        if clock.monotonic() - start >= timeout:
            return "timeout", view
        clock.sleep(poll)


def _finished(job: dict[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition["type"] if condition["type"] == "Complete" else f"Failed ({condition.get('reason', '')})"
    return None


def _exit_code(pod: dict[str, Any] | None) -> int | None:
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == VERIFY_CONTAINER:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if "exitCode" in terminated:
                return int(terminated["exitCode"])
    return None


def run(
    kubectl: Kubectl,
    namespace: str,
    template: dict[str, Any],
    *,
    timeout: float,
    trigger: bool,
    poll: float = 2.0,
    clock: Any = None,
    stream: Streamer = popen_lines,
    on_line: Callable[[str], None] = lambda _line: None,
    run_id: str | None = None,
    latency_budget_ms: float | None = None,
) -> Outcome:
    """Create one run of the Job and follow it to its end (the ground is checked by the caller)."""
    clock = clock or SystemClock()
    started = clock.utcnow()
    job = run_manifest(template, run_id=run_id or new_run_id(started), timeout=timeout, trigger=trigger, latency_budget_ms=latency_budget_ms)
    name = job["metadata"]["name"]
    kubectl.run("create", "-f", "-", "-o", "name", input=json.dumps(job), timeout=60)
    on_line(f"created job/{name}{' (--trigger: launches a generation run)' if trigger else ''}; waiting for its pod to start")
    common = {"job": name, "started": started, "trigger": trigger}
    try:
        state, view = wait_for_start(kubectl, namespace, name, timeout=START_ALLOWANCE_SECONDS, poll=poll, clock=clock)
        if state != "started":
            elapsed = (clock.utcnow() - started).total_seconds()
            diagnosis = _diagnose(kubectl, namespace, name, view, "failed" if state == "failed" else "timed out", elapsed) if view else None
            # Nothing ran: remove the stuck pod now rather than at the Job's deadline.
            kubectl.run("delete", "job", name, "-n", namespace, "--wait=false", "--ignore-not-found=true", check=False, timeout=30)
            problem = (f"the verification pod did not start (job/{name} deleted)" if state == "failed"
                       else f"the verification pod was not running after {START_ALLOWANCE_SECONDS}s (job/{name} deleted)")
            code = ExitCode.FAILURE if state == "failed" else ExitCode.TIMEOUT
            return Outcome(code, problem=problem, diagnosis=diagnosis or "no pod was created for the Job (see `kubectl describe job`)",
                           finished=clock.utcnow(), **common)

        # Progress: the pod's log as it is written; the result is read once the Job has ended.
        budget = timeout + START_ALLOWANCE_SECONDS + 30 - (clock.utcnow() - started).total_seconds()
        lines: list[str] = []
        for line in stream(kubectl.argv("logs", "-f", "-n", namespace, f"job/{name}", "-c", VERIFY_CONTAINER), budget):
            lines.append(line)
            if line.startswith(PROGRESS_PREFIX):
                on_line(line)
        job_state, pod = _wait_for_end(kubectl, namespace, name, clock=clock, poll=poll,
                                       until=started.timestamp() + timeout + START_ALLOWANCE_SECONDS + 30)
    except KeyboardInterrupt:
        kubectl.run("delete", "job", name, "-n", namespace, "--wait=false", "--ignore-not-found=true", check=False, timeout=30)
        raise
    finished = clock.utcnow()
    if not any(line.startswith(REPORT_PREFIX) for line in lines):
        # The stream may have dropped: read the whole log once.
        result = kubectl.run("logs", "-n", namespace, f"job/{name}", "-c", VERIFY_CONTAINER, "--tail=-1", check=False, timeout=60)
        if result.returncode == 0:
            lines = result.stdout.splitlines()
    tail = tuple(line for line in lines if not line.startswith(REPORT_PREFIX))[-20:]
    exit_code = _exit_code(pod)
    try:
        report = parse_report("\n".join(lines))
    except ReportParseError as exc:
        if job_state is None:
            return Outcome(ExitCode.TIMEOUT, problem=f"job/{name} had not finished {timeout:.0f}s (+{START_ALLOWANCE_SECONDS}s to start) after it was created",
                           log_tail=tail, finished=finished, **common)
        deadline = "DeadlineExceeded" in job_state
        code = ExitCode.TIMEOUT if deadline else ExitCode.FAILURE
        why = ("the Job passed its deadline (activeDeadlineSeconds) and was stopped before the verifier reported"
               if deadline else f"the verifier ended (job {job_state}, exit code {exit_code}) without its report: {exc}")
        return Outcome(code, problem=why, log_tail=tail, finished=finished, **common)
    code = ExitCode(exit_code) if exit_code in (0, 1, 2) else ExitCode(report.exit_code)
    return Outcome(code, report=report, log_tail=tail, finished=finished, **common)


def _wait_for_end(kubectl: Kubectl, namespace: str, name: str, *, clock: Any, poll: float, until: float) -> tuple[str | None, dict[str, Any] | None]:
    """(how the Job ended or None if it has not, its pod) — the Job's status lags its pod's end."""
    while True:
        try:
            state = _finished(kubectl.get_json("job", name, "-n", namespace))
        except CommandError:
            state = None  # deleted (TTL) or a missed poll: the pod still tells
        pods = _job_pods(kubectl, namespace, name)
        pod = pods[-1] if pods else None
        if state or (pod and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")):
            return state or f"pod {pod['status']['phase']}", pod
        if clock.utcnow().timestamp() >= until:
            return None, pod
        clock.sleep(poll)


# --- keeping the outcome for `make status` ---------------------------------------------------------


def record(outcome: Outcome, context: str | None) -> dict[str, Any]:
    return {
        "job": outcome.job,
        "context": context,
        "started": outcome.started.isoformat().replace("+00:00", "Z") if outcome.started else None,
        "finished": outcome.finished.isoformat().replace("+00:00", "Z") if outcome.finished else None,
        "exit_code": int(outcome.exit_code),
        "trigger": outcome.trigger,
        "report": outcome.report.to_json() if outcome.report else None,
        "problem": outcome.problem,
    }


def record_config_map(namespace: str, template: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    base = base_name(template)
    labels = {NAME_LABEL: base, "app.kubernetes.io/part-of": "floe", "app.kubernetes.io/component": "verify", LAST_LABEL: "last"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{base}-last", "namespace": namespace, "labels": labels},
        "data": {LAST_KEY: json.dumps(data, indent=1, sort_keys=True)},
    }


def save(kubectl: Kubectl, namespace: str, template: dict[str, Any], outcome: Outcome) -> None:
    kubectl.apply_stdin(json.dumps(record_config_map(namespace, template, record(outcome, kubectl.context))))


def last_record(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    items = kubectl.get_json("configmaps", "-n", namespace, "-l", f"{LAST_LABEL}=last").get("items") or []
    if not items:
        return None
    return json.loads((items[0].get("data") or {})[LAST_KEY])


def _ago(when: datetime | None, now: datetime) -> str:
    return "?" if when is None else f"{age(when, now)} ago"


def counts(report: dict[str, Any]) -> tuple[int, int, int, list[str]]:
    """(passed, enabled, skipped, failed names) of a report's checks."""
    checks = report.get("checks") or []
    passed = sum(1 for c in checks if c["status"] == PASS)
    skipped = sum(1 for c in checks if c["status"] == SKIP)
    failed = [c["name"] for c in checks if c["status"] == FAIL]
    return passed, len(checks) - skipped, skipped, failed


def summary_line(data: dict[str, Any] | None, now: datetime) -> tuple[str, str]:
    """(text, style) of the "Last verify" line of `make status`."""
    if data is None:
        return "Last verify: never (run `make verify` after a deploy)", "yellow"
    when = data.get("finished") or data.get("started")
    head = f"Last verify: {when} ({_ago(parse_time(when), now)})"
    report = data.get("report")
    if report is None:
        return f"{head} FAILED before its report: {(data.get('problem') or '')[:300]}", "red"
    passed, enabled, skipped, failed = counts(report)
    extra = f", {skipped} skipped" if skipped else ""
    if data.get("exit_code") == 0:
        return f"{head} ok ({passed}/{enabled} checks passed{extra})", "green"
    what = "TIMED OUT" if report.get("timed_out") else "FAILED"
    return f"{head} {what} ({passed}/{enabled} checks passed{extra}; failed: {', '.join(failed) or '-'})", "red"


# --- deploy timings from the cluster's own timestamps ----------------------------------------------


@dataclass(frozen=True)
class PhaseTiming:
    phase: str
    applied: datetime | None
    ready: datetime | None
    #: workloads whose time is unknown: not Ready (yet), or gone (a Job past its TTL)
    unknown: tuple[str, ...] = field(default=())

    @property
    def seconds(self) -> float | None:
        return (self.ready - self.applied).total_seconds() if self.applied and self.ready else None


@dataclass(frozen=True)
class DeployTimings:
    phases: tuple[PhaseTiming, ...]

    @property
    def applied(self) -> datetime | None:
        return min((p.applied for p in self.phases if p.applied), default=None)

    @property
    def ready(self) -> datetime | None:
        if any(p.ready is None for p in self.phases):
            return None
        return max(p.ready for p in self.phases)  # type: ignore[type-var]

    @property
    def seconds(self) -> float | None:
        return (self.ready - self.applied).total_seconds() if self.applied and self.ready else None


def _ready_time(obj: dict[str, Any], pods: list[dict[str, Any]]) -> datetime | None:
    """When a workload became Ready: its pods' Ready condition turning True (the last of them), a
    Job's completionTime."""
    if obj["kind"] == "Job":
        return parse_time((obj.get("status") or {}).get("completionTime"))
    selector = (obj.get("spec") or {}).get("selector")
    mine = [p for p in pods if selector_matches(selector, p["metadata"].get("labels") or {})]
    want = int((obj.get("spec") or {}).get("replicas", 1))
    times = []
    for pod in mine:
        ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready and ready.get("status") == "True":
            times.append(parse_time(ready.get("lastTransitionTime")))
    times = [t for t in times if t]
    return max(times) if len(times) >= want and times else None


def deploy_timings(stack: Stack, cluster: dict[str, Any]) -> DeployTimings:
    """Per phase of ``dist/``: applied = the earliest creationTimestamp of its workloads; ready = the
    latest moment one of them became Ready. Read from the cluster, so it describes the objects as
    they are: a pod replaced since the deploy moves its phase's ready time (docs/troubleshooting.md)."""
    items = cluster.get("items") or []
    by_ref = {(i.get("kind"), i["metadata"]["name"]): i for i in items}
    pods = [i for i in items if i.get("kind") == "Pod"]
    result = []
    for phase in stack.phases:
        created, ready, unknown = [], [], []
        for ref in phase.workloads:
            obj = by_ref.get((ref.kind, ref.name))
            if obj is None:
                unknown.append(f"{ref} (not in the cluster{': deleted after its TTL' if ref.kind == 'Job' else ''})")
                continue
            created.append(parse_time(obj["metadata"].get("creationTimestamp")))
            when = _ready_time(obj, pods)
            if when is None:
                unknown.append(f"{ref} (not Ready)")
            else:
                ready.append(when)
        known_created = [c for c in created if c]
        jobs_gone = all("TTL" in u for u in unknown)
        result.append(PhaseTiming(
            phase.name,
            min(known_created) if known_created else None,
            max(ready) if ready and (not unknown or jobs_gone) else None,
            tuple(unknown),
        ))
    return DeployTimings(tuple(p for p in result if p.applied or p.unknown))


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"
