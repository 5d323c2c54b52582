"""Import the pipeline's heavy packages in a background thread while the lakehouse starts.

``demo.local run`` waits about 2.5 s for SeaweedFS to answer, then imports Dagster, dagster-dbt (and
dbt with it), pyiceberg's Arrow writer and the OpenLineage client: about 3.4 s more, one after the
other. :func:`start` runs those imports in a thread first, so the two overlap; :func:`wait` joins it
before the main thread imports them itself (never both at once, so Python's per-module import locks
cannot deadlock).

Only third-party packages: our own modules read the environment the lakehouse sets up (FLOE_*,
DAGSTER_HOME, DBT_TARGET_PATH) and are imported after it. The thread only imports: a failure there is
left to the main thread's own import, which raises it where it always did.
"""

from __future__ import annotations

import importlib
import threading

#: What a run imports after the lakehouse is up (``-X importtime`` here: dagster-dbt 1.5 s with dbt,
#: Dagster 1.3 s, pyiceberg.io.pyarrow 0.3 s, openlineage.client 0.2 s; then, for the instance
#: (``DagsterInstance.get``), Dagster's SQLite storage with alembic 0.5 s and the S3 compute-log
#: manager of our dagster.yaml with boto3). A module a Dagster upgrade renames only costs its overlap.
HEAVY_MODULES = (
    "dagster_dbt", "dagster", "pyiceberg.io.pyarrow", "openlineage.client",
    "dagster._core.storage.sqlite_storage", "dagster_aws.s3.compute_log_manager",
)

_started: list[threading.Thread] = []


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the main thread's own import raises it (see wait)
            continue


def start(modules: tuple[str, ...] = HEAVY_MODULES) -> None:
    """Import ``modules`` in a thread (once). Not a daemon: a run that ends early waits for it at
    exit rather than tearing down an import half done."""
    if _started:
        return
    thread = threading.Thread(target=_import_all, args=(modules,), name="preload")
    _started.append(thread)
    thread.start()


def wait() -> None:
    """Return once the background imports (if started) are done."""
    for thread in _started:
        thread.join()
