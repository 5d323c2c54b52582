"""The wait loop, phase ordering, the failure report and the command lines, on recorded states."""

from __future__ import annotations

import pytest

from floe.deploy.diagnosis import CapacityNote, render_report
from floe.deploy.kubectl import CommandError, Completed, Kubectl
from floe.deploy.manifests import Stack
from floe.deploy.outcome import ExitCode
from floe.deploy.phases import apply_phase, deploy, progress_line, wait_for
from floe.deploy.readiness import Failure
from tests.deploy.conftest import FakeClock, FakeRunner, state


def test_wait_returns_success_when_progressing_becomes_ready(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    fake.states = [state("infra-progressing")] * 3 + [state("infra-ready")]
    clock = FakeClock()
    seen: list[str] = []
    code, ev, elapsed = wait_for(kubectl, "floe", stack.phases[0], timeout=300, poll_interval=2, clock=clock, on_progress=lambda n, t, e: seen.append(progress_line(e)))
    assert code == ExitCode.SUCCESS and ev.ready
    assert elapsed == 6.0 and clock.sleeps == [2, 2, 2]
    assert "deployment/floe-postgres (floe-postgres-6b7c9d8f5d-x7k2q ContainerCreating)" in seen[0]
    assert seen[-1] == "all ready"
    # The poll is one List call, pinned to the checked context, with a request timeout.
    assert fake.calls[0] == [
        "kubectl", "--context", "docker-desktop", "get", "deployments,statefulsets,daemonsets,jobs,pods", "-n", "floe", "-o", "json", "--request-timeout=10s",
    ]


def test_wait_fails_fast_on_a_fatal_problem(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    fake.states = [state("infra-progressing"), state("image-never-pull")]
    clock = FakeClock()
    code, ev, elapsed = wait_for(kubectl, "floe", stack.phases[0], timeout=600, poll_interval=2, clock=clock)
    assert code == ExitCode.FAILURE
    assert elapsed == 2.0, "the second poll sees ErrImageNeverPull and stops: no waiting out the timeout"
    assert ev.problems[0].failure == Failure.IMAGE_NOT_BUILT


def test_wait_times_out_when_nothing_fails_but_nothing_gets_ready(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    fake.states = [state("not-ready")]
    clock = FakeClock()
    code, ev, elapsed = wait_for(kubectl, "floe", stack.phases[0], timeout=30, poll_interval=4, clock=clock)
    assert code == ExitCode.TIMEOUT
    assert elapsed == pytest.approx(30, abs=0.2)
    assert not ev.failed and [str(w.ref) for w in ev.pending] == ["deployment/floe-polaris"]


def test_wait_tolerates_a_few_failed_polls_but_not_many(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    answers = iter([1, 1, 0])
    fake.rules.append(
        (lambda argv: "deployments,statefulsets,daemonsets,jobs,pods" in argv and next(answers, 0) == 1,
         lambda argv: Completed(tuple(argv), 1, "", "Unable to connect to the server: EOF"))
    )
    fake.states = [state("infra-ready")]
    code, _, _ = wait_for(kubectl, "floe", stack.phases[0], timeout=60, clock=FakeClock())
    assert code == ExitCode.SUCCESS

    broken = FakeRunner(rules=[(lambda argv: True, lambda argv: Completed(tuple(argv), 1, "", "connection refused"))])
    with pytest.raises(Exception, match="connection refused"):
        wait_for(Kubectl(runner=broken), "floe", stack.phases[0], timeout=600, clock=FakeClock())


def test_deploy_applies_phases_in_order_and_waits_between(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    fake.states = [state("full-ready")]
    started: list[str] = []
    result = deploy(kubectl, stack, stack.phases, timeout=60, clock=FakeClock(), on_phase_start=lambda p: started.append(p.name))
    assert result.exit_code == ExitCode.SUCCESS
    assert started == ["infrastructure", "observability", "orchestration", "semantic"]
    verbs = [(c[3], c[-1] if c[3] == "apply" else c[4]) for c in fake.calls]
    dist = str(stack.dist)
    assert verbs == [
        ("apply", "-"),  # the Namespace first, from stdin
        ("apply", f"{dist}/0000-namespace.k8s.yaml"),
        ("apply", f"{dist}/0001-infrastructure.k8s.yaml"),
        ("get", "deployments,statefulsets,daemonsets,jobs,pods"),
        ("apply", f"{dist}/0002-observability.k8s.yaml"),
        ("get", "deployments,statefulsets,daemonsets,jobs,pods"),
        ("apply", f"{dist}/0003-orchestration.k8s.yaml"),
        ("get", "deployments,statefulsets,daemonsets,jobs,pods"),
        ("apply", f"{dist}/0004-semantic.k8s.yaml"),
        ("get", "deployments,statefulsets,daemonsets,jobs,pods"),
    ]
    assert "kind: Namespace" in fake.inputs[0] and "name: floe" in fake.inputs[0]
    assert [p.phase for p in result.phases] == stack.phase_names


def test_deploy_stops_at_the_failing_phase_and_reports(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    fake.states = [state("crash-loop")]
    result = deploy(kubectl, stack, stack.phases, timeout=600, clock=FakeClock(), capacity=CapacityNote(2000, 4 * 2**30))
    assert result.exit_code == ExitCode.FAILURE
    assert [p.phase for p in result.phases] == ["infrastructure"], "later phases are never applied"
    assert not any("0002-observability.k8s.yaml" in " ".join(c) for c in fake.calls)
    # Diagnosis: the namespace's events, then the crashed container's previous logs.
    assert ["kubectl", "--context", "docker-desktop", "get", "events", "-n", "floe", "-o", "json", "--request-timeout=10s"] in fake.calls
    assert ["kubectl", "--context", "docker-desktop", "logs", "-n", "floe", "floe-polaris-6b7c9d8f5d-x7k2q", "--tail=20", "-c", "polaris", "--previous"] in fake.calls
    text = render_report(result.phases[0].report)
    assert "Phase 'infrastructure' failed" in text
    assert "deployment/floe-polaris: progressing (0/1 available)" in text
    assert "floe-polaris-6b7c9d8f5d-x7k2q/polaris: CrashLoopBackOff — crash loop" in text
    assert "BackOff pod/floe-polaris-6b7c9d8f5d-x7k2q (x7): Back-off restarting failed container" in text
    assert "last log lines of floe-polaris-6b7c9d8f5d-x7k2q/polaris (previous run)" in text
    assert 'password authentication failed for user "polaris"' in text
    assert "keeps exiting" in text  # the hint


@pytest.mark.parametrize(
    ("fixture", "expected", "no_logs"),
    [
        ("image-never-pull", ["floe-minio-buckets-q8w2d/buckets: ErrImageNeverPull — image not built", "ErrImageNeverPull pod/floe-minio-buckets-q8w2d (x9)", "run `make image`"], True),
        ("image-pull-backoff", ["ImagePullBackOff — image pull failed: Back-off pulling image \"apache/polaris:1.7.9\""], True),
        ("oom-killed", ["OOMKilled — out of memory", "raise its memory limit", "(previous run)"], False),
        ("pending-insufficient-memory", ["Unschedulable — pending on resources: 0/1 nodes are available: 1 Insufficient memory", "FailedScheduling",
                                          "Docker Desktop > Settings > Resources", "The stack requests 2 CPU and 4Gi memory; the node offers 8 CPU and 7.56Gi"], True),
        ("config-error", ['CreateContainerConfigError — config error: secret "floe-db-polaris" not found', "Secret or ConfigMap"], True),
        ("job-backoff-exceeded", ["job/floe-minio-buckets: failed (Failed (BackoffLimitExceeded))", "BackoffLimitExceeded — job failed", "kubectl delete job", "last log lines of floe-minio-buckets-"], False),
    ],
)
def test_report_names_reason_events_logs_and_hint(stack: Stack, fake: FakeRunner, kubectl: Kubectl, fixture: str, expected: list[str], no_logs: bool) -> None:
    fake.states = [state(fixture)]
    result = deploy(kubectl, stack, stack.phases[:1], timeout=600, clock=FakeClock(start=FakeClock().start.replace(minute=5)),
                    capacity=CapacityNote(2000, 4 * 2**30, 8000, 7923024 * 1024))
    assert result.exit_code == ExitCode.FAILURE
    text = render_report(result.phases[0].report)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} missing from:\n{text}"
    # A container that never started has no logs to fetch.
    assert (not fake.commands("logs")) is no_logs


def test_timeout_report_says_nothing_failed_and_shows_probe_events(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    fake.states = [state("not-ready")]
    result = deploy(kubectl, stack, stack.phases, timeout=20, poll_interval=5, clock=FakeClock())
    assert result.exit_code == ExitCode.TIMEOUT
    text = render_report(result.phases[0].report)
    assert "Phase 'infrastructure' timed out after 20s" in text
    assert "Unhealthy pod/floe-polaris-6b7c9d8f5d-x7k2q (x12): Readiness probe failed: HTTP probe failed with statuscode: 503" in text
    assert "Nothing failed outright" in text
    # A not-ready pod's logs: all its containers, prefixed.
    assert fake.commands("logs")[0][-2:] == ["--all-containers=true", "--prefix=true"]


def test_apply_is_plain_kubectl_apply_with_no_job_special_case(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    """The deploy applies exactly what a user would: an immutable-Job error (which content-named Jobs
    cannot cause) is an apply failure like any other, never a delete-and-retry."""
    fake.rules.append((lambda argv: "apply" in argv, lambda argv: Completed(tuple(argv), 1, "", 'The Job "floe-polaris-init" is invalid: spec.template: field is immutable\n')))
    with pytest.raises(CommandError):
        apply_phase(kubectl, stack.phases[0])
    assert fake.commands("delete") == []
    assert len(fake.commands("apply")) == 1


def test_an_apply_error_stops_the_deploy_with_failure(stack: Stack, fake: FakeRunner, kubectl: Kubectl) -> None:
    fake.rules.append((lambda argv: argv[-1].endswith("0001-infrastructure.k8s.yaml"), lambda argv: Completed(tuple(argv), 1, "", 'error: error validating "x": unknown field "spec.foo"')))
    result = deploy(kubectl, stack, stack.phases, timeout=60, clock=FakeClock())
    assert result.exit_code == ExitCode.FAILURE
    assert "unknown field" in result.phases[0].error
    assert not fake.commands("get")


def test_an_empty_chart_file_is_not_applied(tmp_path, fake: FakeRunner, kubectl: Kubectl) -> None:
    from tests.deploy.conftest import FIXTURE_DIST

    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "0000-infrastructure.k8s.yaml").write_text((FIXTURE_DIST / "0001-infrastructure.k8s.yaml").read_text())
    (dist / "0001-observability.k8s.yaml").write_text("")
    stack = Stack.load(dist)
    fake.states = [state("infra-ready")]
    result = deploy(kubectl, stack, stack.phases, timeout=60, clock=FakeClock())
    assert result.exit_code == ExitCode.SUCCESS
    assert [c[-1].rsplit("/", 1)[-1] for c in fake.calls if "apply" in c and c[-1] != "-"] == ["0000-infrastructure.k8s.yaml"]
