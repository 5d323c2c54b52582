"""A run whose pod disappears is failed, not left hanging (dagster.run_monitoring, issue 18 item 1).

Real Dagster (the cluster profile's dagster.yaml from dist/, its K8sRunLauncher from dagster-k8s
0.29.27, the daemon's own MonitoringDaemon iteration), real PostgreSQL made by our init script. Only
the Kubernetes API is absent: the kubernetes client's methods the launcher calls are replaced by an
in-memory namespace (:class:`FakeJobs`) that answers as the API server does, 404 for a Job that is
gone. The run is launched the way the QueuedRunCoordinator daemon launches it
(``DagsterInstance.launch_run``: STARTING, then K8sRunLauncher.launch_run creates the Job).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import kubernetes
import pytest
import yaml

from constructs.dagster import INSTANCE_FILE
from floe.synth import SynthResult
from tests.contract.test_k8s_run_launcher import cluster, in_cluster, instance  # noqa: F401 - fixtures
from tests.support.manifests import find

NAMESPACE = "floe"


@dataclass
class FakeJobs:
    """The Jobs of the namespace as the launcher's API calls see them."""

    jobs: dict[str, dict] = field(default_factory=dict)
    status: dict[str, kubernetes.client.V1JobStatus] = field(default_factory=dict)

    def install(self, patch: pytest.MonkeyPatch) -> None:
        store = self

        def create_namespaced_job(self, namespace, body, **kwargs):  # noqa: ANN001, ANN202 - the client's signature
            job = kubernetes.client.ApiClient().sanitize_for_serialization(body)
            store.jobs[job["metadata"]["name"]] = job
            store.status[job["metadata"]["name"]] = kubernetes.client.V1JobStatus(active=1)
            return body

        def read_namespaced_job_status(self, name, namespace, **kwargs):  # noqa: ANN001, ANN202
            if name not in store.jobs:
                raise kubernetes.client.rest.ApiException(status=404, reason="Not Found")
            return kubernetes.client.V1Job(metadata=kubernetes.client.V1ObjectMeta(name=name), status=store.status[name])

        def list_namespaced_job(self, namespace, **kwargs):  # noqa: ANN001, ANN202
            return kubernetes.client.V1JobList(items=[])

        def empty_pods(self, namespace, **kwargs):  # noqa: ANN001, ANN202
            return kubernetes.client.V1PodList(items=[])

        def empty_events(self, namespace, **kwargs):  # noqa: ANN001, ANN202
            return kubernetes.client.CoreV1EventList(items=[])

        patch.setattr(kubernetes.client.BatchV1Api, "create_namespaced_job", create_namespaced_job)
        patch.setattr(kubernetes.client.BatchV1Api, "read_namespaced_job_status", read_namespaced_job_status)
        patch.setattr(kubernetes.client.BatchV1Api, "list_namespaced_job", list_namespaced_job)
        patch.setattr(kubernetes.client.CoreV1Api, "list_namespaced_pod", empty_pods)
        patch.setattr(kubernetes.client.CoreV1Api, "list_namespaced_event", empty_events)
        # dagster-k8s retries failed API calls with a sleep in between: no waiting here.
        patch.setattr("dagster_k8s.client.DEFAULT_WAIT_BETWEEN_ATTEMPTS", 0, raising=False)


class _ProcessContext:
    """What the daemon hands each iteration (IWorkspaceProcessContext): the instance, and a request
    context used only to resume runs, which max_resume_run_attempts 0 never does."""

    def __init__(self, instance) -> None:  # noqa: ANN001
        self.instance = instance

    def create_request_context(self):  # noqa: ANN202
        return None


def _monitor(instance, now: float | None = None) -> None:  # noqa: ANN001
    """One iteration of the daemon's MonitoringDaemon, optionally at another wall-clock time."""
    from dagster._daemon.daemon import MonitoringDaemon

    # The daemon controller starts a MonitoringDaemon only for an instance that requires one.
    assert "MONITORING" in instance.get_required_daemon_types()
    daemon = MonitoringDaemon(interval_seconds=instance.run_monitoring_poll_interval_seconds)
    daemon._logger = logging.getLogger("monitoring")  # noqa: SLF001 - set by the daemon controller
    with pytest.MonkeyPatch.context() as patch:
        if now is not None:
            patch.setattr("dagster._daemon.monitoring.run_monitoring.get_current_timestamp", lambda: now)
        errors = [e for e in daemon.run_iteration(_ProcessContext(instance)) if e is not None]
    assert errors == []


