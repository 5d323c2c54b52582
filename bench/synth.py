"""Synth benchmark: wall time of a full synth in a new process (as `make synth` runs it), and the stack's resource totals.

    .venv/bin/python -m bench.synth [--runs N]

Each run is a fresh `python main.py` process (jsii starts its node process anew each time), into a
scratch output folder with a scratch credential store, so the figures are what a user waits for.
Both profiles: the local one (config/local.yaml) and the cluster one (config/cluster.yaml).

The floor beside it, measured in the same runs (alternating): the bare jsii start — a new process that
imports cdk8s and synthesizes an empty chart. The ratio to it is what holds across machines. Beside
the wall time, the CPU time of each run (Python and its node processes, user + sys): on a shared
machine the wall time waits for other work, the CPU time much less so.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from floe.quantities import format_cpu, format_memory
from floe.resources_total import pod_templates, totals
from floe.synth import load_documents

REPO = Path(__file__).resolve().parents[1]


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of a command; CPU counts its children too (the node processes of jsii)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cold_synth(out: Path, store: Path, config: Path | None = None) -> tuple[float, float]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "FLOE__CREDENTIALS__STORE": str(store)}
    # A normal environment caches bytecode; without it every run recompiles ~300 modules (+0.8 s).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    profile = ["--config", str(config)] if config is not None else []
    return _timed([sys.executable, "main.py", "--out", str(out), "--quiet", *profile], env)


#: The bare jsii start: a new interpreter imports cdk8s (jsii starts node and loads the cdk8s
#: assembly) and synthesizes an empty chart.
JSII_FLOOR = (
    "import sys, cdk8s; app = cdk8s.App(outdir=sys.argv[1]); cdk8s.Chart(app, 'empty'); app.synth()"
)


def jsii_floor(out: Path) -> tuple[float, float]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return _timed([sys.executable, "-c", JSII_FLOOR, str(out)], env)


#: The profiles measured: (name, --config or None for the default).
PROFILES = [("local", None), ("cluster", REPO / "config" / "cluster.yaml")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as scratch:
        out, store = Path(scratch) / "dist", Path(scratch) / "credentials.json"
        floor_out = Path(scratch) / "floor"
        first = {name: cold_synth(out, store, config)[0] for name, config in PROFILES}  # bytecode, credentials: not counted
        jsii_floor(floor_out)  # the same for the floor
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in PROFILES}
        floors: list[tuple[float, float]] = []
        for _ in range(args.runs):  # alternating, so all see the same machine state
            for name, config in PROFILES:
                runs[name].append(cold_synth(out, store, config))
                floors.append(jsii_floor(floor_out))
        cold_synth(out, store)  # the default profile's dist/, for the resource table below
        documents = load_documents(out)
    floor_wall = statistics.median(w for w, _ in floors)
    floor_cpu = statistics.median(c for _, c in floors)
    console.print(
        f"floor (bare jsii start: import cdk8s + empty chart, new process, alternating with the synths; {len(floors)} runs): "
        f"wall median {floor_wall:.2f}s (best {min(w for w, _ in floors):.2f}s), CPU median {floor_cpu:.2f}s"
    )
    for name, _ in PROFILES:
        walls, cpus = [w for w, _ in runs[name]], [c for _, c in runs[name]]
        console.print(
            f"synth, {name} profile (`python main.py`, every check on; new process each run, bytecode warm; {args.runs} runs): "
            f"wall median {statistics.median(walls):.2f}s (best {min(walls):.2f}s, max {max(walls):.2f}s; first run {first[name]:.2f}s) "
            f"= {statistics.median(walls) / floor_wall:.2f}x the floor; CPU median {statistics.median(cpus):.2f}s "
            f"= {statistics.median(cpus) / floor_cpu:.2f}x the floor's (target <= 2x)"
        )
    console.print(f"{len(documents)} objects in the local profile's dist/")
    table = Table(title="requests / limits per workload (x replicas)", title_justify="left")
    for column in ("workload", "replicas", "cpu req", "mem req", "cpu lim", "mem lim"):
        table.add_column(column, justify="right" if column != "workload" else "left")
    for doc, _, replicas in pod_templates(documents):
        t = totals([doc])
        table.add_row(
            f"{doc['kind']}/{doc['metadata']['name']}", str(replicas),
            format_cpu(t.cpu_request), format_memory(t.memory_request), format_cpu(t.cpu_limit), format_memory(t.memory_limit),
        )
    t = totals(documents)
    table.add_row("[bold]total[/]", str(t.containers), format_cpu(t.cpu_request), format_memory(t.memory_request),
                  format_cpu(t.cpu_limit), format_memory(t.memory_limit))
    console.print(table)


if __name__ == "__main__":
    main()
