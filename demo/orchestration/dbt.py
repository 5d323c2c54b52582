"""The dbt models as Dagster assets (dagster-dbt), with a span and OpenLineage events per model.

``dbt build`` runs the models and their tests; dagster-dbt turns each model into a materialization
and each dbt test into an asset check. A failing test makes ``dbt build`` exit non-zero, which
dagster-dbt raises at the end of the stream (``DbtCliInvocation._raise_on_error``): the step, and so
the run, fails, the test's asset check is recorded as failed and the models downstream of the
failing one are skipped by dbt (not materialized).

dbt runs **in this process** (:class:`InProcessDbt`, dbt-core's programmatic ``dbtRunner``), not as a
``dbt`` subprocess: the run process has already imported dbt (dagster-dbt imports it), so a child
process would import it all again (3-6 s here) and build its own adapter. dagster-dbt's event
handling is unchanged: dbt's events reach it as the same JSON lines the CLI prints with
``--log-format json``. Parsing is partial (dbt's own ``partial_parse.msgpack``, see
:meth:`FloeDbtCliResource._get_unique_target_path`): only what changed since the last parse —
the baked one in ``target/dagster`` at first — is parsed again, by dbt's own rules.

dbt has no OpenTelemetry or OpenLineage hook of its own here: after the invocation we read its
``run_results.json`` and ``manifest.json`` and emit, per executed node, a child span with the node's
real start/end times (from ``timing``) and, per model, OpenLineage START + COMPLETE/FAIL events with
the model's inputs (its ``depends_on`` models and sources) and its output table.
"""


import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.core import resource as _dbt_resource_module
from dagster_dbt.core.dbt_cli_invocation import PARTIAL_PARSE_FILE_NAME, DbtCliInvocation
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from packaging import version

from demo.ingest import catalog
from demo.lakehouse.maintenance import Compaction, compact_tables
from demo.lakehouse.settings import LakehouseSettings
from demo.observability import tracing
from demo.observability.lineage import DatasetRef, JobRef, Lineage, RunState, iceberg_dataset, lineage
from demo.orchestration import dbt_schemas
from demo.orchestration.observed import start_step_span
from demo.orchestration.settings import PipelineSettings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt"
#: Our own target folder for the manifest Dagster loads (dbt runs from Dagster use one folder per
#: invocation under target/, see DbtCliResource._get_unique_target_path).
MANIFEST_TARGET = "target/dagster"
#: The DuckDB alias of the attached Iceberg catalog in the dbt profile (demo.lakehouse.duckdb).
CATALOG_ALIAS = "lake"


def dbt_executable() -> str:
    """``dbt`` from this environment's bin folder (DbtCliResource runs plain ``dbt`` from PATH)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


#: dbt's stdout log level under the CLI: the events dagster-dbt reads from a ``dbt`` process are
#: those printed at this level and above (the result events ``LogModelResult``/``LogTestResult`` are
#: info, errors are collected from ``error``).
_STDOUT_LEVELS = frozenset({"info", "warn", "error"})
#: dbt's exit codes (dbt.cli.main: 0 success, 1 a node failed, 2 dbt itself failed).
_EXIT_FAILURE, _EXIT_ERROR = 1, 2
#: dbt invocations in this process run one at a time: dbt keeps its flags, adapter and event
#: manager in module globals.
_DBT_LOCK = threading.Lock()
#: Held while dagster-dbt's resource module sees the in-process invocation class.
_PATCH_LOCK = threading.Lock()


#: The variables the dbt project reads with ``env_var()`` while parsing (dbt_project.yml: the marts
#: schema; models/sources.yml: the raw schema), by the LakehouseSettings field each one sets.
PARSE_ENV_FIELDS = ("namespace_raw", "namespace_marts")


def with_parse_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with each variable of :data:`PARSE_ENV_FIELDS` set explicitly: its value, else
    LakehouseSettings' default (what the pipeline's own code uses then).

    dbt's partial-parse check records an ``env_var()`` that fell back to its default as a placeholder,
    not as the value: a parse made where the variable is unset (the image build) would not match a
    run where it is set to the very same value (every pod: the constructs set it), and dbt would parse
    the whole project again. Spelled out, the two match whenever the values do.
    """
    explicit = dict(env)
    for field in PARSE_ENV_FIELDS:
        name = LakehouseSettings.env_name(field)
        if not explicit.get(name):
            explicit[name] = str(LakehouseSettings.model_fields[field].default)
    return explicit


