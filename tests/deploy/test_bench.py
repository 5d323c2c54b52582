"""bench/deploy.py on the fixture stack: the numbers it reports follow from the manifests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import FIXTURE_DIST

REPO = Path(__file__).parents[2]


def test_bench_reports_requests_and_detection_times() -> None:
    out = subprocess.run([sys.executable, "bench/deploy.py", "--dist", str(FIXTURE_DIST), "--json"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    mi = 2**20
    assert report["requests"]["steady_memory"] == (256 + 256 + 512 + 128 + 512 + 512 + 1024 + 2 * 512 + 512) * mi
    # 8 GiB host -> 4 GiB VM (Docker Desktop default 50 %): the fixture stack's 4.6 GiB does not fit; 16 GiB does.
    fits = {h["host_memory_gib"]: h["steady_fits"] for h in report["docker_desktop"]}
    assert fits == {8: False, 16: True, 32: True}
    by_container = {(d["workload"], d["container"]): d for d in report["detection"]}
    # minio: liveness period 10, failureThreshold 2, timeout 5 -> killed 15 s after a hang starts;
    # 3 runs + back-offs 10 s and 20 s + one 2 s poll.
    minio = by_container[("deployment/floe-minio", "minio")]
    assert (minio["probe"], minio["kill_after_hang_s"], minio["hang_detect_s"]) == ("liveness", 15, 3 * 15 + 30 + 2)
    assert by_container[("deployment/floe-dagster-webserver", "webserver")]["hang_detect_s"] is None  # readiness only
    assert report["by_failure_s"]["CrashLoopBackOff, exits at start-up"] == 32


def test_idle_cost_items_follow_from_the_manifests(tmp_path: Path) -> None:
    """bench/idle.py's table (`make bench`): every exec probe costed from floe/probe_costs.py, every
    kubelet probe counted, calls per hour from periods and the reconcile schedule."""
    from bench.idle import job_items, probe_items, runs_per_hour
    from tests.infra.conftest import synth

    assert runs_per_hour("*/2 * * * *") == 30 and runs_per_hour("7 * * * *") == 1 and runs_per_hour("0,30 * * * *") == 2
    docs = synth(tmp_path).documents
    items = probe_items(docs)
    daemon = next(i for i in items if i.name == "floe-dagster-daemon/daemon livenessProbe")
    assert daemon.kind == "exec probe" and daemon.per_call is not None and daemon.per_hour_calls == 360
    assert all(i.per_call is not None for i in items if i.kind == "exec probe")
    assert any(i.kind == "kubelet probe" and i.per_call is None for i in items)
    assert {i.name for i in job_items(docs)} == {"floe-minio-buckets", "floe-polaris-init"}
