"""Memory footprint of the stack's Python processes, measured on the embedded lakehouse.

    .venv/bin/python -m bench.footprint [--seconds N]

Starts ``python -m demo.local ui`` (SeaweedFS + ``dagster dev``: webserver, daemon, code server)
on a scratch data folder, lets the seed sensor fire and its run finish, samples the resident set
size (RSS, /proc/<pid>/status VmRSS) of every process of the tree once a second, and prints the
peak per kind of process. Then runs one generation tick + dbt build (``demo.local run``) and
reports the peak RSS of that process tree: what the Dagster user-code pod holds while a run
executes in it. These figures size the memory requests in floe/config.py (their comments cite
this benchmark); JVM, Node.js and Go services cannot run here and are sized from their budgets.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from demo.processes import stop_process_group

REPO = Path(__file__).resolve().parents[1]
MiB = 2**20

# Which process is which, by its command line.
KINDS = (
    ("dagster_webserver", "webserver"),
    ("dagster-webserver", "webserver"),
    ("dagster._daemon", "daemon"),
    ("dagster-daemon", "daemon"),
    # `dagster dev` runs the code server as `code-server start`, which serves from a spawned child.
    ("code-server start", "code server (user-code): proxy"),
    ("multiprocessing.spawn", "code server (user-code): server"),
    ("api grpc", "code server (user-code): server"),
    ("multiprocessing.resource_tracker", "code server (user-code): proxy"),
    ("dbt", "dbt"),
    ("weed", "SeaweedFS (stand-in, not in the stack)"),
    ("dagster dev", "dagster dev (local only)"),
    ("demo.local run", "run: demo.local run (run worker + ingest, in-process)"),
    ("demo.local", "demo.local (local only)"),
)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _rss_and_cmd(pid: int) -> tuple[int, str] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    rss = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return rss, cmd


def _kind(cmd: str) -> str:
    return next((kind for marker, kind in KINDS if marker in cmd), "other: " + cmd[:60])


def sample(root: int, peaks: dict[str, int]) -> None:
    per_kind: dict[str, int] = defaultdict(int)
    for pid in _tree(root):
        got = _rss_and_cmd(pid)
        if got:
            per_kind[_kind(got[1])] += got[0]
    for kind, rss in per_kind.items():
        peaks[kind] = max(peaks.get(kind, 0), rss)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_ui(data_dir: Path, seconds: float) -> dict[str, int]:
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(data_dir / "dagster-home")}
    process = subprocess.Popen(
        [sys.executable, "-m", "demo.local", "ui", "--data-dir", str(data_dir), "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    peaks: dict[str, int] = {}
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and process.poll() is None:
            sample(process.pid, peaks)
            time.sleep(1.0)
    finally:
        stop_process_group(process, signal.SIGINT, timeout=60)
    return peaks


def measure_run(data_dir: Path) -> dict[str, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "demo.local", "run", "--data-dir", str(data_dir)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    peaks: dict[str, int] = {}
    total = 0
    while process.poll() is None:
        sample(process.pid, peaks)
        total = max(total, sum((_rss_and_cmd(pid) or (0, ""))[0] for pid in _tree(process.pid)))
        time.sleep(0.5)
    peaks["whole run tree (incl. SeaweedFS)"] = total
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=90.0, help="how long to sample the idle UI stack")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="floe-footprint-") as scratch:
        data = Path(scratch) / "lake"
        ui = measure_ui(data, args.seconds)
        run = measure_run(data)
    print(f"peak RSS per process kind, `demo.local ui` sampled 1/s for {args.seconds:.0f}s (seed run included):")
    for kind, rss in sorted(ui.items()):
        print(f"  {kind:45} {rss / MiB:7.0f} MiB")
    print("peak RSS during one generation tick + dbt build (`demo.local run`):")
    for kind, rss in sorted(run.items()):
        print(f"  {kind:45} {rss / MiB:7.0f} MiB")


if __name__ == "__main__":
    main()