@contextlib.contextmanager
def _environment(env: Mapping[str, str], cwd: Path) -> Iterator[None]:
    """``env`` applied to this process's environment for the duration, restored afterwards.

    dagster-dbt hands its ``dbt`` subprocess an environment (``DBT_TARGET_PATH``, ``DBT_LOG_PATH``,
    ``DBT_LOG_FORMAT``, ``DBT_PROJECT_DIR``, indirect selection, ...); dbt reads those (and the
    ``env_var()`` calls of the project) from ``os.environ``. Paths the subprocess would have resolved
    against its working directory (the project) are made absolute against it here.
    """
    changed = {k: v for k, v in env.items() if os.environ.get(k) != v}
    for key in ("DBT_TARGET_PATH", "DBT_LOG_PATH"):
        if key in changed and not Path(changed[key]).is_absolute():
            changed[key] = str(cwd / changed[key])
    saved = {k: os.environ.get(k) for k in changed}
    os.environ.update(changed)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class InProcessDbt:
    """dbt run in this process by dbt-core's ``dbtRunner``, behind the part of ``subprocess.Popen``
    that dagster-dbt's ``DbtCliInvocation`` uses (``args``, ``stdout``, ``wait``, ``returncode``,
    ``send_signal``).

    dbt's events come from a ``dbtRunner`` callback, serialized exactly as the CLI's
    ``--log-format json`` lines (``msg_to_dict``: ``{"info": ..., "data": ...}``) at the CLI's stdout
    level, and written to a pipe that dagster-dbt reads as the process's stdout. dbt's own stdout
    logger is off (``--log-level none``): dagster-dbt re-prints each event, as with the subprocess;
    dbt's debug log file (``DBT_LOG_PATH``/dbt.log) is written as before.
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        self.args = list(args)
        self.returncode: int | None = None
        self._errors_seen = False
        # `--quiet`: the CLI prints errors only.
        self._levels = frozenset({"error"}) if {"--quiet", "-q"} & set(self.args) else _STDOUT_LEVELS
        read_fd, write_fd = os.pipe()
        self.stdout = os.fdopen(read_fd, "rb")
        self._pipe = os.fdopen(write_fd, "wb")
        self._thread = threading.Thread(
            target=self._run, args=(self.args[1:], dict(env), cwd), name="dbt-in-process", daemon=True
        )
        self._thread.start()

    def _emit(self, line: bytes) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):  # the reader gave up (interrupted run)
            self._pipe.write(line + b"\n")
            self._pipe.flush()

    def _on_event(self, msg: Any) -> None:
        if msg.info.level in self._levels:
            from dbt_common.events.functions import msg_to_dict

            self._errors_seen = self._errors_seen or msg.info.level == "error"
            self._emit(orjson.dumps(msg_to_dict(msg)))

    def _emit_error(self, exc: BaseException) -> None:
        """An error dbt raised without an event of its own, as an error event (dagster-dbt collects
        those into the step's error message)."""
        if not self._errors_seen:
            message = f"dbt failed: {type(exc).__name__}: {exc}"
            self._emit(orjson.dumps({"info": {"level": "error", "msg": message, "name": "MainEncounteredError"}, "data": {}}))

    def _run(self, dbt_args: list[str], env: dict[str, str], cwd: Path) -> None:
        code = _EXIT_ERROR
        try:
            from dbt.cli.main import dbtRunner

            with _DBT_LOCK, _environment(with_parse_env(env), cwd):
                dbt_schemas.use_saved(cwd / MANIFEST_TARGET / dbt_schemas.FILE_NAME)  # the baked parse's
                # The log file keeps the CLI's default level (it would follow --log-level otherwise).
                file_level = [] if "--log-level-file" in dbt_args or "DBT_LOG_LEVEL_FILE" in os.environ else [
                    "--log-level-file", "debug"
                ]
                result = dbtRunner(callbacks=[self._on_event]).invoke(
                    [*dbt_args, "--log-level", "none", *file_level]
                )
            baked = cwd / MANIFEST_TARGET
            if baked.is_dir():  # what this process built that the baked file lacks (a parse baked before it)
                dbt_schemas.save(baked / dbt_schemas.FILE_NAME)
            code = 0 if result.success else (_EXIT_ERROR if result.exception is not None else _EXIT_FAILURE)
            if result.exception is not None:
                self._emit_error(result.exception)
        except BaseException as exc:  # noqa: BLE001 - reported on the stream, the exit code says it failed
            self._emit_error(exc)
        finally:
            _close_duckdb_environment()
            self.returncode = code
            with contextlib.suppress(OSError):
                self._pipe.close()

    def wait(self, timeout: float | None = None) -> int:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def send_signal(self, signum: int) -> None:
        """dbt in a thread cannot be interrupted; an interrupted Dagster step ends its process."""


def _close_duckdb_environment() -> None:
    """Close the DuckDB instance dbt-duckdb 1.11 keeps for the process (``DuckDBConnectionManager._ENV``)
    when an invocation ends, as the end of a ``dbt`` process did: the next invocation attaches the
    catalog again from the FLOE_* of its own time, never through a connection made for an earlier one."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        with contextlib.suppress(Exception):
            environment.close()


class _InProcessDbtCliInvocation(DbtCliInvocation):
    """``DbtCliInvocation`` whose ``run`` starts :class:`InProcessDbt` where dagster-dbt 0.29 starts a
    ``dbt`` process; the rest (event stream, errors, artifacts) is dagster-dbt's own. Like dagster-dbt's
    ``run``, it first copies the target-path root's ``partial_parse.msgpack`` into the invocation's
    folder."""

    @classmethod
    def run(  # type: ignore[override]
        cls, args: Sequence[str], env: dict[str, str], manifest: Mapping[str, Any],
        dagster_dbt_translator: DagsterDbtTranslator, project_dir: Path, target_path: Path,
        raise_on_error: bool, context: Any, adapter: Any, cli_version: version.Version,
        dbt_project: DbtProject | None = None,
    ) -> DbtCliInvocation:
        root = _target_root(project_dir)
        cached, destination = root / PARTIAL_PARSE_FILE_NAME, target_path / PARTIAL_PARSE_FILE_NAME
        if cached.exists() and not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, destination)
        return cls(
            process=InProcessDbt(args, env, project_dir),  # type: ignore[arg-type]
            manifest=manifest, project=dbt_project, dagster_dbt_translator=dagster_dbt_translator,
            project_dir=project_dir, target_path=target_path, raise_on_error=raise_on_error,
            context=context, adapter=adapter, cli_version=cli_version,
        )


def _target_root(project_dir: Path) -> Path:
    """dbt's target-path root as dagster-dbt resolves it (``DBT_TARGET_PATH``, else ``target``, relative
    to the project)."""
    root = Path(os.getenv("DBT_TARGET_PATH", "target"))
    return root if root.is_absolute() else Path(project_dir) / root


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


class FloeDbtCliResource(DbtCliResource):
    """DbtCliResource that runs dbt in this process with partial parsing.

    * dbt in-process: :class:`InProcessDbt` (see the module docstring).
    * dbt's version from the installed package: dagster-dbt 0.29 asks the executable
      (``DbtCliResource._cli_version``, ``dbt --version``, 5 s on a busy machine) to tell dbt-core from
      the fusion engine; dbt-core is installed in this same environment.
    * No adapter of dagster-dbt's own: it builds one only for column metadata and row counts, which
      these assets do not fetch; dbt registers its adapter for the invocation itself.
    * Partial parsing across runs: dagster-dbt copies ``partial_parse.msgpack`` from the target-path
      root (``DBT_TARGET_PATH``) into each invocation's folder; the root is seeded from the manifest
      parsed at image build (``target/dagster``) and refreshed after every invocation, so a run
      re-parses only what changed (an env var the project reads, a model file) — dbt decides.
    """

    @property
    def _cli_version(self) -> version.Version:  # type: ignore[override]
        from dbt.version import __version__ as dbt_core_version

        return version.parse(dbt_core_version)

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:  # type: ignore[override]
        """dagster-dbt's ``cli`` with the invocation run in this process (dagster-dbt's resource module
        names ``DbtCliInvocation`` directly, so it is swapped for the call; one dbt runs at a time)."""
        root = _target_root(Path(self.project_dir))
        own_folder = kwargs.get("target_path") is None  # a folder under the root, made by dagster-dbt
        if own_folder:
            _seed_partial_parse(Path(self.project_dir), root)
        with _PATCH_LOCK, _patched(_dbt_resource_module, "DbtCliInvocation", _InProcessDbtCliInvocation):
            invocation = super().cli(args, **kwargs)
        if own_folder:
            _refresh_partial_parse_after(invocation, root)
        return invocation


def _seed_partial_parse(project_dir: Path, root: Path) -> None:
    """The target-path root's ``partial_parse.msgpack``, from the parse baked into the image
    (``target/dagster``) when the root has none yet (a new pod, a new data folder)."""
    cached, baked = root / PARTIAL_PARSE_FILE_NAME, project_dir / MANIFEST_TARGET / PARTIAL_PARSE_FILE_NAME
    if not cached.exists() and baked.exists():
        with contextlib.suppress(OSError):  # an unwritable root only costs a full parse
            root.mkdir(parents=True, exist_ok=True)
            _replace_file(baked, cached)


def _refresh_partial_parse_after(invocation: DbtCliInvocation, root: Path) -> None:
    """Once the invocation has ended, its ``partial_parse.msgpack`` (what dbt parsed this time)
    becomes the root's, for the next invocation."""
    process = invocation.process
    wait = process.wait

    def wait_then_refresh(timeout: float | None = None) -> int:
        code = wait(timeout)
        fresh = invocation.target_path / PARTIAL_PARSE_FILE_NAME
        if fresh.exists():
            with contextlib.suppress(OSError):
                _replace_file(fresh, root / PARTIAL_PARSE_FILE_NAME)
        return code

    process.wait = wait_then_refresh  # type: ignore[method-assign]


