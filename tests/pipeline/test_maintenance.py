"""demo.lakehouse.maintenance on the real lakehouse (SeaweedFS' Iceberg REST catalog and S3): the
rewrite keeps the rows, a concurrent commit is never lost, and expiry keeps what a reader within the
retention may still read. (The marts' own case, DuckDB's position deletes after a dbt rebuild, is in
test_dbt.py; the Dagster step that calls it, in tests/orchestration/test_orchestration_pipeline.py.)"""

from __future__ import annotations

import logging
import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType

from demo.ingest import catalog
from demo.lakehouse.duckdb import connect
from demo.lakehouse.maintenance import (
    METADATA_LOG_PROPERTIES,
    UNREFERENCED_PROPERTY,
    TableFiles,
    compact,
    table_files,
)
from demo.lakehouse.settings import LakehouseSettings

SCHEMA = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "name", StringType(), required=False))


def _batch(*ids: int) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "name": [f"row {i}" for i in ids]})


@pytest.fixture
def table(settings: LakehouseSettings) -> Table:
    """A table in this test's own namespace, written in two appends: two data files, two snapshots."""
    cat = catalog(settings)
    cat.create_namespace(settings.namespace_marts)
    created = cat.create_table((settings.namespace_marts, "events"), schema=SCHEMA)
    created.append(_batch(1, 2, 3))
    created.append(_batch(4, 5))
    return cat.load_table((settings.namespace_marts, "events"))


def _ids(table: Table, snapshot_id: int | None = None) -> list[int]:
    return sorted(table.scan(snapshot_id=snapshot_id).to_arrow().column("id").to_pylist())


def _exists(table: Table, path: str) -> bool:
    return table.io.new_input(path).exists()


def test_a_rewrite_keeps_the_rows_in_one_file_that_duckdb_reads(settings: LakehouseSettings, table: Table) -> None:
    assert table_files(table) == TableFiles(data_files=2, delete_files=0, snapshots=2, rows=5)
    result = compact(table, retain=timedelta(0))
    assert result.rewritten and result.expired_snapshots == 2
    assert result.after == TableFiles(data_files=1, delete_files=0, snapshots=1, rows=5)
    con = connect(settings)
    try:
        rows = con.sql(f"SELECT id, name FROM lake.{settings.namespace_marts}.events ORDER BY id").fetchall()
    finally:
        con.close()
    assert rows == [(i, f"row {i}") for i in range(1, 6)]


def test_nothing_to_rewrite_is_left_alone(table: Table) -> None:
    result = compact(table, retain=timedelta(hours=1), max_data_files=2)
    assert not result.rewritten and result.expired_snapshots == 0 and result.deleted_files == 0
    assert result.after == result.before


def test_a_commit_made_meanwhile_fails_the_compaction_and_is_kept(
    settings: LakehouseSettings, table: Table, caplog: pytest.LogCaptureFixture
) -> None:
    # `table` was loaded before this other writer's append: compacting it would replace the table with
    # rows 1-5. The commit must be refused, and not re-planned by pyiceberg's retry (which drops the
    # requirement that refused it).
    catalog(settings).load_table((settings.namespace_marts, "events")).append(_batch(6))
    with caplog.at_level(logging.WARNING, logger="pyiceberg"), pytest.raises(CommitFailedException):
        compact(table, retain=timedelta(0))
    # pyiceberg announces its first retry before it asks the transaction to re-plan, where ours gives up.
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) <= 1, retries
    table.refresh()
    assert _ids(table) == [1, 2, 3, 4, 5, 6]
    assert table_files(table).snapshots == 3


