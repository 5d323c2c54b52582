"""`make status` says when state was lost and rebuilt, from the last reconcile Job's summary line.

The summary lines are produced by demo/bootstrap/reconcile.py's own Summary (not hand-written), so a
change to the format breaks these tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from demo.bootstrap.reconcile import Summary
from floe.deploy import status
from floe.deploy.kubectl import Completed, Kubectl
from tests.deploy.conftest import FIXTURE_DIST, FakeRunner, FakeTools


def reconcile_job(name: str, created: str) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "floe", "creationTimestamp": created,
                     "labels": {"app.kubernetes.io/name": "floe-reconcile"}},
        "status": {"succeeded": 1, "startTime": created, "completionTime": created,
                   "conditions": [{"type": "Complete", "status": "True"}]},
    }


def rebuilt() -> str:
    s = Summary()
    s.add("bucket", "warehouse", "created")
    s.add("catalog", "floe", "created")
    s.add("table", "floe.raw.orders", "dropped")
    s.add("bucket", "cubestore", "unchanged")
    return "bucket warehouse: created\n" + s.line() + "\n"


def intact() -> str:
    s = Summary()
    for name in ("warehouse", "cubestore"):
        s.add("bucket", name, "unchanged")
    return s.line() + "\n"


def text(line) -> str:  # noqa: ANN001
    console = Console(width=300, record=True)
    console.print(line)
    return console.export_text()


def runner(logs: str, jobs: list[dict]) -> FakeRunner:
    return FakeRunner(rules=[
        (lambda a: "logs" in a, lambda a: Completed(tuple(a), 0, logs, "")),
    ])


def test_lost_and_rebuilt_is_named_with_what_was_recreated() -> None:
    jobs = {"items": [reconcile_job("floe-reconcile-29000000", "2026-11-25T17:00:00Z"),
                      reconcile_job("floe-reconcile-29000002", "2026-11-25T17:02:00Z")]}
    fake = runner(rebuilt(), jobs["items"])
    out = text(status.reconcile_line(Kubectl(runner=fake), "floe", jobs))
    assert "LOST AND REBUILT by floe-reconcile-29000002" in out
    assert "2 created, 1 orphaned tables dropped" in out and "bucket:warehouse:created" in out
    logs_call = next(c for c in fake.calls if "logs" in c)
    assert logs_call == ["kubectl", "logs", "-n", "floe", "job/floe-reconcile-29000002", "-c", "reconcile", "--tail=20"]


def test_intact_failed_and_never_run() -> None:
    jobs = {"items": [reconcile_job("floe-reconcile-1", "2026-11-25T17:00:00Z")]}
    assert "State: intact" in text(status.reconcile_line(Kubectl(runner=runner(intact(), [])), "floe", jobs))
    failed = Summary()
    failed.errors.append("polaris: Polaris at http://floe-polaris:8181 did not become ready")
    out = text(status.reconcile_line(Kubectl(runner=runner(failed.line(), [])), "floe", jobs))
    assert "FAILED" in out and "did not become ready" in out
    assert "no reconcile has run yet" in text(status.reconcile_line(Kubectl(runner=FakeRunner()), "floe", {"items": []}))


def test_make_status_with_the_stand_in_kubectl(fake_tools: FakeTools, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """`python -m floe.deploy status` end to end, kubectl being tests/deploy/bin/fake_kubectl.py."""
    state = {"apiVersion": "v1", "kind": "List", "items": [reconcile_job("floe-reconcile-29000002", "2026-11-25T17:02:00Z")]}
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "reconcile.log").write_text(rebuilt())
    env = {"FAKE_KUBE_STATE_FILE": str(tmp_path / "state.json"), "FAKE_KUBE_RECONCILE_LOG": str(tmp_path / "reconcile.log"),
           "COLUMNS": "300", "FAKE_PF_FAIL": "floe-dagster-webserver"}
    import os

    result = subprocess.run(
        [sys.executable, "-m", "floe.deploy", "status", "--dist", str(FIXTURE_DIST), "--kubectl", fake_tools.kubectl],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env}, cwd=Path(__file__).resolve().parents[2],
    )
    assert "LOST AND REBUILT by floe-reconcile-29000002" in result.stdout, result.stdout + result.stderr
    logs = [c for c in fake_tools.calls() if c[:1] == ["logs"] or c[2:3] == ["logs"]]
    assert any("job/floe-reconcile-29000002" in c for c in logs)
