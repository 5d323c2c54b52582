"""``python -m demo.orchestration.migrate``: bring the Dagster instance's PostgreSQL storage to the
installed Dagster's schema (the migration Job, constructs/dagster.py ``MigrationJob``).

What ``dagster instance migrate`` does (``DagsterInstance.upgrade``: each storage's alembic
migrations and data migrations, a no-op on an up-to-date schema), without the CLI's report of the
instance's components: that report builds the run launcher, and with the k8s launcher
(K8sRunLauncher) that means loading an in-cluster ServiceAccount token this Job has no use for.
Ends with one ``floe-dagster-migrate {json}`` line: each storage's revision before and after.
"""

from __future__ import annotations

import json
import sys

SUMMARY_PREFIX = "floe-dagster-migrate "


def revisions(instance) -> dict[str, str | None]:  # noqa: ANN001 - a DagsterInstance
    """(database revision) of each storage; None where its tables do not exist yet."""
    found = {}
    for name, storage in (
        ("run_storage", instance.run_storage),
        ("event_log_storage", instance.event_log_storage),
        ("schedule_storage", instance.schedule_storage),
    ):
        version = storage.alembic_version() if hasattr(storage, "alembic_version") else None
        found[name] = version[0] if version else None
    return found


def migrate(instance, report=print) -> dict:  # noqa: ANN001
    before = revisions(instance)
    instance.upgrade(report)
    after = revisions(instance)
    return {"before": before, "after": after, "changed": before != after}


def main() -> int:
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        summary = migrate(instance)
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