def _launched_run(instance, fake: FakeJobs):  # noqa: ANN001, ANN202
    """A run of our code location, launched as the run queue daemon launches it."""
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.test_utils import create_run_for_test

    from demo.bootstrap.image import APP_DIR
    from demo.orchestration.definitions import TICK_JOB

    origin = JobPythonOrigin(
        TICK_JOB,
        RepositoryPythonOrigin(
            executable_path="python",
            code_pointer=ModuleCodePointer("demo.orchestration.definitions", "defs", APP_DIR),
            container_image="floe-project:0.1.0",
            entry_point=["dagster"],
            container_context=None,
        ),
    )
    run = create_run_for_test(instance, job_name=TICK_JOB, run_id=str(uuid.uuid4()), job_code_origin=origin)
    before = set(fake.jobs)
    instance.launch_run(run.run_id, workspace=None)
    (job_name,) = set(fake.jobs) - before
    return instance.get_run_by_id(run.run_id), job_name


def _started(instance, run) -> None:  # noqa: ANN001
    """What the run worker reports once its pod runs (dagster api execute_run: RUN_START)."""
    from dagster._core.events import DagsterEvent, DagsterEventType

    instance.report_dagster_event(DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name), run_id=run.run_id)


@pytest.fixture
def fake_jobs(instance, monkeypatch: pytest.MonkeyPatch) -> FakeJobs:  # noqa: ANN001, F811 - fixture
    fake = FakeJobs()
    fake.install(monkeypatch)
    return fake


def test_the_cluster_instance_monitors_runs(cluster: SynthResult, instance) -> None:  # noqa: ANN001, F811
    """dist/'s dagster.yaml turns monitoring on (off is Dagster's default) without resuming runs,
    and the run Jobs fail when their run fails."""
    rendered = yaml.safe_load(find(cluster.documents, "ConfigMap", "floe-dagster-instance")["data"][INSTANCE_FILE])
    assert rendered["run_monitoring"] == {"enabled": True, "start_timeout_seconds": 180, "poll_interval_seconds": 60, "max_resume_run_attempts": 0}
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_start_timeout_seconds == 180
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert "MONITORING" in instance.get_required_daemon_types()
    assert instance.run_launcher.fail_pod_on_run_failure is True
    # No run retries unless asked (dagster.run_retries.max_retries).
    assert not instance.run_retries_enabled and "EVENT_LOG_CONSUMER" not in instance.get_required_daemon_types()


def test_the_run_worker_exits_non_zero_on_a_failed_run(instance, fake_jobs: FakeJobs) -> None:  # noqa: ANN001, F811
    """fail_pod_on_run_failure reaches the Job: the run worker is told to set its exit code, so the
    pod (restartPolicy Never) and the Job (backoffLimit 0) end Failed, not Complete."""
    _, job_name = _launched_run(instance, fake_jobs)
    job = fake_jobs.jobs[job_name]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == ["dagster", "api", "execute_run"]
    assert '"set_exit_code_on_failure": true' in container["args"][3]


def test_a_started_run_whose_job_is_deleted_is_failed_at_the_next_poll(instance, fake_jobs: FakeJobs) -> None:  # noqa: ANN001, F811
    """The run pod runs, then its Job disappears (deleted, or evicted with its pod gone): the next
    monitoring poll marks the run failed; with the Job still active it stays STARTED."""
    from dagster._core.storage.dagster_run import DagsterRunStatus

    run, job_name = _launched_run(instance, fake_jobs)
    _started(instance, run)
    _monitor(instance)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED  # healthy: left alone
    del fake_jobs.jobs[job_name]
    _monitor(instance)
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == DagsterRunStatus.FAILURE
    # Within one poll of the deletion, well inside the start timeout.
    assert instance.run_monitoring_poll_interval_seconds < instance.run_monitoring_start_timeout_seconds


def test_a_started_run_whose_pod_was_killed_is_failed(instance, fake_jobs: FakeJobs) -> None:  # noqa: ANN001, F811
    """OOM-killed or evicted run pod: the Job (backoffLimit 0) reports failed with no active pod."""
    from dagster._core.storage.dagster_run import DagsterRunStatus

    run, job_name = _launched_run(instance, fake_jobs)
    _started(instance, run)
    fake_jobs.status[job_name] = kubernetes.client.V1JobStatus(active=None, failed=1)
    _monitor(instance)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE


