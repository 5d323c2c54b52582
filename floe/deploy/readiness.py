"""Readiness and failure classification from ``kubectl get ... -o json`` documents (pure functions).

Field names follow the Kubernetes API (apps/v1 Deployment/StatefulSet/DaemonSet status, batch/v1 Job
conditions, core/v1 Pod status: ``conditions``, ``containerStatuses[].state.waiting.reason``,
``lastState.terminated.reason``, ``restartCount``). Nothing here calls the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, UTC
from enum import Enum
from typing import Any

from floe.deploy.manifests import ObjectRef


class State(str, Enum):
    READY = "ready"
    PROGRESSING = "progressing"
    FAILED = "failed"
    MISSING = "missing"  # applied, but not visible yet (or deleted by someone)


class Failure(str, Enum):
    """What went wrong, each with the fix a person needs (see :data:`HINTS`)."""

    IMAGE_NOT_BUILT = "image not built"  # ErrImageNeverPull
    IMAGE_PULL = "image pull failed"  # ImagePullBackOff / ErrImagePull / InvalidImageName
    CRASH_LOOP = "crash loop"  # CrashLoopBackOff
    OOM_KILLED = "out of memory"  # terminated OOMKilled
    CONFIG_ERROR = "config error"  # CreateContainerConfigError / CreateContainerError
    INSUFFICIENT_RESOURCES = "pending on resources"  # Unschedulable: Insufficient cpu/memory
    UNSCHEDULABLE = "unschedulable"  # Unschedulable for another reason (PVC, taint, selector)
    CONTAINER_ERROR = "container exited with an error"  # terminated Error, not (yet) a crash loop
    NOT_READY = "not ready"  # running, readiness probe failing
    JOB_FAILED = "job failed"  # Job condition Failed (BackoffLimitExceeded, DeadlineExceeded)
    ROLLOUT_STALLED = "rollout stalled"  # Deployment Progressing=False ProgressDeadlineExceeded


HINTS: dict[Failure, str] = {
    Failure.IMAGE_NOT_BUILT: (
        "The project image is not in Docker Desktop's image store: run `make image` (Docker Desktop's "
        "Kubernetes uses the engine's local images), then delete the pod or re-run the deploy."
    ),
    Failure.IMAGE_PULL: (
        "The image could not be pulled: check its name and tag in the manifests and your network/registry "
        "access. If it is the project image, run `make image` (it must exist locally)."
    ),
    Failure.CRASH_LOOP: (
        "The container keeps exiting: read the last log lines above. Usual causes: a dependency it "
        "reaches at start-up is not Ready, a wrong credential, or a bad config value."
    ),
    Failure.OOM_KILLED: (
        "The container used more memory than its limit and was killed: raise its memory limit in the "
        "stack config (and Docker Desktop's memory if the total no longer fits)."
    ),
    Failure.CONFIG_ERROR: (
        "The container could not be created from its spec: usually a Secret or ConfigMap (or a key in it) "
        "that does not exist. Re-synthesize and re-apply; check `kubectl get secret,configmap -n <ns>`."
    ),
    Failure.INSUFFICIENT_RESOURCES: (
        "The node lacks CPU or memory for this pod's requests: Docker Desktop's memory/CPU is below the "
        "stack's total requests. Raise it in Docker Desktop > Settings > Resources (see `floe.deploy resources`)."
    ),
    Failure.UNSCHEDULABLE: (
        "No node accepts the pod (volume claim, taint or node selector): read the scheduler's message above."
    ),
    Failure.CONTAINER_ERROR: "The container exited with an error: read the last log lines above.",
    Failure.NOT_READY: (
        "Running but its readiness probe fails: it is still starting, or waits on a dependency. "
        "Read the events (probe failures) and the last log lines."
    ),
    Failure.JOB_FAILED: (
        "The bootstrap Job gave up after its retries: read its pod's last log lines above; it usually "
        "means the service it initialises was not reachable or rejected the credentials. Fix, then "
        "`kubectl delete job <name> -n <ns>` and re-run the deploy."
    ),
    Failure.ROLLOUT_STALLED: "The Deployment made no progress within its deadline: see its pods' problems above.",
}

# Waiting reasons that are definitive as soon as they appear (kubelet: images/types.go, kuberuntime).
_IMAGE_NOT_BUILT = {"ErrImageNeverPull"}
_IMAGE_PULL_FATAL = {"InvalidImageName", "ErrImageInspect"}  # no retry can fix these
_IMAGE_PULL_TRANSIENT = {"ErrImagePull"}  # becomes ImagePullBackOff on the next sync
_IMAGE_PULL_BACKOFF = {"ImagePullBackOff"}  # the kubelet retries (10 s, 20 s, 40 s ... 5 min): given a grace period
_CONFIG = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
_INSUFFICIENT = re.compile(r"Insufficient (cpu|memory|ephemeral-storage)", re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    """When a problem stops the wait instead of being waited out."""

    # CrashLoopBackOff with this many restarts: a service that waits for a dependency may restart
    # once or twice during a cold start, a broken one keeps going.
    crash_loop_restarts: int = 2
    # A missing Secret/ConfigMap may still be on its way (same apply): give it this long.
    config_error_grace_seconds: float = 30.0
    # An unschedulable pod can become schedulable when a finished Job's pod frees its requests.
    unschedulable_grace_seconds: float = 20.0
    # A registry hiccup or an anonymous pull limit puts a pod into ImagePullBackOff while the kubelet
    # keeps retrying with back-off (10 s, doubling, up to 5 min): ~4 attempts fit in 3 minutes.
    image_pull_grace_seconds: float = 180.0


@dataclass(frozen=True)
class Problem:
    failure: Failure
    pod: str | None
    container: str | None
    reason: str
    message: str
    fatal: bool

    @property
    def hint(self) -> str:
        return HINTS[self.failure]

    @property
    def wants_previous_logs(self) -> bool:
        return self.failure in (Failure.CRASH_LOOP, Failure.OOM_KILLED)


@dataclass(frozen=True)
class PodView:
    name: str
    phase: str
    ready: bool
    containers_ready: str  # "1/2"
    restarts: int
    reason: str  # what `kubectl get pods` would show in STATUS
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class WorkloadView:
    ref: ObjectRef
    state: State
    summary: str
    pods: tuple[PodView, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def all_problems(self) -> list[Problem]:
        return list(self.problems) + [p for pod in self.pods for p in pod.problems]

    @property
    def fatal(self) -> bool:
        return self.state == State.FAILED or any(p.fatal for p in self.all_problems)


@dataclass(frozen=True)
class Evaluation:
    workloads: tuple[WorkloadView, ...]

    @property
    def ready(self) -> bool:
        return all(w.state == State.READY for w in self.workloads)

    @property
    def failed(self) -> bool:
        return any(w.fatal and w.state != State.READY for w in self.workloads)

    @property
    def pending(self) -> list[WorkloadView]:
        return [w for w in self.workloads if w.state != State.READY]

    @property
    def problems(self) -> list[Problem]:
        return [p for w in self.pending for p in w.all_problems]


# --- helpers ---------------------------------------------------------------------------------------
def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    # RFC 3339 as the API server writes it ("2026-11-25T17:30:00Z", MicroTime with fractions).
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def age(when: datetime | None, now: datetime) -> str:
    """How long ago, as kubectl prints it: ``45s``, ``12m``, ``3h``, ``2d``; ``?`` when unknown."""
    if when is None:
        return "?"
    seconds = int((now - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: matchLabels AND every matchExpression; an empty selector matches nothing
    here (a workload without a selector owns no pods we could attribute)."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def _owned_by_job(pod: Mapping[str, Any], job_name: str) -> bool:
    labels = pod.get("metadata", {}).get("labels") or {}
    # batch/v1: Job pods carry job-name and (1.27+) batch.kubernetes.io/job-name.
    if labels.get("batch.kubernetes.io/job-name") == job_name or labels.get("job-name") == job_name:
        return True
    return any(o.get("kind") == "Job" and o.get("name") == job_name for o in pod.get("metadata", {}).get("ownerReferences") or [])


# --- pods ------------------------------------------------------------------------------------------
def classify_pod(pod: Mapping[str, Any], now: datetime, policy: Policy = Policy()) -> PodView:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status") or {}
    name = meta["name"]
    phase = status.get("phase", "Unknown")
    created = parse_time(meta.get("creationTimestamp")) or now
    age = (now - created).total_seconds()
    statuses = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
    app_statuses = status.get("containerStatuses") or []
    problems: list[Problem] = []
    display = phase

    scheduled = _condition(pod, "PodScheduled")
    if phase == "Pending" and scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        message = scheduled.get("message", "")
        failure = Failure.INSUFFICIENT_RESOURCES if _INSUFFICIENT.search(message) else Failure.UNSCHEDULABLE
        problems.append(Problem(failure, name, None, "Unschedulable", message, age >= policy.unschedulable_grace_seconds))
        display = "Pending (unschedulable)"

    for cs in statuses:
        container = cs.get("name")
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        restarts = int(cs.get("restartCount", 0))
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or {}
        reason = waiting.get("reason") or terminated.get("reason") or ""
        message = waiting.get("message") or terminated.get("message") or ""
        if reason:
            display = reason
        if reason in _IMAGE_NOT_BUILT:
            problems.append(Problem(Failure.IMAGE_NOT_BUILT, name, container, reason, message, True))
        elif reason in _IMAGE_PULL_FATAL:
            problems.append(Problem(Failure.IMAGE_PULL, name, container, reason, message, True))
        elif reason in _IMAGE_PULL_TRANSIENT:
            problems.append(Problem(Failure.IMAGE_PULL, name, container, reason, message, False))
        elif reason in _IMAGE_PULL_BACKOFF:
            problems.append(Problem(Failure.IMAGE_PULL, name, container, reason, message, age >= policy.image_pull_grace_seconds))
        elif reason in _CONFIG:
            problems.append(Problem(Failure.CONFIG_ERROR, name, container, reason, message, age >= policy.config_error_grace_seconds))
        elif reason == "OOMKilled" or (reason == "CrashLoopBackOff" and last.get("reason") == "OOMKilled"):
            detail = message or f"exit code {last.get('exitCode', terminated.get('exitCode', 137))}, restarts {restarts}"
            problems.append(Problem(Failure.OOM_KILLED, name, container, "OOMKilled", detail, True))
        elif reason == "CrashLoopBackOff":
            detail = message or f"last exit code {last.get('exitCode', '?')} ({last.get('reason', 'Error')}), restarts {restarts}"
            problems.append(Problem(Failure.CRASH_LOOP, name, container, reason, detail, restarts >= policy.crash_loop_restarts))
        elif terminated and terminated.get("exitCode", 0) != 0:
            detail = message or f"exit code {terminated.get('exitCode')}"
            # A Job pod's failure is judged by the Job (backoffLimit); elsewhere restartPolicy restarts it.
            problems.append(Problem(Failure.CONTAINER_ERROR, name, container, terminated.get("reason", "Error"), detail, False))
        elif last.get("reason") == "OOMKilled":
            # Running again after an OOM kill: it will likely be killed again; say so but keep waiting.
            problems.append(Problem(Failure.OOM_KILLED, name, container, "OOMKilled", f"restarted {restarts}x after OOM kill", False))

    # Still in init containers (e.g. wait-for-deps): say which one, like kubectl's "Init:1/2".
    inits = status.get("initContainerStatuses") or []
    done = sum(1 for cs in inits if ((cs.get("state") or {}).get("terminated") or {}).get("exitCode") == 0 or cs.get("started") and cs.get("ready"))
    if inits and done < len(inits) and phase == "Pending" and not problems:
        current = inits[done]
        display = f"Init:{done}/{len(inits)} ({current.get('name')})"

    ready_condition = _condition(pod, "Ready")
    ready = bool(ready_condition and ready_condition.get("status") == "True")
    if phase == "Running" and not ready and not problems:
        message = (ready_condition or {}).get("message") or "containers not ready"
        problems.append(Problem(Failure.NOT_READY, name, None, (ready_condition or {}).get("reason", "NotReady"), message, False))
    if phase == "Running" and not ready and display == "Running":
        display = "Running (not ready)"
    if meta.get("deletionTimestamp"):
        display = "Terminating"
    n_ready = sum(1 for cs in app_statuses if cs.get("ready"))
    return PodView(
        name=name,
        phase=phase,
        ready=ready,
        containers_ready=f"{n_ready}/{len(spec.get('containers') or app_statuses)}",
        restarts=sum(int(cs.get("restartCount", 0)) for cs in app_statuses),
        reason=display,
        problems=tuple(problems),
    )


# --- workloads -------------------------------------------------------------------------------------
def _generation_observed(obj: Mapping[str, Any]) -> bool:
    status = obj.get("status") or {}
    return int(status.get("observedGeneration", 0)) >= int(obj.get("metadata", {}).get("generation", 1))


def _evaluate_replicated(obj: Mapping[str, Any]) -> tuple[State, str, list[Problem]]:
    kind, spec, status = obj["kind"], obj.get("spec") or {}, obj.get("status") or {}
    if kind == "DaemonSet":
        want = int(status.get("desiredNumberScheduled", 0))
        have = int(status.get("numberAvailable", 0))
        updated = int(status.get("updatedNumberScheduled", 0))
        ok = _generation_observed(obj) and want > 0 and have >= want and updated >= want
        return (State.READY if ok else State.PROGRESSING), f"{have}/{want} available", []
    want = int(spec.get("replicas", 1))
    if kind == "Deployment":
        have = int(status.get("availableReplicas", 0))
        updated = int(status.get("updatedReplicas", 0))
        problems: list[Problem] = []
        progressing = _condition(obj, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            problems.append(Problem(Failure.ROLLOUT_STALLED, None, None, "ProgressDeadlineExceeded", progressing.get("message", ""), True))
        ok = _generation_observed(obj) and have >= want and updated >= want
        return (State.READY if ok else State.PROGRESSING), f"{have}/{want} available", problems
    # StatefulSet: readyReplicas, and the rollout finished (updateRevision == currentRevision).
    have = int(status.get("readyReplicas", 0))
    rolled = status.get("updateRevision") in (None, status.get("currentRevision")) or int(status.get("updatedReplicas", 0)) >= want
    ok = _generation_observed(obj) and have >= want and rolled
    return (State.READY if ok else State.PROGRESSING), f"{have}/{want} ready", []


def _evaluate_job(obj: Mapping[str, Any]) -> tuple[State, str, list[Problem]]:
    status = obj.get("status") or {}
    complete, failed = _condition(obj, "Complete"), _condition(obj, "Failed")
    if complete and complete.get("status") == "True":
        return State.READY, "Complete", []
    if failed and failed.get("status") == "True":
        reason = failed.get("reason", "Failed")
        return State.FAILED, f"Failed ({reason})", [Problem(Failure.JOB_FAILED, None, None, reason, failed.get("message", ""), True)]
    active, failures = int(status.get("active", 0)), int(status.get("failed", 0))
    backoff = int((obj.get("spec") or {}).get("backoffLimit", 6))
    return State.PROGRESSING, f"running ({active} active, {failures}/{backoff + 1} attempts failed)", []


def evaluate(expected: Iterable[ObjectRef], cluster_list: Mapping[str, Any], now: datetime | None = None, policy: Policy = Policy()) -> Evaluation:
    """Readiness of the ``expected`` workloads from one ``kubectl get deployments,statefulsets,daemonsets,jobs,pods -o json``."""
    now = now or datetime.now(UTC)
    items = cluster_list.get("items") or []
    by_ref = {(i.get("kind"), i.get("metadata", {}).get("name")): i for i in items}
    pods = [i for i in items if i.get("kind") == "Pod"]
    views: list[WorkloadView] = []
    for ref in expected:
        obj = by_ref.get((ref.kind, ref.name))
        if obj is None:
            views.append(WorkloadView(ref, State.MISSING, "not created yet"))
            continue
        if ref.kind == "Job":
            state, summary, problems = _evaluate_job(obj)
            owned = [p for p in pods if _owned_by_job(p, ref.name)]
        else:
            state, summary, problems = _evaluate_replicated(obj)
            selector = (obj.get("spec") or {}).get("selector")
            owned = [p for p in pods if selector_matches(selector, p.get("metadata", {}).get("labels") or {})]
        pod_views = tuple(classify_pod(p, now, policy) for p in sorted(owned, key=lambda p: p["metadata"]["name"]))
        if state == State.READY:
            # A Ready workload's leftover pods (old retries of a completed Job) are history, not problems.
            pod_views = tuple(PodView(**{**pv.__dict__, "problems": ()}) for pv in pod_views)
        views.append(WorkloadView(ref, state, summary, pod_views, tuple(problems)))
    return Evaluation(tuple(views))
