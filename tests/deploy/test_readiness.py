"""Readiness and failure classification on recorded cluster states (fixtures/*.json)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from floe.deploy.manifests import ObjectRef, Stack
from floe.deploy.readiness import Failure, Policy, State, evaluate, selector_matches
from tests.deploy.conftest import CREATED, state

NOW = CREATED + timedelta(minutes=1)


def infra_eval(stack: Stack, name: str, now=NOW, policy: Policy = Policy()):
    return evaluate(stack.phases[0].workloads, state(name), now, policy)


def test_everything_ready(stack: Stack) -> None:
    ev = infra_eval(stack, "infra-ready")
    assert ev.ready and not ev.failed
    assert {w.state for w in ev.workloads} == {State.READY}
    # A completed Job's Succeeded pod is not a problem.
    assert ev.problems == []


def test_cold_start_is_progressing_with_reasons(stack: Stack) -> None:
    ev = infra_eval(stack, "infra-progressing")
    assert not ev.ready and not ev.failed
    pending = {str(w.ref): w for w in ev.pending}
    assert set(pending) == {"deployment/floe-postgres", "job/floe-minio-buckets", "job/floe-polaris-init"}
    assert pending["deployment/floe-postgres"].pods[0].reason == "ContainerCreating"
    assert pending["job/floe-minio-buckets"].summary.startswith("running (1 active")


@pytest.mark.parametrize(
    ("fixture", "workload", "failure", "reason", "fatal"),
    [
        ("image-never-pull", "job/floe-minio-buckets", Failure.IMAGE_NOT_BUILT, "ErrImageNeverPull", True),
        # A minute old: the kubelet is still retrying (image_pull_grace_seconds); fatal after the grace (below).
        ("image-pull-backoff", "deployment/floe-polaris", Failure.IMAGE_PULL, "ImagePullBackOff", False),
        ("crash-loop", "deployment/floe-polaris", Failure.CRASH_LOOP, "CrashLoopBackOff", True),
        ("crash-loop-early", "deployment/floe-polaris", Failure.CRASH_LOOP, "CrashLoopBackOff", False),
        ("oom-killed", "deployment/floe-polaris", Failure.OOM_KILLED, "OOMKilled", True),
        ("pending-insufficient-memory", "deployment/floe-polaris", Failure.INSUFFICIENT_RESOURCES, "Unschedulable", True),
        ("config-error", "deployment/floe-polaris", Failure.CONFIG_ERROR, "CreateContainerConfigError", True),
        ("not-ready", "deployment/floe-polaris", Failure.NOT_READY, "ContainersNotReady", False),
        ("job-backoff-exceeded", "job/floe-minio-buckets", Failure.JOB_FAILED, "BackoffLimitExceeded", True),
        ("rollout-stalled", "deployment/floe-polaris", Failure.ROLLOUT_STALLED, "ProgressDeadlineExceeded", True),
    ],
)
def test_failure_classification(stack: Stack, fixture: str, workload: str, failure: Failure, reason: str, fatal: bool) -> None:
    ev = infra_eval(stack, fixture)
    assert [str(w.ref) for w in ev.pending] == [workload], "only the broken workload is pending"
    problems = [p for p in ev.problems if p.failure == failure]
    assert problems, f"{fixture}: expected {failure}, got {[p.failure for p in ev.problems]}"
    assert problems[0].reason == reason
    assert problems[0].fatal is fatal
    assert ev.failed is fatal


def test_messages_carry_the_cluster_s_explanation(stack: Stack) -> None:
    never = infra_eval(stack, "image-never-pull").problems[0]
    assert (never.pod, never.container) == ("floe-minio-buckets-q8w2d", "buckets")
    assert 'Container image "floe-project:0.1.0" is not present with pull policy of Never' in never.message
    assert "make image" in never.hint
    mem = infra_eval(stack, "pending-insufficient-memory").problems[0]
    assert "1 Insufficient memory" in mem.message and "Docker Desktop" in mem.hint
    crash = infra_eval(stack, "crash-loop").problems[0]
    assert crash.wants_previous_logs
    job_failed = [p for p in infra_eval(stack, "job-backoff-exceeded").problems if p.failure == Failure.JOB_FAILED][0]
    assert job_failed.message == "Job has reached the specified backoff limit"


def test_grace_periods_delay_fatality_for_problems_that_can_resolve(stack: Stack) -> None:
    young = CREATED + timedelta(seconds=5)
    assert not infra_eval(stack, "config-error", now=young).failed  # the Secret may be on its way
    assert not infra_eval(stack, "pending-insufficient-memory", now=young).failed  # a Job may free room
    assert infra_eval(stack, "config-error", now=CREATED + timedelta(seconds=31)).failed
    # One ImagePullBackOff (a registry hiccup, a pull limit) is waited out; one that lasts is not.
    assert not infra_eval(stack, "image-pull-backoff", now=CREATED + timedelta(seconds=179)).failed
    assert infra_eval(stack, "image-pull-backoff", now=CREATED + timedelta(seconds=181)).failed
    strict = Policy(crash_loop_restarts=1)
    assert infra_eval(stack, "crash-loop-early", policy=strict).failed


def test_unobserved_generation_is_not_ready(stack: Stack) -> None:
    doc = state("infra-ready")
    minio = next(i for i in doc["items"] if i["metadata"]["name"] == "floe-minio" and i["kind"] == "Deployment")
    minio["metadata"]["generation"] = 2  # just re-applied; the controller has not seen it yet
    ev = evaluate(stack.phases[0].workloads, doc, NOW)
    assert [str(w.ref) for w in ev.pending] == ["deployment/floe-minio"]


def test_object_not_created_yet_is_missing_not_failed(stack: Stack) -> None:
    doc = state("infra-ready")
    doc["items"] = [i for i in doc["items"] if i["metadata"]["name"] != "floe-polaris-init"]
    ev = evaluate(stack.phases[0].workloads, doc, NOW)
    assert [(str(w.ref), w.state) for w in ev.pending] == [("job/floe-polaris-init", State.MISSING)]
    assert not ev.failed


def test_statefulset_and_multi_replica_readiness(stack: Stack) -> None:
    full = state("full-ready")
    assert evaluate(stack.phases[3].workloads, full, NOW).ready
    cube = next(i for i in full["items"] if i["kind"] == "Deployment" and i["metadata"]["name"] == "floe-cube")
    cube["status"]["availableReplicas"] = 1  # one of two replicas
    ev = evaluate(stack.phases[3].workloads, full, NOW)
    assert [w.summary for w in ev.pending] == ["1/2 available"]
    router = next(i for i in full["items"] if i["kind"] == "StatefulSet")
    router["status"]["updateRevision"] = "floe-cubestore-router-7a"  # rolling update in flight
    router["status"]["updatedReplicas"] = 0
    assert ObjectRef("StatefulSet", "floe-cubestore-router") in [w.ref for w in evaluate(stack.phases[3].workloads, full, NOW).pending]


def test_selector_semantics() -> None:
    labels = {"app": "a", "tier": "db"}
    assert selector_matches({"matchLabels": {"app": "a"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "b"}}, labels)
    assert selector_matches({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "cache"]}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, labels)
    assert selector_matches({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)
    assert not selector_matches({}, labels)


def test_pod_in_its_init_containers_says_which_one() -> None:
    from floe.deploy.readiness import classify_pod

    pod = next(i for i in state("infra-progressing")["items"] if i["kind"] == "Pod")
    pod["status"]["initContainerStatuses"] = [
        {"name": "wait-for-deps", "ready": False, "restartCount": 0, "started": True, "image": "postgres:18.1", "imageID": "",
         "state": {"running": {"startedAt": "2026-11-25T17:00:10Z"}}, "lastState": {}},
        {"name": "bootstrap-realm", "ready": False, "restartCount": 0, "started": False, "image": "apache/polaris-admin-tool:1.7.0", "imageID": "",
         "state": {"waiting": {"reason": "PodInitializing"}}, "lastState": {}},
    ]
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "PodInitializing"}}
    view = classify_pod(pod, NOW)
    assert view.reason == "Init:0/2 (wait-for-deps)"
    assert view.problems == ()
    pod["status"]["initContainerStatuses"][0]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    assert classify_pod(pod, NOW).reason == "Init:1/2 (bootstrap-realm)"


def test_a_slow_first_pull_leaves_the_bootstrap_jobs_progressing(stack: Stack, default_synth_jobs) -> None:  # noqa: ANN001
    """Issue 15: a deadline counted from the Job's start (pulls included) ended slow first pulls in
    DeadlineExceeded for good. The Jobs now have none: the recorded cold start, still pulling 20
    minutes later, is progressing, never failed; only a real failure (BackoffLimitExceeded) is."""
    assert len(default_synth_jobs) >= 2 and all("activeDeadlineSeconds" not in job["spec"] for job in default_synth_jobs)
    ev = infra_eval(stack, "infra-progressing", now=CREATED + timedelta(minutes=20))
    jobs = {str(w.ref): w for w in ev.pending if w.ref.kind == "Job"}
    assert set(jobs) == {"job/floe-minio-buckets", "job/floe-polaris-init"} and not ev.failed
    assert all(w.state == State.PROGRESSING for w in jobs.values())


@pytest.fixture(scope="module")
def default_synth_jobs(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    from tests.infra.conftest import synth

    result = synth(tmp_path_factory.mktemp("jobs"))
    return [d for d in result.documents if d["kind"] == "Job" and d["metadata"]["labels"].get("app.kubernetes.io/component") == "bootstrap"]
