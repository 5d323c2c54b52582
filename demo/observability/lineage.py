"""OpenLineage events for Dagster runs, the raw-table ingest and each dbt model.

Configured only from the standard OpenLineage variables (the cluster points them at Marquez):

- ``OPENLINEAGE_URL``: base URL of the receiver (Marquez: ``http://floe-marquez:5000``). Unset:
  lineage is off, logged once, nothing is sent.
- ``OPENLINEAGE_ENDPOINT``: path under it (default ``api/v1/lineage``, as openlineage-python).
- ``OPENLINEAGE_API_KEY``: optional bearer token.
- ``OPENLINEAGE_NAMESPACE``: the job namespace (default ``floe``).
- ``OPENLINEAGE_DISABLED=true``: off even with a URL (openlineage-python's own switch).

We build openlineage-python's ``HttpTransport`` ourselves instead of ``OpenLineageClient()``:
the client's constructor copies OPENLINEAGE_URL into ``OPENLINEAGE__TRANSPORT__...`` variables of
``os.environ`` (``OpenLineageClient._alias_env_vars``) and would keep the first URL for the rest
of the process. Each event is sent synchronously; a failure is logged as a warning, once per
event, and never fails the run.

Naming: jobs live in ``OPENLINEAGE_NAMESPACE``: ``dagster.<job>`` for a Dagster run (its runId is
the Dagster run id), ``ingest.raw_tables`` for the raw-table writes and ``dbt.<model>`` for each dbt
model, both children (ParentRunFacet) of their Dagster run. Datasets are Iceberg tables named
``<warehouse>.<namespace>.<table>`` in the namespace ``iceberg://<catalog host:port>``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid

from demo.lakehouse.settings import LakehouseSettings

log = logging.getLogger("floe.observability.lineage")

PRODUCER = "https://github.com/floe/floe/tree/main/demo/observability"
DEFAULT_NAMESPACE = "floe"
#: Keep a dead receiver from stalling a run: one quick retry, short timeout (defaults: 5 retries, 5 s).
_HTTP_TIMEOUT_SECONDS = 3.0
_RETRY = {"total": 1, "connect": 1, "read": 1, "backoff_factor": 0.2}

_ENV_KEYS = ("OPENLINEAGE_URL", "OPENLINEAGE_ENDPOINT", "OPENLINEAGE_API_KEY", "OPENLINEAGE_NAMESPACE", "OPENLINEAGE_DISABLED")


@dataclass(frozen=True)
class DatasetRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class JobRef:
    """A job run: what a child event points at as its parent."""

    namespace: str
    name: str
    run_id: str


class Lineage:
    """Sends OpenLineage run events, or does nothing when lineage is off."""

    def __init__(self, transport: HttpTransport | None, namespace: str) -> None:
        self.transport = transport
        self.namespace = namespace
        self.failures = 0

    @property
    def enabled(self) -> bool:
        return self.transport is not None

    def emit(self, event: RunEvent) -> bool:
        """Send one event; False (and a warning) if the receiver did not take it."""
        if self.transport is None:
            return False
        try:
            self.transport.emit(event)
            return True
        except Exception as exc:  # requests/urllib3 errors, HTTP status errors: never fail the run
            self.failures += 1
            log.warning(
                "OpenLineage %s event for %s not delivered: %s", event.eventType.value, event.job.name, exc
            )
            return False

    def job(self, name: str) -> JobRef:
        return JobRef(self.namespace, name, str(generate_new_uuid()))

    def run_event(
        self,
        state: RunState,
        job: JobRef,
        *,
        inputs: Sequence[DatasetRef] = (),
        outputs: Sequence[DatasetRef] = (),
        parent: JobRef | None = None,
        integration: str = "DAGSTER",
        job_type: str = "JOB",
        error: str | None = None,
        event_time: datetime | None = None,
    ) -> bool:
        run_facets: dict[str, object] = {}
        if parent is not None:
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent.run_id),
                job=parent_run.Job(namespace=parent.namespace, name=parent.name),
            )
        if error:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error[:4000], programmingLanguage="python"
            )
        event = RunEvent(
            eventTime=(event_time or datetime.now(UTC)).isoformat(),
            producer=PRODUCER,
            eventType=state,
            run=Run(runId=job.run_id, facets=run_facets),  # type: ignore[arg-type]
            job=Job(
                namespace=job.namespace,
                name=job.name,
                facets={
                    "jobType": job_type_job.JobTypeJobFacet(
                        processingType="BATCH", integration=integration, jobType=job_type
                    )
                },
            ),
            inputs=[InputDataset(namespace=d.namespace, name=d.name) for d in inputs],
            outputs=[OutputDataset(namespace=d.namespace, name=d.name) for d in outputs],
        )
        return self.emit(event)


def iceberg_dataset(settings: LakehouseSettings, namespace: str, table: str) -> DatasetRef:
    """The OpenLineage name of an Iceberg table behind the configured REST catalog."""
    parts = urlsplit(settings.catalog_uri)
    return DatasetRef(namespace=f"iceberg://{parts.netloc}", name=f"{settings.catalog_warehouse}.{namespace}.{table}")


def iceberg_datasets(settings: LakehouseSettings, namespace: str, tables: Iterable[str]) -> list[DatasetRef]:
    return [iceberg_dataset(settings, namespace, t) for t in tables]


_lock = threading.Lock()
_current: tuple[tuple[str | None, ...], Lineage] | None = None


def _configure() -> Lineage:
    namespace = os.environ.get("OPENLINEAGE_NAMESPACE") or DEFAULT_NAMESPACE
    url = os.environ.get("OPENLINEAGE_URL")
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        log.info("lineage is off: OPENLINEAGE_DISABLED=true")
        return Lineage(None, namespace)
    if not url:
        log.info("lineage is off: OPENLINEAGE_URL is not set")
        return Lineage(None, namespace)
    config: dict[str, object] = {
        "url": url,
        "endpoint": os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
        "timeout": _HTTP_TIMEOUT_SECONDS,
        "retry": _RETRY,
    }
    if api_key := os.environ.get("OPENLINEAGE_API_KEY"):
        # Same shape as openlineage-python's own env handling (client._http_transport_from_env_variables).
        config["auth"] = {"type": "api_key", "apiKey": api_key}
    log.info("lineage to %s/%s, namespace %s", url.rstrip("/"), config["endpoint"], namespace)
    return Lineage(HttpTransport(HttpConfig.from_dict(config)), namespace)


def lineage() -> Lineage:
    """Lineage set up from the current environment (rebuilt when the OPENLINEAGE_* variables change)."""
    global _current
    key = tuple(os.environ.get(k) for k in _ENV_KEYS)
    with _lock:
        if _current is None or _current[0] != key:
            _current = (key, _configure())
        return _current[1]
