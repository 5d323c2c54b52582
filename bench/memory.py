"""Memory settings per container vs its limit, read back from a fresh synth (floe.memory_audit).

    .venv/bin/python -m bench.memory

Prints, for every JVM, Node.js, Go, DuckDB and PostgreSQL container, the settings that size it, the
pools they add up to and the container limit; problems are listed under the table (never asserted:
tests/infra/test_memory_sizing.py does that).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from floe.memory_audit import audit
from floe.synth import load_documents

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    console = Console(width=200)
    with tempfile.TemporaryDirectory() as scratch:
        out, store = Path(scratch) / "dist", Path(scratch) / "credentials.json"
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "FLOE__CREDENTIALS__STORE": str(store)}
        subprocess.run([sys.executable, "main.py", "--out", str(out), "--quiet"], cwd=REPO, env=env, check=True)
        findings = audit(load_documents(out))
    table = Table(title="memory settings per container (MiB; budget = 90% of the limit)", title_justify="left")
    for column in ("container", "runtime", "settings", "heap", "pools total", "budget", "limit", "ok"):
        table.add_column(column, justify="left" if column in ("container", "runtime", "settings") else "right")
    for f in findings:
        heap = f.pools.get("heap", f.pools.get("old space", f.pools.get("GOMEMLIMIT")))
        table.add_row(
            f"{f.workload}/{f.container}", f.runtime,
            "\n".join(f"{k}={v}" for k, v in f.settings.items()) or "-",
            "-" if heap is None else str(heap),
            str(f.used_mib) if f.pools else "-", str(f.budget_mib), str(f.limit_mib),
            "yes" if not f.errors else "[red]no[/]",
        )
    console.print(table)
    for f in findings:
        for error in f.errors:
            console.print(f"[red]{f.workload}/{f.container}[/]: {error}")


if __name__ == "__main__":
    main()
