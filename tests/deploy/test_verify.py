"""`python -m floe.deploy verify` against the stand-in kubectl (tests/deploy/bin): the Job it creates,
the report it prints, the exit codes, what it keeps for `make status`, and what it refuses to do.

The verifier's log lines are produced by demo/verify/report.py's own CheckResult/Report (not
hand-written), so a change to the output contract breaks these tests. The pods and Jobs it reads
are recorded shapes (fixtures/verify-*.json, written by fixtures/author_states.py).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, UTC
from pathlib import Path

import pytest
from typer.testing import CliRunner

from demo.verify.report import CheckResult, Report
from floe.deploy import verify
from floe.deploy.cli import app
from floe.deploy.kubectl import Completed, Kubectl
from floe.deploy.manifests import Stack
from tests.deploy.conftest import FIXTURE_DIST, FakeRunner, FakeTools, state

CHECKS_OK = [
    CheckResult("polaris-catalog", "pass", "catalog floe; namespaces raw, staging, marts"),
    CheckResult("polaris-reader-refused-write", "pass", "403 on create table"),
    CheckResult("minio-buckets", "pass", "warehouse: 412 objects, cubestore: 37 objects"),
    CheckResult("data-marts-agree", "pass", "orders 12,040 = 12,040; revenue 1,203,311.20 = 1,203,311.20"),
    CheckResult("cube-latency", "pass", "p50 18 ms, p95 41 ms over 30 queries (plan: 100 ms)"),
    CheckResult("marquez-lineage", "pass", "raw -> staging -> marts: 9 edges"),
    CheckResult("jaeger-traces", "pass", "37 traces of floe-dagster-user-code with dbt and iceberg spans"),
]


def log_text(report: Report, noise: bool = True) -> str:
    lines = ["INFO verify: starting"] if noise else []
    lines += [c.progress_line() for c in report.checks]
    return "\n".join(lines + [report.report_line()]) + "\n"


@pytest.fixture
def verify_env(fake_tools: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    def setup(report: Report | None, state_name: str = "exit-0", text: str | None = None) -> None:
        log = tmp_path / "verify.log"
        log.write_text(text if text is not None else log_text(report))  # type: ignore[arg-type]
        monkeypatch.setenv("FAKE_VERIFY_LOG", str(log))
        monkeypatch.setenv("FAKE_VERIFY_STATE", state_name)

    return setup


def run(fake_tools: FakeTools, *args: str):
    return CliRunner().invoke(app, ["verify", *args, "--dist", str(FIXTURE_DIST), "--kubectl", fake_tools.kubectl, "--poll", "0.01"],
                              env={"COLUMNS": "250"}, catch_exceptions=False)


def created(fake_tools: FakeTools) -> dict:
    return json.loads(Path(f"{fake_tools.log}.created.json").read_text())


def applied(fake_tools: FakeTools) -> list[dict]:
    path = Path(f"{fake_tools.log}.applied.jsonl")
    return [json.loads(json.loads(line)) for line in path.read_text().splitlines()] if path.exists() else []


def kept(fake_tools: FakeTools) -> dict:
    (config_map,) = [d for d in applied(fake_tools) if d["kind"] == "ConfigMap"]
    return json.loads(config_map["data"][verify.LAST_KEY])


def verbs(fake_tools: FakeTools) -> list[str]:
    return [" ".join(c[2:4] if c[:1] == ["--context"] else c[:2]) for c in fake_tools.calls()]


# --- the happy path --------------------------------------------------------------------------------


def test_happy_path_creates_one_job_streams_progress_prints_one_table_and_keeps_the_result(fake_tools: FakeTools, verify_env) -> None:  # noqa: ANN001
    verify_env(Report(CHECKS_OK))
    result = run(fake_tools)
    assert result.exit_code == 0, result.output
    out = result.output
    # Progress lines as the verifier printed them, then ONE table with every check.
    assert "[verify] polaris-catalog: pass catalog floe" in out and "INFO verify: starting" not in out
    assert out.count("Verify") >= 1 and "p50 18 ms, p95 41 ms" in out
    assert "verify ok: 7/7 checks passed" in out and "read-only: no pipeline run is launched" in out
    job = created(fake_tools)
    assert job["metadata"]["name"].startswith("floe-verify-") and job["metadata"]["name"] != "floe-verify-b59e4da3"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "demo.verify"] and container["args"] == ["--timeout", "600"]
    assert job["spec"]["activeDeadlineSeconds"] == 600 + verify.START_ALLOWANCE_SECONDS
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # Every call pinned to the context that was checked; the ground checked before anything was created.
    calls = verbs(fake_tools)
    assert calls.index("get --raw=/readyz") < calls.index("get namespace") < calls.index("create -f")
    assert all(c[:2] == ["--context", "docker-desktop"] for c in fake_tools.calls() if c[:1] != ["config"])
    # Kept for `make status`: a ConfigMap in the namespace with the parsed report.
    record = kept(fake_tools)
    assert record["exit_code"] == 0 and record["job"] == job["metadata"]["name"] and record["report"]["ok"] is True
    assert len(record["report"]["checks"]) == 7 and record["context"] == "docker-desktop" and record["trigger"] is False


def test_trigger_is_the_only_way_to_launch_a_run(fake_tools: FakeTools, verify_env) -> None:  # noqa: ANN001
    verify_env(Report(CHECKS_OK))
    result = run(fake_tools, "--trigger", "--timeout", "900")
    assert result.exit_code == 0, result.output
    job = created(fake_tools)
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["--timeout", "900", "--trigger"]
    assert job["spec"]["activeDeadlineSeconds"] == 900 + verify.START_ALLOWANCE_SECONDS
    assert "--trigger: one generation run is launched" in result.output and kept(fake_tools)["trigger"] is True


def test_a_disabled_service_is_reported_as_skipped_not_failed(fake_tools: FakeTools, verify_env) -> None:  # noqa: ANN001
    checks = [*CHECKS_OK[:-1], CheckResult("jaeger-traces", "skip", "Jaeger is switched off (jaeger.enabled: false)")]
    verify_env(Report(checks))
    result = run(fake_tools)
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "6/6 checks passed, 1 skipped" in result.output


# --- failures --------------------------------------------------------------------------------------


def test_one_failing_check_exits_1_with_what_to_do(fake_tools: FakeTools, verify_env) -> None:  # noqa: ANN001
    checks = list(CHECKS_OK)
    checks[4] = CheckResult("cube-latency", "fail", "p50 140 ms, p95 380 ms over 30 queries (plan: 100 ms)",
                            "the rollup was not served from Cube Store: check the refresh worker's log")
    verify_env(Report(checks), "exit-1")
    result = run(fake_tools)
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "check the refresh worker's log" in result.output
    assert "verify FAILED: 6/7 checks passed; failed: cube-latency" in result.output
    record = kept(fake_tools)
    assert record["exit_code"] == 1 and record["report"]["ok"] is False


def test_a_verifier_timeout_exits_2(fake_tools: FakeTools, verify_env) -> None:  # noqa: ANN001
    checks = [*CHECKS_OK[:3], CheckResult("data-marts-agree", "fail", "timed out after 120s", "the service is too slow or stuck")]
    verify_env(Report(checks, timed_out=True), "exit-2")
    result = run(fake_tools)
    assert result.exit_code == 2, result.output
    assert "TIMED OUT" in result.output and kept(fake_tools)["exit_code"] == 2


def test_a_verifier_that_dies_without_its_report_is_a_failure_with_its_last_lines(fake_tools: FakeTools, verify_env) -> None:  # noqa: ANN001
    verify_env(None, "exit-1", text="Traceback (most recent call last):\nModuleNotFoundError: No module named 'demo.verify'\n")
    result = run(fake_tools)
    assert result.exit_code == 1
    assert "without its report" in result.output and "ModuleNotFoundError" in result.output
    record = kept(fake_tools)
    assert record["report"] is None and "without its report" in record["problem"]


def test_image_not_on_the_node_is_diagnosed_and_the_job_removed(fake_tools: FakeTools, verify_env) -> None:  # noqa: ANN001
    verify_env(Report(CHECKS_OK), "image-never-pull")
    result = run(fake_tools)
    assert result.exit_code == 1
    assert "ErrImageNeverPull — image not built" in result.output and "run `make image`" in result.output
    name = created(fake_tools)["metadata"]["name"]
    deletes = [c for c in fake_tools.calls() if "delete" in c]
    assert deletes and deletes[0][2:5] == ["delete", "job", name]
    assert not any("logs" in c and "-f" in c for c in fake_tools.calls()), "no log to follow from a pod that never started"
    assert "did not start" in kept(fake_tools)["problem"]


# --- bad input: nothing is created -----------------------------------------------------------------


def test_namespace_missing_is_reported_and_nothing_created(fake_tools: FakeTools, verify_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    verify_env(Report(CHECKS_OK))
    monkeypatch.setenv("FAKE_KUBE_NO_NAMESPACE", "1")
    result = run(fake_tools)
    assert result.exit_code == 1
    assert "namespace 'floe' does not exist on context docker-desktop" in result.output and "make deploy-local-full" in result.output
    assert not any(v.startswith(("create", "apply", "delete")) for v in verbs(fake_tools))


def test_unreachable_context_is_reported_and_nothing_created(fake_tools: FakeTools, verify_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    verify_env(Report(CHECKS_OK))
    monkeypatch.setenv("FAKE_KUBE_UNREACHABLE", "1")
    result = run(fake_tools)
    assert result.exit_code == 1
    assert "the API server does not answer" in result.output and "connection to the server 127.0.0.1:6443 was refused" in result.output
    assert "Nothing was verified" in result.output
    assert not any(v.startswith(("create", "apply", "delete", "get namespace")) for v in verbs(fake_tools))


def test_a_remote_context_is_refused_unless_allowed(fake_tools: FakeTools, verify_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    verify_env(Report(CHECKS_OK))
    monkeypatch.setenv("FAKE_KUBE_CONTEXT", "prod-eks")
    monkeypatch.setenv("FAKE_KUBE_SERVER", "https://ABCD.gr7.eu-west-1.eks.amazonaws.com")
    assert run(fake_tools).exit_code == 1
    assert not any(v.startswith(("get", "create")) for v in verbs(fake_tools)), "a refused cluster is never contacted"
    assert run(fake_tools, "--allow-context", "prod-eks").exit_code == 0


@pytest.mark.parametrize("half_up", ["infra-ready", "crash-loop"])
def test_a_half_up_stack_is_reported_and_nothing_created(fake_tools: FakeTools, verify_env, monkeypatch: pytest.MonkeyPatch, half_up: str) -> None:  # noqa: ANN001
    verify_env(Report(CHECKS_OK))
    monkeypatch.setenv("FAKE_KUBE_STATE", half_up)
    result = run(fake_tools)
    assert result.exit_code == 1
    out = result.output
    assert "the stack is not up" in out and "nothing was verified" in out
    if half_up == "infra-ready":
        assert "deployment/floe-cube: not created yet" in out and "4 of 9 workloads" not in out
    else:
        assert "floe-polaris-6b7c9d8f5d-x7k2q CrashLoopBackOff" in out and "The container keeps exiting" in out
    assert not any(v.startswith(("create", "apply", "delete")) for v in verbs(fake_tools))


def test_without_the_synthesized_job_it_says_to_synthesize(fake_tools: FakeTools, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    for path in FIXTURE_DIST.glob("*.k8s.yaml"):
        (dist / path.name).write_text(path.read_text())
    result = CliRunner().invoke(app, ["verify", "--dist", str(dist), "--kubectl", fake_tools.kubectl], env={"COLUMNS": "250"})
    assert result.exit_code == 1 and "verify.k8s.yaml does not exist: synthesize first" in result.output
    assert fake_tools.calls() == []


# --- the Job of one run ----------------------------------------------------------------------------


def test_each_run_has_its_own_name_and_the_template_is_untouched() -> None:
    template = verify.load_template(FIXTURE_DIST)
    before = copy.deepcopy(template)
    now = datetime(2026, 11, 25, 17, 10, 0, tzinfo=UTC)
    a = verify.run_manifest(template, run_id=verify.new_run_id(now), timeout=60, trigger=False)
    b = verify.run_manifest(template, run_id=verify.new_run_id(now), timeout=60, trigger=True)
    assert a["metadata"]["name"] != b["metadata"]["name"] and a["metadata"]["name"].startswith("floe-verify-20261125-171000-")
    assert template == before
    # The NetworkPolicy selects the pods by name/instance: every run keeps those labels.
    for job in (a, b):
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "floe-verify" and labels["app.kubernetes.io/instance"] == "floe"
        assert len(job["metadata"]["name"]) <= 52  # room for the pod suffix within 63


def test_a_latency_budget_reaches_the_verifier_and_the_default_stays_the_plans() -> None:
    """CI passes `--latency-budget-ms` (a shared runner); without it the verifier keeps 100 ms."""
    from demo.verify.settings import VerifySettings

    template = verify.load_template(FIXTURE_DIST)
    now = datetime(2026, 11, 25, 17, 10, 0, tzinfo=UTC)
    plain = verify.run_manifest(template, run_id=verify.new_run_id(now), timeout=60, trigger=False)
    ci = verify.run_manifest(template, run_id=verify.new_run_id(now), timeout=60, trigger=False, latency_budget_ms=400)
    env = {e["name"]: e.get("value") for e in ci["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[verify.LATENCY_BUDGET_ENV] == "400"
    assert verify.LATENCY_BUDGET_ENV not in {e["name"] for e in plain["spec"]["template"]["spec"]["containers"][0].get("env") or []}
    assert VerifySettings.env_name("verify_latency_budget_ms") == verify.LATENCY_BUDGET_ENV
    assert VerifySettings.model_fields["verify_latency_budget_ms"].default == 100.0


# --- `make status` ---------------------------------------------------------------------------------


def _config_map_list(record: dict) -> dict:
    template = verify.load_template(FIXTURE_DIST)
    return {"apiVersion": "v1", "kind": "List", "items": [verify.record_config_map("floe", template, record)]}


def test_status_shows_the_last_verify() -> None:
    now = datetime(2026, 11, 25, 17, 30, 0, tzinfo=UTC)
    ok = verify.Outcome(verify.ExitCode.SUCCESS, job="floe-verify-x", report=Report([*CHECKS_OK[:6], CheckResult("jaeger-traces", "skip", "off")]),
                        started=datetime(2026, 11, 25, 17, 10, 0, tzinfo=UTC), finished=datetime(2026, 11, 25, 17, 11, 2, tzinfo=UTC))
    fake = FakeRunner(rules=[(lambda a: "configmaps" in a, lambda a: Completed(tuple(a), 0, json.dumps(_config_map_list(verify.record(ok, "docker-desktop"))), ""))])
    line = str(__import__("floe.deploy.status", fromlist=["verify_line"]).verify_line(Kubectl(runner=fake), "floe", now))
    assert line == "Last verify: 2026-11-25T17:11:02Z (18m ago) ok (6/6 checks passed, 1 skipped)"
    assert fake.calls[0][-5:] == ["-l", "floe.dev/verify-report=last", "-o", "json", "--request-timeout=10s"]
    failed = verify.Outcome(verify.ExitCode.FAILURE, job="floe-verify-y", report=Report([CHECKS_OK[0], CheckResult("cube-latency", "fail", "p95 380 ms", "see")]),
                            started=now, finished=now)
    text, style = verify.summary_line(verify.record(failed, None), now)
    assert text.endswith("FAILED (1/2 checks passed; failed: cube-latency)") and style == "red"
    assert verify.summary_line(None, now)[0].startswith("Last verify: never")


# --- deploy timings --------------------------------------------------------------------------------


def test_timings_per_phase_from_the_clusters_timestamps(stack: Stack) -> None:
    timings = verify.deploy_timings(stack, state("deploy-timed"))
    assert [(p.phase, p.seconds) for p in timings.phases] == [
        ("infrastructure", 85.0), ("observability", 38.0), ("orchestration", 44.0), ("semantic", 40.0)]
    assert timings.seconds == 211.0 and verify.format_seconds(timings.seconds) == "3m 31s"


def test_timings_over_the_plan_fail_and_name_the_slowest_phase(stack: Stack) -> None:
    from floe.deploy.cli import _timings_check

    cluster = state("deploy-timed")
    for item in cluster["items"]:
        if item["metadata"]["name"] == "floe-cube-6b7c9d8f5d-x7k2q":
            next(c for c in item["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"] = "2026-11-25T17:06:00Z"
    name, status, figure, hint = _timings_check(verify.deploy_timings(stack, cluster))
    assert status == "fail" and figure.startswith("6m 00s from the first apply to all Ready (plan: 5m 00s)")
    assert "slowest phase: semantic (3m 09s)" in hint
    assert _timings_check(verify.deploy_timings(stack, state("deploy-timed")))[1] == "pass"


def test_timings_survive_bootstrap_jobs_deleted_after_their_ttl(stack: Stack) -> None:
    cluster = state("deploy-timed")
    cluster["items"] = [i for i in cluster["items"] if i["kind"] != "Job" and not i["metadata"]["name"].startswith(("floe-minio-buckets", "floe-polaris-init"))]
    infra = verify.deploy_timings(stack, cluster).phases[0]
    assert infra.seconds == 70.0  # the Deployments alone: polaris Ready at 17:01:10
    assert any("deleted after its TTL" in u for u in infra.unknown)


def test_timings_with_the_cli(fake_tools: FakeTools, verify_env, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    verify_env(Report(CHECKS_OK))
    monkeypatch.setenv("FAKE_KUBE_STATE", "deploy-timed")
    result = run(fake_tools, "--timings")
    assert result.exit_code == 0, result.output
    assert "Last deploy (from the cluster's timestamps)" in result.output and "infrastructure" in result.output
    assert "3m 31s from the first apply to all Ready (plan: 5m 00s)" in result.output and "8/8 checks passed" in result.output
