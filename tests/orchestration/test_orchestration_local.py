"""The local main job as a user runs it: `python -m demo.local run`, a re-run on the same data, and
SeaweedFS stopped when the command ends (normally or by SIGTERM)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def local_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "OPENLINEAGE", "OTEL_", "DAGSTER_"))}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLOE_DUCKDB_EXTENSION_DIRECTORY": str(tmp_path / "ext"),
            "COLUMNS": "120",
            # Progress lines every 2 s (not a terminal): the test sees the long steps' elapsed time.
            "FLOE_PROGRESS_INTERVAL": "2",
        }
    )
    return env


def run_local(tmp_path: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demo.local", "run", "--data-dir", str(data_dir), *args],
        cwd=tmp_path, env=local_env(tmp_path), capture_output=True, text=True, timeout=600,
    )


def weed_processes(data_dir: Path) -> list[str]:
    """Command lines of `weed` processes serving ``data_dir`` (read from /proc, nothing is killed)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "weed" in text and str(data_dir) in text:
            found.append(text)
    return found


def orders_now(output: str) -> int:
    match = re.search(r"raw tables now: .*orders=(\d+)", output)
    assert match, output
    return int(match.group(1))


def test_run_then_rerun_reuses_the_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "lakehouse"
    first = run_local(tmp_path, data_dir, "--orders", "10")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "seed: raw tables need data" in out
    assert "✓ seed_raw_tables" in out and "✓ generate_and_build" in out
    # Progress that moves (issue 16): the dbt step prints its elapsed seconds while it runs.
    ticks = [int(n) for n in re.findall(r"\.\.\. generation tick: new orders \+ dbt build through Dagster \((\d+) s\)", out)]
    assert len(ticks) >= 2 and ticks == sorted(ticks) and ticks[-1] >= 4, out
    for title in ("revenue by category", "order status funnel", "orders by region", "top customers by lifetime value"):
        assert title in out
    assert "where the data lives" in out and str(data_dir) in out
    assert "SeaweedFS stopped." in out
    assert not weed_processes(data_dir)
    assert (data_dir / "dagster" / "dagster.yaml").exists()
    assert list((data_dir / "logs").glob("run-*.log"))
    orders_first = orders_now(out)

    second = run_local(tmp_path, data_dir, "--orders", "10")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "seed: skipped, all raw tables have rows" in second.stdout
    assert orders_now(second.stdout) == orders_first + 10
    assert not weed_processes(data_dir)


def test_sigterm_stops_the_lakehouse(tmp_path: Path) -> None:
    data_dir = tmp_path / "lakehouse"
    process = subprocess.Popen(
        [sys.executable, "-m", "demo.local", "run", "--data-dir", str(data_dir)],
        cwd=tmp_path, env=local_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not weed_processes(data_dir):
            assert process.poll() is None and time.monotonic() < deadline, "lakehouse never started"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output
    assert "interrupted" in output
    deadline = time.monotonic() + 15
    while weed_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not weed_processes(data_dir)


#: A SIGTERM whose KeyboardInterrupt is raised inside a weakref callback, where Python prints
#: "Exception ignored" and drops it: what happens when it lands while importlib runs its module-lock
#: callback (_get_module_lock's cb) during one of the run's many imports.
DROPPED_INTERRUPT = """
import os, signal, sys, time, weakref
from demo.local import _sigterm_interrupts

class Module:
    pass

def on_collect(_):
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):  # the handler runs here, inside the callback
        pass

try:
    with _sigterm_interrupts():
        ref = weakref.ref(Module(), on_collect)  # the object dies at once: the callback runs
        print("went on", flush=True)
        time.sleep(60)
        print("never stopped", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_a_sigterm_whose_interrupt_is_dropped_still_stops_the_run(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", DROPPED_INTERRUPT], cwd=tmp_path, env=local_env(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert "Exception ignored" in result.stderr and "KeyboardInterrupt" in result.stderr, result.stderr
    assert result.stdout.split() == ["went", "on", "interrupted"], result.stdout + result.stderr
    assert result.returncode == 130
    assert time.monotonic() - started < 50  # re-delivered, not the sleep running out


def test_reset_refuses_a_folder_it_did_not_create(tmp_path: Path) -> None:
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    result = run_local(tmp_path, foreign, "--reset")
    assert result.returncode != 0
    assert (foreign / "keep.txt").read_text() == "mine"


@pytest.fixture(autouse=True)
def _no_leftover_weed(tmp_path: Path):
    yield
    assert not weed_processes(tmp_path), "a test left SeaweedFS running"


def test_ui_serves_the_definitions_on_the_local_lakehouse_and_stops_cleanly(tmp_path: Path) -> None:
    import httpx

    from tests.support.postgres import free_port

    data_dir = tmp_path / "lakehouse"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "demo.local", "ui", "--data-dir", str(data_dir), "--port", str(port)],
        cwd=tmp_path, env=local_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    query = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name sensors { name sensorState { status } } schedules { name cronSchedule } } } } }"
    try:
        deadline = time.monotonic() + 240
        nodes = None
        while time.monotonic() < deadline and not nodes:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10)
                nodes = response.json()["data"]["repositoriesOrError"].get("nodes")
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                time.sleep(0.5)
        assert nodes, "Dagster UI never served the code location"
        sensors = {s["name"]: s["sensorState"]["status"] for s in nodes[0]["sensors"]}
        assert sensors == {"seed_when_raw_tables_empty": "RUNNING"}
        assert nodes[0]["schedules"] == [{"name": "generate_orders_every_5_minutes", "cronSchedule": "*/5 * * * *"}]
        assert weed_processes(data_dir)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 15
    while weed_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not weed_processes(data_dir)


def test_preload_imports_exist_and_are_not_ours() -> None:
    """demo.preload swallows a failed import (the main thread raises it later): a module a Dagster
    upgrade renamed would silently stop overlapping, so each name must resolve. None of ours: our
    modules read the environment the lakehouse sets up, after the preload began."""
    import importlib.util

    from demo.preload import HEAVY_MODULES

    for name in HEAVY_MODULES:
        assert importlib.util.find_spec(name) is not None, name
        assert name.split(".")[0] not in {"demo", "floe", "tests"}, name
