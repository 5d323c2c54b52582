"""Run- and step-level lineage and traces for Dagster, without a daemon-side sensor.

The only user code Dagster runs once around a whole run, in the run's own process, is the
executor. :data:`traced_in_process_executor` wraps Dagster's in-process executor: it opens the
``dagster.run <job>`` span and sends the run's OpenLineage START before the first step, and closes
the span / sends COMPLETE or FAIL after the last event (FAIL when any step failed). Steps run in the
same process and thread, so their spans (:func:`step_scope`) are children of the run span; the
step's own lineage events name the Dagster run as their parent (runId = Dagster run id).

In-process is also the right executor for this pipeline: its steps run one after the other
(raw tables, then dbt) against the same catalog, and a run worker per run is already a process.
``JobDefinition.execute_in_process`` replaces any executor with its own, so runs started that way get
step spans without a run span; the local main job and the tests use ``execute_job`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dagster import AssetExecutionContext, Executor, InitExecutorContext, executor
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG, _core_in_process_executor_creation
from dagster._core.events import DagsterEvent
from dagster._core.execution.retries import RetryMode
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from demo.observability import tracing
from demo.observability.lineage import JobRef, RunState, lineage


def dagster_job_name(job_name: str) -> str:
    """OpenLineage job name of a Dagster job, shared by the run (executor) and its steps (parent facet)."""
    return f"dagster.{job_name}"


def dagster_run_ref(job_name: str, run_id: str) -> JobRef:
    return JobRef(lineage().namespace, dagster_job_name(job_name), run_id)


class TracedExecutor(Executor):
    """Delegates to an inner executor, inside a run span and OpenLineage START/COMPLETE/FAIL."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    @property
    def step_dependency_config(self):  # type: ignore[no-untyped-def]
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator[DagsterEvent]:  # type: ignore[no-untyped-def]
        run = plan_context.dagster_run
        lin = lineage()
        run_ref = dagster_run_ref(run.job_name, run.run_id)
        lin.run_event(RunState.START, run_ref, job_type="JOB")
        span = tracing.tracer().start_span(
            f"dagster.run {run.job_name}",
            attributes={"dagster.run_id": run.run_id, "dagster.job": run.job_name, "process.pid": os.getpid()},
        )
        ctx = trace.set_span_in_context(span)
        failed_steps: list[str] = []
        inner = self._inner.execute(plan_context, execution_plan)
        try:
            while True:
                # Attach around each step of the generator only: contextvars must not leak across yields.
                token = otel_context.attach(ctx)
                try:
                    event = next(inner)
                except StopIteration:
                    break
                finally:
                    otel_context.detach(token)
                if event.is_step_failure:
                    failed_steps.append(event.step_key or "?")
                yield event
        except BaseException as exc:
            span.record_exception(exc)
            _finish(span, lin, run_ref, error=f"{type(exc).__name__}: {exc}")
            raise
        _finish(span, lin, run_ref, error=f"failed steps: {', '.join(failed_steps)}" if failed_steps else None)


def _finish(span: Span, lin, run_ref: JobRef, *, error: str | None) -> None:  # type: ignore[no-untyped-def]
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()
    lin.run_event(RunState.FAIL if error else RunState.COMPLETE, run_ref, job_type="JOB", error=error)
    # A run worker exits right after the run: send the spans now, not whenever the batch fills.
    tracing.flush()


@executor(name="traced_in_process", config_schema=IN_PROC_CONFIG)
def traced_in_process_executor(init_context: InitExecutorContext) -> Executor:
    """Dagster's in-process executor (same config) inside a run span and run-level lineage."""
    return TracedExecutor(_core_in_process_executor_creation(init_context.executor_config))


@dataclass
class StepScope:
    """What a step needs to report its own lineage under its run."""

    span: Span
    parent: JobRef


def _step_attributes(context: AssetExecutionContext, attributes: dict[str, object]) -> dict[str, object]:
    run = context.run
    op = context.op_execution_context.op.name
    return {"dagster.run_id": run.run_id, "dagster.job": run.job_name, "dagster.op": op, **attributes}


@contextmanager
def step_scope(context: AssetExecutionContext, **attributes: object) -> Iterator[StepScope]:
    """The ``dagster.step <op>`` span as the current span (child of the run span when the executor
    is ours). Only for blocks that do not ``yield`` to Dagster: the executor re-attaches the run's
    context at every resumption, so a "current span" does not survive a yield — generator steps
    use :func:`start_step_span` and pass parents explicitly."""
    run = context.run
    with tracing.span(
        f"dagster.step {context.op_execution_context.op.name}", _step_attributes(context, attributes)
    ) as span:
        yield StepScope(span=span, parent=dagster_run_ref(run.job_name, run.run_id))


def start_step_span(context: AssetExecutionContext, **attributes: object) -> StepScope:
    """The ``dagster.step <op>`` span, started but not made current; the caller ends it."""
    run = context.run
    span = tracing.tracer().start_span(
        f"dagster.step {context.op_execution_context.op.name}",
        attributes=tracing.clean_attributes(_step_attributes(context, attributes)),
    )
    return StepScope(span=span, parent=dagster_run_ref(run.job_name, run.run_id))