def _replace_file(source: Path, destination: Path) -> None:
    """Copy ``source`` over ``destination`` atomically (a reader never sees half a file)."""
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.{threading.get_ident()}")
    shutil.copyfile(source, partial)
    os.replace(partial, destination)


def dbt_project() -> DbtProject:
    return DbtProject(
        project_dir=DBT_PROJECT_DIR,
        profiles_dir=DBT_PROJECT_DIR,
        target_path=MANIFEST_TARGET,
        target=PipelineSettings().dbt_target,
    )


def ensure_manifest(project: DbtProject) -> Path:
    """``dbt parse`` into ``target/dagster`` unless a manifest is there (an image bakes it at build).

    Processes that import the definitions at once (test workers, a webserver and a daemon) parse one
    at a time (a lock file beside the folder), and each parse is written to a folder of its own that
    is renamed into place: a reader never sees half a manifest.
    """
    reparse = os.environ.get("FLOE_PIPELINE_REPARSE") == "1"
    if project.manifest_path.exists() and not reparse:
        return project.manifest_path
    folder = Path(project.project_dir) / project.target_path
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if project.manifest_path.exists() and not reparse:
            return project.manifest_path  # parsed by another process while this one waited
        fresh = folder.with_name(f".{folder.name}.{os.getpid()}")
        shutil.rmtree(fresh, ignore_errors=True)
        FloeDbtCliResource(
            project_dir=str(project.project_dir),
            profiles_dir=str(project.profiles_dir),
            target=project.target,
            dbt_executable=dbt_executable(),
        ).cli(["parse", "--quiet"], target_path=fresh).wait()
        dbt_schemas.save(fresh / dbt_schemas.FILE_NAME)
        if folder.exists():
            stale = folder.with_name(f".{folder.name}.stale.{os.getpid()}")
            folder.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        fresh.rename(folder)
    return project.manifest_path


