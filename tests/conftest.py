"""Settings for every test session (each pytest-xdist worker is its own session)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from demo.lakehouse.local import LocalLakehouse
    from tests.support.marts import Stack

# Synth's record of objects that passed schema validation (floe.manifest_checks._SchemaVerdicts):
# one per session, in its own temporary folder, so no test reads verdicts left by an earlier run
# or writes into the user's ~/.cache. Set at import, before any synth (subprocesses inherit it).
_SCHEMA_CACHE_DIR = Path(tempfile.mkdtemp(prefix="floe-schema-cache-"))
os.environ["FLOE_SCHEMA_CACHE"] = str(_SCHEMA_CACHE_DIR / "schema-passed")


def pytest_unconfigure(config) -> None:  # noqa: ANN001
    """The session's schema-cache folder goes with the session (each xdist worker and the controller
    made their own at import)."""
    shutil.rmtree(_SCHEMA_CACHE_DIR, ignore_errors=True)


# Ctrl-C as a terminal delivers it: a runner started in the background (`cmd &` in a script, nohup,
# some CI agents) inherits SIGINT ignored, every process it starts inherits that too, and Python then
# installs no KeyboardInterrupt handler: the tests that press Ctrl-C on `floe.deploy port-forward` and
# `demo.local ui` would wait for a stop that can never come. Children of a process with a handler get
# the default disposition back at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# --- servers shared by several directories (one per session, i.e. per xdist worker) ----------------


@pytest.fixture(scope="session")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLakehouse]:
    """One SeaweedFS (S3 + Iceberg REST catalog) for tests/pipeline and tests/orchestration, whose
    tests each work in namespaces of their own (uuid-suffixed) and so never see each other's tables."""
    from demo.ingest import wait_for_catalog
    from demo.lakehouse.local import local_lakehouse

    with local_lakehouse(tmp_path_factory.mktemp("lakehouse")) as lake:
        wait_for_catalog(lake.settings)
        yield lake


@pytest.fixture(scope="session")
def marts_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The seeded and built lakehouse that tests/verify (``stack``) and tests/semantic
    (``marts_settings``) read (tests/support/marts.py): one seed + dbt build for both."""
    from tests.support.marts import marts_stack as started

    with started(tmp_path_factory) as stack:
        yield stack


# --- pytest-xdist: which tests share a worker, and what starts first --------------------------------
# `make test` runs `--dist loadfile`: each work unit goes to one worker, so a session fixture is made
# once per worker that runs any test needing it. The files below share an expensive session fixture,
# so each set is one work unit (one worker makes the fixture once, not both):
SHARED_FIXTURE_UNITS: dict[str, tuple[str, ...]] = {
    # tests/conftest.py `marts_stack` (SeaweedFS with a reader identity, seeded, dbt build), which
    # tests/verify reads as `stack` and tests/semantic as `marts_settings`; tests/semantic/conftest.py
    # `bundled_synth` and `cube_otel_image` (npm ci of the image's OpenTelemetry folder).
    "marts-lakehouse": ("tests/verify/test_cli.py", "tests/verify/test_dagster.py",
                        "tests/verify/test_lakehouse_checks.py", "tests/verify/test_services.py",
                        "tests/semantic/test_cube_lakehouse.py", "tests/semantic/test_cube_pod.py",
                        "tests/semantic/test_cube_tracing.py", "tests/semantic/test_semantic_manifests.py"),
    # tests/contract/conftest.py `stack_postgres` (PostgreSQL initialised by dist/'s script) and
    # `local_image` (the project image's files laid out by the Dockerfile's steps).
    "contract-postgres": ("tests/contract/test_dagster_pods.py", "tests/contract/test_k8s_run_launcher.py",
                          "tests/contract/test_postgres_init.py", "tests/contract/test_local_image.py",
                          "tests/contract/test_dbt_first_build_in_a_pod.py"),
}
#: Work units that take longest (seconds, summed setup + call + teardown under `--durations`, from a
#: 2-worker run on the shared 2-core machine, 2026-12-02 16:00, of the 671 tests this suite had at
#: c2b2838; units not in that run from the full suite's run at 13:00, scaled by 0.7 as the units in
#: both were; test_dbt.py and test_maintenance.py from a run at 19:10, after the compaction tests
#: were added, scaled likewise), started first so that
#: no long unit starts last and leaves the other worker idle (xdist's own order is by number of tests:
#: the few-test server modules would come last).
LONGEST_FIRST: dict[str, float] = {
    "marts-lakehouse": 94, "tests/orchestration/test_orchestration_local.py": 48, "contract-postgres": 45,
    "tests/recovery/test_recovery.py": 38, "tests/verify/test_cube_server.py": 39,
    "tests/semantic/test_cube_freshness.py": 31, "tests/pipeline/test_dbt.py": 45,
    "tests/infra/test_bad_config.py": 25, "tests/deploy/test_dagster.py": 18,
    "tests/orchestration/test_orchestration_graphql.py": 18, "tests/orchestration/test_orchestration_pipeline.py": 16,
    "tests/infra/test_network_policies.py": 14, "tests/bootstrap/test_bootstrap_identities.py": 20,
    "tests/contract/test_dagster_migration.py": 15, "tests/bootstrap/test_bootstrap_cli.py": 12,
    "tests/orchestration/test_orchestration_compute_logs.py": 10, "tests/deploy/test_cli.py": 9,
    "tests/orchestration/test_orchestration_dbt_failure.py": 8, "tests/bootstrap/test_bootstrap_buckets.py": 8,
    "tests/pipeline/test_failures.py": 8, "tests/bootstrap/test_bootstrap_polaris.py": 6,
    "tests/pipeline/test_ingest.py": 6, "tests/deploy/test_distribution.py": 6, "tests/deploy/test_verify.py": 5,
    "tests/pipeline/test_duckdb.py": 7, "tests/pipeline/test_maintenance.py": 7, "tests/orchestration/test_orchestration_observability.py": 3,
}
_UNIT_OF_FILE = {path: unit for unit, paths in SHARED_FIXTURE_UNITS.items() for path in paths}


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: its shared-fixture set, else its file."""
    path = nodeid.split("::", 1)[0]
    return _UNIT_OF_FILE.get(path, path)


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001
    """On xdist workers: the longest units first (stable otherwise). Every worker sorts the same
    collection the same way, as xdist requires; a serial run keeps pytest's order."""
    if not hasattr(config, "workerinput"):
        return
    index = {item.nodeid: i for i, item in enumerate(items)}
    items.sort(key=lambda item: (-LONGEST_FIRST.get(work_unit(item.nodeid), 0), index[item.nodeid]))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):  # noqa: ANN001, ANN201
    """`--dist loadfile` with the units above, in collection order (the order set above)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SharedFixtureScheduling(config, log)
