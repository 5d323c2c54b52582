"""Where the local main job's time goes: `python -m bench.orchestration [--ticks N]`.

Starts a throwaway SeaweedFS, then times: loading the Dagster definitions (imports + dbt manifest),
the seed run, and N schedule ticks (append + `dbt build`) through Dagster with `execute_job`, split
into the raw step and the dbt step from Dagster's own step durations. Lineage/tracing stay off
(unset endpoints) so the figures are the pipeline's own.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from demo.lakehouse.local import local_lakehouse

console = Console()


def _step_seconds(result, step: str) -> float:  # type: ignore[no-untyped-def]
    return sum(
        (e.event_specific_data.duration_ms or 0) / 1000
        for e in result.all_events
        if e.is_step_success and e.step_key == step and e.event_specific_data is not None
    )


def main(ticks: Annotated[int, typer.Option(help="Schedule ticks to time")] = 2) -> None:
    from bench.pipeline import dbt_floor_s

    floor = dbt_floor_s()  # dbt's own start on this machine, now: the dbt step is quoted against it
    for name in ("OPENLINEAGE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        os.environ.pop(name, None)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="floe-bench-orch-") as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        with local_lakehouse(base / "seaweedfs") as lake:
            rows.append(("SeaweedFS ready", time.perf_counter() - started, ""))
            os.environ.update(lake.env())
            os.environ["FLOE_DBT_DUCKDB_PATH"] = str(base / "dbt.duckdb")
            os.environ["DAGSTER_HOME"] = str(base / "dagster")
            (base / "dagster").mkdir()
            (base / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

            t = time.perf_counter()
            from dagster import DagsterInstance, execute_job, reconstructable

            from demo.orchestration.definitions import seed_job_def, tick_job_def
            from demo.orchestration.raw import raw_run_config

            rows.append(("load definitions", time.perf_counter() - t, "imports + dbt manifest"))
            quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
            # dagster-dbt copies dbt's output to stdout: keep the figures readable.
            with DagsterInstance.get() as instance, open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                t = time.perf_counter()
                seeded = execute_job(
                    reconstructable(seed_job_def), instance,
                    run_config={**raw_run_config("seed", run_key="bench-seed"), **quiet},
                )
                assert seeded.success
                rows.append(("seed run", time.perf_counter() - t, f"raw step {_step_seconds(seeded, 'raw_tables'):.1f} s"))
                for n in range(1, ticks + 1):
                    t = time.perf_counter()
                    ticked = execute_job(
                        reconstructable(tick_job_def), instance,
                        run_config={**raw_run_config("append", run_key=f"bench-tick-{n}"), **quiet},
                    )
                    assert ticked.success
                    rows.append(
                        (
                            f"tick {n} run",
                            time.perf_counter() - t,
                            f"raw step {_step_seconds(ticked, 'raw_tables'):.1f} s, "
                            f"dbt step {_step_seconds(ticked, 'dbt_models'):.1f} s "
                            f"({_step_seconds(ticked, 'dbt_models') / floor:.1f}x dbt --version)",
                        )
                    )
        rows.append(("total", time.perf_counter() - started, "incl. SeaweedFS shutdown"))
    table = Table(title="local pipeline through Dagster")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    table.add_column("detail")
    for phase, seconds, detail in rows:
        table.add_row(phase, f"{seconds:.1f}", detail)
    console.print(table)
    console.print(f"floor: dbt --version in a new process {floor:.1f} s (dbt's own start on this machine)")
    console.print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    typer.run(main)