def test_a_run_whose_job_vanished_before_it_started_is_failed_within_the_start_timeout(instance, fake_jobs: FakeJobs) -> None:  # noqa: ANN001, F811
    """The Job is deleted (or its pod never pulls its image) before the run worker starts: the run
    is STARTING, failed by the start timeout, not before, and not left hanging after."""
    from dagster._core.storage.dagster_run import DagsterRunStatus

    run, job_name = _launched_run(instance, fake_jobs)
    assert run.status == DagsterRunStatus.STARTING
    del fake_jobs.jobs[job_name]
    launched = instance.get_run_stats(run.run_id).launch_time
    timeout = instance.run_monitoring_start_timeout_seconds
    _monitor(instance, now=launched + timeout - 1)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTING
    _monitor(instance, now=launched + timeout)
    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == DagsterRunStatus.FAILURE
    message = " ".join(e.message or "" for e in instance.all_logs(run.run_id))
    assert f"longer than {timeout} seconds to start" in message


def test_the_run_queue_moves_on_after_a_dead_run(instance, fake_jobs: FakeJobs) -> None:  # noqa: ANN001, F811
    """With max_concurrent_runs 1, the failed run no longer holds the queue's only slot."""
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES, RunsFilter

    run, job_name = _launched_run(instance, fake_jobs)
    _started(instance, run)
    in_progress = RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES)
    assert run.run_id in {r.run_id for r in instance.get_runs(filters=in_progress)}
    del fake_jobs.jobs[job_name]
    _monitor(instance)
    assert run.run_id not in {r.run_id for r in instance.get_runs(filters=in_progress)}


# --- run Jobs under GitOps (issue 18 item 2) ----------------------------------------------------

#: Argo CD's tracking keys: the label of label tracking (argocd-cm application.instanceLabelKey,
#: default app.kubernetes.io/instance) and the annotation of annotation tracking.
ARGOCD_TRACKING_LABEL = "app.kubernetes.io/instance"
ARGOCD_TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"


def test_no_object_the_launcher_creates_carries_the_applications_tracking_label(cluster: SynthResult, instance, fake_jobs: FakeJobs) -> None:  # noqa: ANN001, F811
    """The Job (and the pod its template makes) that K8sRunLauncher creates for a run is no object of
    the Argo CD Application of docs/examples, under label or annotation tracking: an object created
    at run time that carried it would be OutOfSync and pruned while running. Its pods are selected
    (NetworkPolicy) by floe's own labels, not by app.kubernetes.io/instance."""
    from tests.infra.test_gitops_examples import EXAMPLES

    application = yaml.safe_load((EXAMPLES / "argocd-application.yaml").read_text())
    app_name = application["metadata"]["name"]
    assert app_name == "floe"  # the stack's own objects keep app.kubernetes.io/instance: floe
    _, job_name = _launched_run(instance, fake_jobs)
    job = fake_jobs.jobs[job_name]
    created = {"Job": job["metadata"], "pod": job["spec"]["template"]["metadata"]}
    for what, meta in created.items():
        labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
        assert labels.get(ARGOCD_TRACKING_LABEL) not in (app_name, "dagster"), what
        assert ARGOCD_TRACKING_ANNOTATION not in annotations, what
        assert not any(k.startswith("argocd.argoproj.io/") for k in {**labels, **annotations}), what
        assert labels["floe.dev/stack"] == "floe" and labels["app.kubernetes.io/name"] == "floe-dagster-run", what
    assert not job["metadata"].get("ownerReferences")
    policy = find(cluster.documents, "NetworkPolicy", "floe-dagster-run")["spec"]["podSelector"]
    assert policy == {"matchLabels": {"app.kubernetes.io/name": "floe-dagster-run", "floe.dev/stack": "floe"}}
    assert policy["matchLabels"].items() <= created["pod"]["labels"].items()
    # Every object floe applies itself does carry the Application's name (label tracking: unchanged).
    for doc in cluster.documents:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["labels"].get(ARGOCD_TRACKING_LABEL) == app_name, f"{doc['kind']}/{doc['metadata']['name']}"
