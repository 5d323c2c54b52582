"""Stopping a child process tree: used by the local main job, the tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Send ``sig`` to the process group of ``process`` (started with ``start_new_session=True``),
    wait up to ``timeout`` seconds, then SIGKILL whatever is left. A finished process is left alone."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
