"""bench/deploy.py on the fixture stack: the numbers it reports follow from the manifests."""

from __future__ import annotations

import json
import os
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


# --- bench/suite.py: the suite against an earlier commit ------------------------------------------

#: test_one: the arm's `make test` runs as if typed at a shell, whatever make `bench.suite` runs under.
TOP_LEVEL_MAKE = """
import os

def test_one():
    assert os.environ["MAKELEVEL"] == "1" and "w" not in os.environ.get("MAKEFLAGS", ""), os.environ
"""

BASE_TESTS = TOP_LEVEL_MAKE + """

def test_two():
    assert False, "fixed in the next commit"

def test_gone():
    pass
"""

HEAD_TESTS = TOP_LEVEL_MAKE + """

def test_two():
    pass

def test_new():
    pass
"""


#: The project's Makefile's shape: PY from the environment (quoted: the checkout's path may hold a
#: space); a recipe line needs a tab.
PYTEST_MAKEFILE = 'PY ?= python3\ntest:\n\t"$(PY)" -m pytest\n'


def two_commit_repo(repo: Path, base: tuple[str, str], head: tuple[str, str]) -> str:
    """A repository of two commits, each (Makefile, tests/test_a.py); the base commit's sha."""
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shas = []
    for makefile, tests in (base, head):
        (repo / "Makefile").write_text(makefile)
        (repo / "tests").mkdir(exist_ok=True)
        (repo / "tests" / "test_a.py").write_text(tests)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"], check=True)
        shas.append(subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip())
    return shas[0]


def run_bench_suite(repo: Path, base: str, scratch: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bench.suite BASE --repo REPO`, its clones under scratch (TMPDIR)."""
    return subprocess.run(
        [sys.executable, "-m", "bench.suite", base, "--repo", str(repo)], cwd=REPO,
        env={**os.environ, "PY": sys.executable, "TMPDIR": str(scratch), **env}, capture_output=True, text=True, timeout=300,
    )


def test_suite_bench_runs_both_commits_on_the_base_ids_head_still_has(tmp_path: Path) -> None:
    """bench/suite.py end to end on a two-commit repository whose `make test` runs pytest: each arm
    a clean clone running its own `make test`, on the base's ids that HEAD kept, alternating, and a
    failing arm flagged."""
    base = two_commit_repo(tmp_path / "a repo", (PYTEST_MAKEFILE, BASE_TESTS), (PYTEST_MAKEFILE, HEAD_TESTS))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # As under `make bench-suite`: a make's MAKEFLAGS and MAKELEVEL (test_one checks they stop here).
    out = run_bench_suite(tmp_path / "a repo", base, scratch, MAKEFLAGS="w", MAKELEVEL="1")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "ids: base 3, head 3; run: the 2 base ids head still has (1 lost: tests/test_a.py::test_gone)" in lines, out.stdout
    runs = [line for line in lines if line.startswith("run ")]
    assert [line.split()[2] for line in runs] == ["head", "base", "base", "head"], runs
    for line in runs:
        if " head " in line:
            assert "(2 passed, 0 failed, 0 errors;" in line and "failures" not in line, line
        else:
            assert "(1 passed, 1 failed, 0 errors;" in line and line.endswith("<- failures: this arm did less work"), line
    assert [line.split(":")[0] for line in lines if line.startswith("pair ")] == ["pair 1", "pair 2"], out.stdout
    assert any(line.startswith("sum: base ") and line.endswith("on 2 tests (target >= 2x)") for line in lines), out.stdout
    assert list(scratch.iterdir()) == []  # the clones and logs went with the run


def test_suite_bench_parses_pytest_summaries() -> None:
    from bench.suite import collected_ids, common_ids, parse_summary, run_order

    summary = parse_summary("x\n===== 10 failed, 1111 passed, 27 warnings in 1055.58s (0:17:35) =====\n")
    assert (summary.passed, summary.failed, summary.errors, summary.pytest_seconds) == (1111, 10, 0, 1055.58)
    summary = parse_summary("1121 passed, 2 errors in 328.60s (0:05:28)\nmake: *** [Makefile:65: test] Error 1\n")
    assert (summary.passed, summary.failed, summary.errors) == (1121, 0, 2)
    assert collected_ids("a.py::t[x y]\n\n===== 1 test collected in 0.1s\n") == ["a.py::t[x y]"]
    assert common_ids(["a", "b", "c"], ["c", "a", "d"]) == (["a", "c"], ["b"])
    assert run_order(3) == ["head", "base", "base", "head", "head", "base"]


def test_suite_bench_names_an_arm_that_collects_nothing(tmp_path: Path) -> None:
    """A base whose `make test` is broken stops the bench with the arm named, and its output shown."""
    broken = "test:\n\t@echo 'no such interpreter' >&2; exit 3\n"
    base = two_commit_repo(tmp_path / "repo", (broken, HEAD_TESTS), (PYTEST_MAKEFILE, HEAD_TESTS))
    out = run_bench_suite(tmp_path / "repo", base, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"bench.suite: base ({base[:10]}) collected no tests; its log is above" in out.stderr
    assert "no such interpreter" in out.stderr


def test_suite_bench_stops_when_head_kept_none_of_the_base_tests(tmp_path: Path) -> None:
    """No common ids: no run (an empty id file would run both whole suites)."""
    base = two_commit_repo(tmp_path / "repo", (PYTEST_MAKEFILE, "def test_gone():\n    pass\n"), (PYTEST_MAKEFILE, HEAD_TESTS))
    out = run_bench_suite(tmp_path / "repo", base, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "bench.suite: HEAD has none of the base's 1 test ids; there is nothing to compare" in out.stderr
    assert not any(line.startswith("run ") for line in out.stdout.splitlines()), out.stdout