def test_old_snapshots_leave_the_metadata_but_their_files_stay_for_the_retention(table: Table) -> None:
    # A reader that planned its scan before the compaction reads these files directly.
    planned = [task.file.file_path for task in table.scan().plan_files()]
    old_manifest_lists = [s.manifest_list for s in table.metadata.snapshots]
    started = datetime.now(timezone.utc)
    kept = compact(table, retain=timedelta(minutes=10), now=started)
    assert kept.rewritten and kept.expired_snapshots == 2 and kept.deleted_files == 0
    assert kept.after.snapshots == 1
    assert all(_exists(table, path) for path in planned + old_manifest_lists)
    # Recorded for later: every file only the old snapshots reached, by when it was unreferenced.
    pending = json.loads(table.current_snapshot().summary[UNREFERENCED_PROPERTY])
    assert set(planned + old_manifest_lists) <= set(next(iter(pending.values())))

    # Nothing is due a minute later; ten minutes later everything is, and only that is deleted.
    assert compact(table, retain=timedelta(minutes=10), now=started + timedelta(minutes=1)).deleted_files == 0
    assert all(_exists(table, path) for path in planned)
    due = compact(table, retain=timedelta(minutes=10), now=started + timedelta(minutes=10, seconds=1))
    assert not due.rewritten and due.deleted_files == len(next(iter(pending.values())))
    assert not any(_exists(table, path) for path in planned + old_manifest_lists)
    table.refresh()
    assert _ids(table) == [1, 2, 3, 4, 5]
    assert all(_exists(table, task.file.file_path) for task in table.scan().plan_files())


def _replace_rows_as_dbt_does(settings: LakehouseSettings, *ids: int) -> None:
    """dbt's ``iceberg_table`` rebuild: DELETE + INSERT in one DuckDB transaction (one commit)."""
    con = connect(settings)
    try:
        events = f"lake.{settings.namespace_marts}.events"
        con.execute("BEGIN")
        con.execute(f"DELETE FROM {events}")
        con.execute(f"INSERT INTO {events} VALUES " + ", ".join(f"({i}, 'row {i}')" for i in ids))
        con.execute("COMMIT")
    finally:
        con.close()


def _manifests_listing(table: Table, path: str) -> list[str]:
    """The current snapshot's manifests that list ``path``."""
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return [
        m.manifest_path
        for m in snapshot.manifests(table.io)
        if any(e.data_file.file_path == path for e in m.fetch_manifest_entry(table.io, discard_deleted=False))
    ]


def test_a_rebuild_compacted_in_metadata_only_keeps_duckdbs_data_file_and_manifest(
    settings: LakehouseSettings, table: Table
) -> None:
    """dbt's DELETE + INSERT: the old data files are deleted in full, so the new snapshot lists the
    file DuckDB wrote, unread and unrewritten, through the manifest DuckDB wrote for it (queries on a
    pyiceberg-written copy ran slower); rows 1-5 are replaced by 7-8, then by 9 at the next build."""
    _replace_rows_as_dbt_does(settings, 7, 8)
    table.refresh()
    files = table_files(table)
    assert files.delete_files >= 1 and files.data_files == 3
    inserted = [task.file.file_path for task in table.scan().plan_files() if not task.delete_files]
    assert len(inserted) == 1
    duckdbs_manifests = _manifests_listing(table, inserted[0])
    assert len(duckdbs_manifests) == 1

    result = compact(table, retain=timedelta(0))
    assert result.rewritten and result.after == TableFiles(data_files=1, delete_files=0, snapshots=1, rows=2)
    assert [task.file.file_path for task in table.scan().plan_files()] == inserted
    assert [m.manifest_path for m in table.current_snapshot().manifests(table.io)] == duckdbs_manifests
    # The summary counts the listed file as the snapshot's own (readers plan with these totals).
    summary = table.current_snapshot().summary
    assert (summary["total-records"], summary["total-data-files"], summary["total-delete-files"]) == ("2", "1", "0")
    assert _ids(table) == [7, 8]
    assert result.deleted_files >= 3  # the two old data files and the delete file, at least
    assert _exists(table, duckdbs_manifests[0])

    # The next build replaces the rows on top of that snapshot; its compaction drops DuckDB's earlier
    # manifest with the file it lists.
    _replace_rows_as_dbt_does(settings, 9)
    table.refresh()
    again = compact(table, retain=timedelta(0))
    assert again.after == TableFiles(data_files=1, delete_files=0, snapshots=1, rows=1)
    assert _ids(table) == [9]
    assert not _exists(table, duckdbs_manifests[0]) and not _exists(table, inserted[0])
    con = connect(settings, wheel_extensions=False)
    try:
        assert con.sql(f"SELECT id, name FROM lake.{settings.namespace_marts}.events").fetchall() == [(9, "row 9")]
    finally:
        con.close()


