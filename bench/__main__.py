"""All benchmarks: `make bench` (or `.venv/bin/python -m bench`). Figures are printed, never asserted."""

from __future__ import annotations

import subprocess
import sys

SUITES = ["bench.synth", "bench.memory", "bench.probes", "bench.idle", "bench.deploy", "bench.pipeline", "bench.orchestration", "bench.footprint", "bench.otel"]

if __name__ == "__main__":
    failed = []
    for suite in SUITES:
        print(f"\n=== {suite} ===", flush=True)
        if subprocess.run([sys.executable, "-m", suite]).returncode != 0:
            failed.append(suite)
    sys.exit(1 if failed else 0)