def dbt_resource() -> DbtCliResource:
    project = dbt_project()
    return FloeDbtCliResource(
        project_dir=str(project.project_dir),
        profiles_dir=str(project.profiles_dir),
        target=project.target,
        dbt_executable=dbt_executable(),
    )


class FloeDbtTranslator(DagsterDbtTranslator):
    """Model keys ``[<layer>, <model>]`` with the layer from the model's folder (``staging``,
    ``marts``), grouped the same way.

    dagster-dbt's default key uses the model's configured schema, and the marts schema is
    ``env_var('FLOE_NAMESPACE_MARTS')``: the asset graph would change with the Iceberg namespace.
    Sources keep the default ``[<source>, <table>]`` = ``["raw", <table>]`` (see raw.py).
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props.get("resource_type") in ("model", "seed", "snapshot"):
            return AssetKey([_layer(dbt_resource_props), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") in ("model", "seed", "snapshot"):
            return _layer(dbt_resource_props)
        return super().get_group_name(dbt_resource_props)


def _layer(dbt_resource_props: Mapping[str, Any]) -> str:
    fqn = dbt_resource_props.get("fqn") or []
    # fqn = [project, <folder>..., model]; a model at the top of models/ has no folder.
    return str(fqn[1]) if len(fqn) > 2 else "dbt"


#: Failed builds' target folders kept for a look (dbt.log, run_results.json), newest first.
KEPT_FAILED_TARGETS = 5


def prune_failed_targets(root: Path, *, keep: int, current: Path) -> None:
    """Delete all but the newest ``keep`` invocation folders under ``root`` (never ``current``).

    Each failed build leaves about 2 MB (dbt's debug log and manifest) on the pod's /tmp, an emptyDir
    with a sizeLimit: a schedule failing every 5 minutes (the catalog down overnight) would otherwise
    fill it, and the kubelet evicts a pod over its limit. Only dagster-dbt's own folders
    (``<op>-<run>-<id>``) are touched, not the baked parse or the partial-parse file."""
    prefix = current.name.rsplit("-", 2)[0] + "-"
    folders = []
    for folder in root.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):  # another run may delete or create one meanwhile
            if folder.is_dir() and folder != current:
                folders.append((folder.stat().st_mtime, folder))
    folders.sort(reverse=True)
    for _mtime, folder in folders[max(keep - 1, 0):]:  # ``current`` is one of the ``keep``
        shutil.rmtree(folder, ignore_errors=True)


TRANSLATOR = FloeDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
PROJECT = dbt_project()
MANIFEST = ensure_manifest(PROJECT)


@dbt_assets(manifest=MANIFEST, project=PROJECT, dagster_dbt_translator=TRANSLATOR, name="dbt_models")
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    settings = LakehouseSettings()
    # This body yields to Dagster while dbt runs: spans get explicit parents instead of being made
    # current (see demo.orchestration.observed.step_scope).
    step = start_step_span(context)
    build = tracing.tracer().start_span(
        "dbt build",
        context=trace.set_span_in_context(step.span),
        attributes={"dbt.project_dir": str(DBT_PROJECT_DIR), "dbt.command": "build"},
    )
    invocation = None
    try:
        invocation = dbt.cli(["build"], context=context)
        yield from invocation.stream()
    except BaseException as exc:
        for span in (build, step.span):
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:1000]))
        raise
    finally:
        # On success and on failure alike: say what dbt did before the error propagates.
        if invocation is not None:
            succeeded = invocation.is_successful()
            build.set_attribute("dbt.success", succeeded)
            artifacts = dbt_artifacts(invocation.target_path)
            if artifacts is not None:  # None: dbt failed before running anything; the step error says why
                report_dbt_invocation(artifacts, settings, lineage(), step.parent, build)
                compact_built_tables(context, built_iceberg_tables(artifacts), settings, step.span)
            if succeeded:
                # One folder per invocation under demo/dbt/target (dagster-dbt): keep failed ones only.
                shutil.rmtree(invocation.target_path, ignore_errors=True)
            else:
                prune_failed_targets(invocation.target_path.parent, keep=KEPT_FAILED_TARGETS, current=invocation.target_path)
        build.end()
        step.span.end()


def dbt_artifacts(target_path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """An invocation's ``run_results.json`` and ``manifest.json``, parsed; None when dbt wrote none."""
    try:
        return (
            orjson.loads((target_path / "run_results.json").read_bytes()),
            orjson.loads((target_path / "manifest.json").read_bytes()),
        )
    except FileNotFoundError:
        return None


def built_iceberg_tables(artifacts: tuple[dict[str, Any], dict[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, table) of every model the invocation (:func:`dbt_artifacts`) wrote to the Iceberg
    catalog successfully."""
    run_results, manifest = artifacts
    nodes = manifest.get("nodes", {})
    tables = []
    for result in run_results.get("results", []):
        node = nodes.get(result["unique_id"], {})
        if node.get("resource_type") == "model" and node.get("database") == CATALOG_ALIAS and result.get("status") == "success":
            tables.append((str(node.get("schema")), str(node.get("identifier") or node.get("alias") or node.get("name"))))
    return tables


def compact_built_tables(
    context: AssetExecutionContext, tables: Sequence[tuple[str, str]], settings: LakehouseSettings, parent: Span
) -> None:
    """Compact the Iceberg tables the build replaced (demo.lakehouse.maintenance): without this each
    rebuild leaves the old data file and a position-delete file in the table, which every Cube query
    then reads. A failure is a warning, not a failed step: the marts are already right, and the next
    build compacts again."""
    if not tables:
        return
    tracer = tracing.tracer()
    started = time.time_ns()  # the tables are compacted side by side: each span starts here
    try:
        results: dict[tuple[str, str], Compaction | Exception] = compact_tables(
            catalog(settings), tables, retain=settings.marts_snapshot_retention
        )
    except Exception as exc:  # the catalog could not be opened
        results = dict.fromkeys(tables, exc)
    for (namespace, table), outcome in results.items():
        span = tracer.start_span(
            f"iceberg.compact {namespace}.{table}",
            context=trace.set_span_in_context(parent),
            start_time=started,
            attributes={"db.namespace": namespace, "db.collection.name": table},
        )
        if isinstance(outcome, Exception):
            message = f"{type(outcome).__name__}: {outcome}"
            context.log.warning(f"could not compact {namespace}.{table} (the next build tries again): {message}")
            span.set_status(Status(StatusCode.ERROR, message[:1000]))
        else:
            context.log.info(f"compacted {outcome}")
            span.set_attributes(
                {
                    "iceberg.rewritten": outcome.rewritten,
                    "iceberg.data_files_before": outcome.before.data_files,
                    "iceberg.delete_files_before": outcome.before.delete_files,
                    "iceberg.snapshots_before": outcome.before.snapshots,
                    "iceberg.data_files_after": outcome.after.data_files,
                    "iceberg.delete_files_after": outcome.after.delete_files,
                    "iceberg.snapshots_after": outcome.after.snapshots,
                    "iceberg.snapshots_expired": outcome.expired_snapshots,
                    "iceberg.files_deleted": outcome.deleted_files,
                }
            )
        span.end(end_time=None if isinstance(outcome, Exception) else started + int(outcome.seconds * 1e9))


def report_dbt_invocation(
    artifacts: tuple[dict[str, Any], dict[str, Any]], settings: LakehouseSettings, lin: Lineage, parent: JobRef,
    build_span: Span,
) -> None:
    """Spans (children of ``build_span``) and OpenLineage events for the nodes the invocation
    (:func:`dbt_artifacts`) executed."""
    run_results, manifest = artifacts
    nodes: dict[str, Any] = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    tracer = tracing.tracer()
    for result in run_results.get("results", []):
        node = nodes.get(result["unique_id"], {})
        kind = node.get("resource_type", result["unique_id"].split(".", 1)[0])
        started, completed = _execute_window(result)
        status = str(result.get("status"))
        ok = status in ("success", "pass", "warn")
        skipped = status == "skipped"  # not run because something upstream failed: no error of its own
        node_span = tracer.start_span(
            f"dbt.{kind} {node.get('name', result['unique_id'])}",
            context=trace.set_span_in_context(build_span),
            start_time=_ns(started),
            attributes={
                "dbt.unique_id": result["unique_id"],
                "dbt.status": str(result.get("status")),
                "dbt.materialized": str(node.get("config", {}).get("materialized", "")),
                "db.namespace": str(node.get("schema", "")),
                "db.collection.name": str(node.get("alias") or node.get("name", "")),
            },
        )
        if not ok and not skipped:
            node_span.set_status(Status(StatusCode.ERROR, str(result.get("message") or result.get("status"))))
        node_span.end(end_time=_ns(completed))
        if kind == "model" and not skipped:
            _model_lineage(lin, parent, settings, nodes, node, result, started, completed, ok)


def _model_lineage(
    lin: Lineage,
    parent: JobRef,
    settings: LakehouseSettings,
    nodes: Mapping[str, Any],
    node: Mapping[str, Any],
    result: Mapping[str, Any],
    started: datetime | None,
    completed: datetime | None,
    ok: bool,
) -> None:
    if not lin.enabled:
        return
    inputs = [_dataset(settings, nodes[uid]) for uid in node.get("depends_on", {}).get("nodes", []) if uid in nodes]
    output = _dataset(settings, node)
    job = lin.job(f"dbt.{node.get('name')}")
    lin.run_event(
        RunState.START, job, inputs=inputs, outputs=[output], parent=parent, integration="DBT",
        job_type="MODEL", event_time=started,
    )
    lin.run_event(
        RunState.COMPLETE if ok else RunState.FAIL, job, inputs=inputs, outputs=[output], parent=parent,
        integration="DBT", job_type="MODEL", event_time=completed,
        error=None if ok else str(result.get("message") or result.get("status")),
    )


def _dataset(settings: LakehouseSettings, node: Mapping[str, Any]) -> DatasetRef:
    """Iceberg tables (in the attached catalog) by their catalog name; anything else (views in the
    local DuckDB file) as a DuckDB relation."""
    schema = str(node.get("schema", ""))
    name = str(node.get("identifier") or node.get("alias") or node.get("name"))
    if node.get("database") == CATALOG_ALIAS:
        return iceberg_dataset(settings, schema, name)
    return DatasetRef(namespace="duckdb://floe", name=f"{node.get('database')}.{schema}.{name}")


def _execute_window(result: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    for timing in result.get("timing", []):
        if timing.get("name") == "execute" and timing.get("started_at") and timing.get("completed_at"):
            return _parse(timing["started_at"]), _parse(timing["completed_at"])
    return None, None


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _ns(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000_000)