def test_a_manifest_listing_a_deleted_file_too_is_not_reused(settings: LakehouseSettings) -> None:
    """A manifest that also lists a file the deletes remove (here: both appends merged into one) would
    carry that file on: the compaction writes a manifest of its own for the live file."""
    cat = catalog(settings)
    cat.create_namespace(settings.namespace_marts)
    merged = cat.create_table(
        (settings.namespace_marts, "events"),
        schema=SCHEMA,
        properties={"commit.manifest-merge.enabled": "true", "commit.manifest.min-count-to-merge": "2"},
    )
    merged.append(_batch(1, 2, 3))
    merged.append(_batch(4, 5))
    merged = cat.load_table((settings.namespace_marts, "events"))
    (shared,) = [m.manifest_path for m in merged.current_snapshot().manifests(merged.io)]
    con = connect(settings)
    try:
        con.execute(f"DELETE FROM lake.{settings.namespace_marts}.events WHERE id <= 3")
    finally:
        con.close()
    merged.refresh()
    assert table_files(merged).delete_files == 1

    result = compact(merged, retain=timedelta(0))
    assert result.rewritten and result.after == TableFiles(data_files=1, delete_files=0, snapshots=1, rows=2)
    assert shared not in [m.manifest_path for m in merged.current_snapshot().manifests(merged.io)]
    assert _ids(merged) == [4, 5]


def test_a_long_lived_connection_reads_on_after_its_snapshot_expired(settings: LakehouseSettings, table: Table) -> None:
    """Cube keeps one DuckDB connection for hours: it must not hold on to a snapshot whose files the
    expiry deleted (DuckDB loads the table's metadata per transaction; no MAX_TABLE_STALENESS here)."""
    con = connect(settings, wheel_extensions=False)  # set up as Cube's
    query = f"SELECT count(*), sum(id) FROM lake.{settings.namespace_marts}.events"
    try:
        assert con.sql(query).fetchone() == (5, 15)
        old_files = [task.file.file_path for task in table.scan().plan_files()]
        result = compact(table, retain=timedelta(0))
        assert result.rewritten and not any(_exists(table, path) for path in old_files)
        assert con.sql(query).fetchone() == (5, 15)
    finally:
        con.close()


def _metadata_files(table: Table) -> set[str]:
    """The metadata files the table's metadata names: its own and its log's."""
    return {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}


def test_rebuilds_keep_a_short_metadata_log_and_delete_the_files_that_leave_it(
    settings: LakehouseSettings, table: Table
) -> None:
    """Every query loads the metadata, whose log grows by an entry a commit (to 100 by default): the
    rewrite caps it, and the metadata files its commit drops from the log are deleted."""
    kept = int(METADATA_LOG_PROPERTIES["write.metadata.previous-versions-max"])
    for build in range(6):
        _replace_rows_as_dbt_does(settings, build)
        table.refresh()
        named = _metadata_files(table)
        compact(table, retain=timedelta(0))
        dropped = named - _metadata_files(table)
        assert not any(_exists(table, path) for path in dropped), dropped
        assert len(table.metadata.metadata_log) <= kept
    assert {k: table.metadata.properties.get(k) for k in METADATA_LOG_PROPERTIES} == METADATA_LOG_PROPERTIES
    assert len(table.metadata.metadata_log) == kept  # 15 commits made
    assert all(_exists(table, path) for path in _metadata_files(table))
    assert _ids(table) == [5]


def test_a_metadata_log_setting_of_the_tables_own_is_kept(settings: LakehouseSettings, table: Table) -> None:
    with table.transaction() as transaction:
        transaction.set_properties({"write.metadata.previous-versions-max": "50"})
    _replace_rows_as_dbt_does(settings, 7)
    table.refresh()
    assert compact(table, retain=timedelta(0)).rewritten
    assert table.metadata.properties["write.metadata.previous-versions-max"] == "50"
    assert table.metadata.properties["write.metadata.delete-after-commit.enabled"] == "true"
    # v1-v5 (created, two appends, the property, DuckDB's commit) before the compaction's: all kept
    assert len(table.metadata.metadata_log) == 5
