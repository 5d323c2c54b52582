"""Synth benchmark: wall time of a full synth in a new process (as `make synth` runs it), and the stack's resource totals.

    .venv/bin/python -m bench.synth [--runs N]

Each run is a fresh `python main.py` process (jsii starts its node process anew each time), into a
scratch output folder with a scratch credential store, so the figures are what a user waits for.

The floor beside it, measured in the same runs (alternating): the bare jsii start — a new process that
imports cdk8s and synthesizes an empty chart. The ratio to it is what holds across machines.
"""

from __future__ import annotations

import argparse
import os
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


def cold_synth(out: Path, store: Path) -> float:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "FLOE__CREDENTIALS__STORE": str(store)}
    # A normal environment caches bytecode; without it every run recompiles ~300 modules (+0.8 s).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "main.py", "--out", str(out), "--quiet"], cwd=REPO, env=env, check=True)
    return time.perf_counter() - started


#: The bare jsii start: a new interpreter imports cdk8s (jsii starts node and loads the cdk8s
#: assembly) and synthesizes an empty chart.
JSII_FLOOR = (
    "import sys, cdk8s; app = cdk8s.App(outdir=sys.argv[1]); cdk8s.Chart(app, 'empty'); app.synth()"
)


def jsii_floor(out: Path) -> float:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", JSII_FLOOR, str(out)], cwd=REPO, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as scratch:
        out, store = Path(scratch) / "dist", Path(scratch) / "credentials.json"
        first = cold_synth(out, store)  # writes bytecode and the credential store: not counted
        jsii_floor(Path(scratch) / "floor")  # the same for the floor
        times, floors = [], []
        for _ in range(args.runs):  # alternating, so both see the same machine state
            times.append(cold_synth(out, store))
            floors.append(jsii_floor(Path(scratch) / "floor"))
        documents = load_documents(out)
    ratios = [t / f for t, f in zip(times, floors, strict=True)]
    console.print(
        f"synth (`python main.py`, every check on; new process each run, bytecode warm; {args.runs} runs): "
        f"best {min(times):.2f}s, median {statistics.median(times):.2f}s, max {max(times):.2f}s; "
        f"first run {first:.2f}s; {len(documents)} objects"
    )
    console.print(
        f"floor (bare jsii start: import cdk8s + empty chart, new process, alternating): "
        f"best {min(floors):.2f}s, median {statistics.median(floors):.2f}s -> synth / floor: "
        f"best {min(times) / min(floors):.2f}x, median of run pairs {statistics.median(ratios):.2f}x (target <= 2x)"
    )
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
