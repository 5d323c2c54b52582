"""The dbt models as Dagster assets (dagster-dbt), with a span and OpenLineage events per model.

``dbt build`` runs the models and their tests; dagster-dbt turns each model into a materialization
and each dbt test into an asset check. A failing test makes ``dbt build`` exit non-zero, which
dagster-dbt raises at the end of the stream (``DbtCliInvocation._raise_on_error``): the step, and so
the run, fails, the test's asset check is recorded as failed and the models downstream of the
failing one are skipped by dbt (not materialized).

dbt has no OpenTelemetry or OpenLineage hook of its own here: after the invocation we read its
``run_results.json`` and ``manifest.json`` and emit, per executed node, a child span with the node's
real start/end times (from ``timing``) and, per model, OpenLineage START + COMPLETE/FAIL events with
the model's inputs (its ``depends_on`` models and sources) and its output table.
"""


import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from packaging import version

from demo.lakehouse.settings import LakehouseSettings
from demo.observability import tracing
from demo.observability.lineage import DatasetRef, JobRef, Lineage, RunState, iceberg_dataset, lineage
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


class FloeDbtCliResource(DbtCliResource):
    """DbtCliResource that knows dbt's version without running ``dbt --version`` on every build.

    dagster-dbt 0.29 asks the executable (``DbtCliResource._cli_version``, a cached_property of each
    resource instance, so once per run) to tell dbt-core from the fusion engine: 5 s on a busy
    machine. dbt-core is installed in this same environment, so its package version is the answer.
    """

    @property
    def _cli_version(self) -> version.Version:  # type: ignore[override]
        from dbt.version import __version__ as dbt_core_version

        return version.parse(dbt_core_version)


def dbt_project() -> DbtProject:
    return DbtProject(
        project_dir=DBT_PROJECT_DIR,
        profiles_dir=DBT_PROJECT_DIR,
        target_path=MANIFEST_TARGET,
        target=PipelineSettings().dbt_target,
    )


def ensure_manifest(project: DbtProject) -> Path:
    """``dbt parse`` into ``target/dagster`` unless a manifest is there (an image bakes it at build)."""
    if not project.manifest_path.exists() or os.environ.get("FLOE_PIPELINE_REPARSE") == "1":
        FloeDbtCliResource(
            project_dir=str(project.project_dir),
            profiles_dir=str(project.profiles_dir),
            target=project.target,
            dbt_executable=dbt_executable(),
        ).cli(["parse", "--quiet"], target_path=project.target_path).wait()
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
            report_dbt_invocation(invocation.target_path, settings, lineage(), step.parent, build)
            if succeeded:
                # One folder per invocation under demo/dbt/target (dagster-dbt): keep failed ones only.
                shutil.rmtree(invocation.target_path, ignore_errors=True)
        build.end()
        step.span.end()


def report_dbt_invocation(
    target_path: Path, settings: LakehouseSettings, lin: Lineage, parent: JobRef, build_span: Span
) -> None:
    """Spans (children of ``build_span``) and OpenLineage events for the nodes dbt executed."""
    try:
        run_results = orjson.loads((target_path / "run_results.json").read_bytes())
        manifest = orjson.loads((target_path / "manifest.json").read_bytes())
    except FileNotFoundError:
        return  # dbt failed before running anything; the step error says why
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
