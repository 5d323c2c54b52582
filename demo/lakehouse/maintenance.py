"""Keep a rebuilt Iceberg table small: its current rows in one snapshot without delete files, old
snapshots expired and their files deleted.

Why this exists
---------------
dbt replaces a mart's rows with DELETE + INSERT in one commit (``demo/dbt/macros/iceberg_table.sql``).
DuckDB 1.5.5's iceberg extension writes every DELETE as a position-delete file and keeps the old data
file (merge-on-read only; duckdb/duckdb-iceberg#1006), and it has no compaction or snapshot expiry.
Measured on the local lakehouse, ``fct_orders``' current snapshot held 1, 3, 5, 7, 9 files after 1-5
builds, with as many snapshots: at the 5-minute schedule that is about 575 files per mart a day, which
every Cube query and rollup refresh reads. :func:`compact` bounds that after each build.

How
---
1. **Rewrite** (only when the current snapshot has delete files, or more than ``max_data_files``
   data files): commit ONE new snapshot that holds only the current rows, as a fresh history. When
   every data file a delete touches is deleted in full (dbt's DELETE + INSERT), the new snapshot
   simply lists the untouched data files, as DuckDB wrote them: nothing is read or written but
   metadata, and when the writer's own manifests list exactly those files, the new manifest list
   names them rather than a manifest pyiceberg writes (queries on a pyiceberg-written manifest of
   the same file ran 0.3-0.5 ms slower, alternating, with DuckDB on the local lakehouse).
   Otherwise the rows are read (pyiceberg applies the deletes) and written anew. The commit removes
   the ``main`` ref and adds the new snapshot as ``main``'s head, which is how Iceberg's own replace
   transaction starts a snapshot without carrying the parent's manifests (pyiceberg 0.12 has no
   rewrite that drops delete files: its overwrite and delete keep every delete manifest). Readers
   see the old snapshot or the new one, with the same rows.
2. **Expire** the old snapshots in the same commit (and keep the metadata log short:
   :data:`METADATA_LOG_PROPERTIES`): every query loads the table's metadata, which
   costs about 0.3 ms per snapshot it lists (measured with DuckDB on the local lakehouse), so a mart
   keeps one. Their files are **not** deleted then: a reader that planned its scan on an old snapshot
   (a Cube query or rollup build in flight) reads them directly from S3. The new snapshot's summary
   records them (``floe.unreferenced``, by the time they were unreferenced), and a later compaction
   deletes those unreferenced at least ``retain`` ago (at once when ``retain`` is 0).

Concurrency: the rewrite's commit requires ``main`` to still be the snapshot that was read
(``assert-ref-snapshot-id``), so a concurrent writer's commit makes the rewrite fail, never lost. It
is tried once: pyiceberg's commit retry re-plans the append against the refreshed table and drops
every ``AssertRefSnapshotId`` (``Transaction._rebuild_snapshot_updates``), ours included. That such
a retry still fails today (the re-planned append asserts that ``main`` is absent) is an accident
of pyiceberg 0.12, and costs four back-offs (1.5 s and more) first. pyiceberg still logs one
"retrying" warning before it asks to re-plan; the next build compacts again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
)
from pyiceberg.table import Table, Transaction
from pyiceberg.table.snapshots import Operation, Snapshot
from pyiceberg.table.update.snapshot import ExpireSnapshots, ManageSnapshots, _FastAppendFiles

__all__ = ["METADATA_LOG_PROPERTIES", "Compaction", "TableFiles", "compact", "compact_tables", "table_files"]

#: Snapshot summary property naming the snapshot a rewrite was read from.
COMPACTED_FROM_PROPERTY = "floe.compacted-from"
#: Snapshot summary property holding the files compactions unreferenced and not yet deleted, as JSON
#: {"<ms when unreferenced>": [paths]}: the next compaction deletes those due.
UNREFERENCED_PROPERTY = "floe.unreferenced"
MAIN = "main"
#: Table properties a rewrite sets where the table has none of its own. Every query loads the table's
#: metadata, whose metadata log (one entry per commit, 100 kept by default) cost DuckDB about 8 us a
#: query per entry (0.8 ms at 100, measured on the local lakehouse); a mart commits twice per build
#: (dbt's replace, this compaction), so 5 entries span the last two builds. Both are Iceberg's own
#: properties. Polaris 1.7.0 builds each commit's metadata with Iceberg core's builder, which trims the
#: log, and deletes the metadata files that left it after every commit, single-table or transaction
#: (LocalIcebergCatalog.BasePolarisTableOperations.commit -> CatalogUtil.deleteRemovedMetadataFiles).
#: SeaweedFS' catalog trims the log on every commit but deletes those files only on pyiceberg's
#: commits, not DuckDB's (measured): on the local lakehouse about half of them stay.
METADATA_LOG_PROPERTIES = {
    "write.metadata.previous-versions-max": "5",
    "write.metadata.delete-after-commit.enabled": "true",
}


@dataclass(frozen=True)
class TableFiles:
    """What a table's current snapshot reads, and how many snapshots its metadata holds."""

    data_files: int
    delete_files: int
    snapshots: int
    rows: int  # what the data files hold, before any delete applies

    def __str__(self) -> str:
        return f"{self.data_files} data + {self.delete_files} delete files, {self.snapshots} snapshots"


@dataclass(frozen=True)
class Compaction:
    """What :func:`compact` did to one table."""

    table: str
    before: TableFiles
    after: TableFiles
    rewritten: bool
    expired_snapshots: int
    deleted_files: int
    seconds: float

    def __str__(self) -> str:
        done = ["rewritten" if self.rewritten else "not rewritten"]
        done.append(f"{self.expired_snapshots} snapshots expired, {self.deleted_files} files deleted")
        return f"{self.table}: {self.before} -> {self.after} ({'; '.join(done)}, {self.seconds:.2f}s)"


class _SingleAttemptTransaction(Transaction):
    """A transaction whose commit is tried once: a retry would re-plan without our ref requirement."""

    def _rebuild_snapshot_updates(self) -> None:
        raise CommitFailedException("the table changed while it was being compacted; the next build compacts it")


class _ListingAppend(_FastAppendFiles):
    """A fast append whose manifest list names ``manifests`` (written earlier, listing exactly the
    appended files) instead of a manifest of its own; a plain fast append when ``manifests`` is None.
    The appended files still make the snapshot's summary (added and total records, files, sizes)."""

    def __init__(
        self, transaction: Transaction, *, manifests: list[ManifestFile] | None, properties: dict[str, str]
    ) -> None:
        super().__init__(
            operation=Operation.APPEND,
            transaction=transaction,
            io=transaction._table.io,
            snapshot_properties=properties,
        )
        self._listed_manifests = manifests

    def _manifests(self) -> list[ManifestFile]:
        return super()._manifests() if self._listed_manifests is None else list(self._listed_manifests)


#: A manifest of a snapshot, with every entry it holds (whatever the entry's status).
_ReadManifest = tuple[ManifestFile, list[ManifestEntry]]


def table_files(table: Table) -> TableFiles:
    """Count the live data and delete files of ``table``'s current snapshot (reads its manifests)."""
    snapshot = table.current_snapshot()
    return _counted(table, *_live_files(_read_manifests(table, snapshot)))


def _counted(table: Table, data: list[DataFile], deletes: list[DataFile]) -> TableFiles:
    rows = sum(f.record_count for f in data)
    return TableFiles(data_files=len(data), delete_files=len(deletes), snapshots=len(table.metadata.snapshots), rows=rows)


def _read_manifests(table: Table, snapshot: Snapshot | None) -> list[_ReadManifest]:
    """The snapshot's manifests and their entries (none without a snapshot)."""
    if snapshot is None:
        return []
    return [(m, m.fetch_manifest_entry(table.io, discard_deleted=False)) for m in snapshot.manifests(table.io)]


def _live_files(manifests: list[_ReadManifest]) -> tuple[list[DataFile], list[DataFile]]:
    """The live data files and delete files the manifests list."""
    data: list[DataFile] = []
    deletes: list[DataFile] = []
    for _, entries in manifests:
        for entry in entries:
            if entry.status != ManifestEntryStatus.DELETED:
                (data if entry.data_file.content == DataFileContent.DATA else deletes).append(entry.data_file)
    return data, deletes


def _manifests_listing_only(manifests: list[_ReadManifest], files: list[DataFile]) -> list[ManifestFile] | None:
    """The data manifests that together list exactly ``files``, each as a live entry, and nothing else
    (the writer's own manifests of its last insert); None when there are none such."""
    wanted = {f.file_path for f in files}
    listing: list[ManifestFile] = []
    listed: set[str] = set()
    for manifest, entries in manifests:
        paths = {e.data_file.file_path for e in entries}
        if manifest.content != ManifestContent.DATA or not paths & wanted:
            continue
        if any(e.status == ManifestEntryStatus.DELETED for e in entries):
            return None
        listing.append(manifest)
        listed |= paths
    return listing if listing and listed == wanted else None


def compact(
    table: Table,
    *,
    retain: timedelta,
    max_data_files: int = 1,
    now: datetime | None = None,
) -> Compaction:
    """Rewrite ``table``'s current rows as its only snapshot, without delete files, when needed; delete
    the files that stopped being referenced at least ``retain`` ago.

    Raises :class:`~pyiceberg.exceptions.CommitFailedException` when another writer committed
    meanwhile (nothing changed then).
    """
    started = time.perf_counter()
    moment = now or datetime.now(timezone.utc)
    now_ms = int(moment.timestamp() * 1000)
    due_ms = int((moment - retain).timestamp() * 1000)
    name = ".".join(table.name()[1:]) if len(table.name()) > 2 else ".".join(table.name())
    current = table.current_snapshot()
    manifests = _read_manifests(table, current)
    data, deletes = _live_files(manifests)
    before = _counted(table, data, deletes)
    # Files earlier compactions unreferenced, by when: recorded in their snapshots' summaries.
    pending = _pending_deletes(table.metadata.snapshots)
    rewritten, expired = False, 0
    if current is not None and (before.delete_files > 0 or before.data_files > max_data_files):
        transaction = _SingleAttemptTransaction(table)
        # Stages remove-snapshot-ref main with assert-ref-snapshot-id(main == current): the append
        # below then has no parent, so its manifest list holds only what it adds.
        ManageSnapshots(transaction).remove_branch(MAIN).commit()
        live = _untouched_data_files(table, data, deletes)
        metadata_only = live is not None and 0 < len(live) <= max_data_files
        # DuckDB's own manifests of the live files, listed as they are (format v3 manifest lists carry
        # row ids such a manifest may lack: one is written there).
        reused = None
        if metadata_only and table.metadata.format_version <= 2:
            reused = _manifests_listing_only(manifests, live or [])
        # Every snapshot but other branches' and tags' heads goes, the current one included.
        protected = {ref.snapshot_id for ref in table.metadata.refs.values()} - {current.snapshot_id}
        old = [s for s in table.metadata.snapshots if s.snapshot_id not in protected]
        # Every file the old snapshots reach, except the files the new one keeps; listed before
        # the commit, which removes those snapshots from the metadata.
        kept_elsewhere = _reachable(table, [s for s in table.metadata.snapshots if s.snapshot_id in protected])
        kept = {f.file_path for f in (live or []) if metadata_only} | {m.manifest_path for m in reused or []}
        unreferenced = _reachable(table, old) - kept_elsewhere - kept
        pending.setdefault(now_ms, set()).update(unreferenced)
        properties = {
            COMPACTED_FROM_PROPERTY: str(current.snapshot_id),
            UNREFERENCED_PROPERTY: _encode_pending({at: files for at, files in pending.items() if at > due_ms}),
        }
        if metadata_only:
            # Every other data file is deleted in full (dbt's DELETE + INSERT): the table's rows are
            # exactly these files', which are kept as their writer (DuckDB) wrote them, and listed by
            # the writer's own manifests when those list nothing else.
            with _ListingAppend(transaction, manifests=reused, properties=properties) as append:
                for data_file in live or []:
                    append.append_data_file(data_file)
        else:
            transaction.append(table.scan(snapshot_id=current.snapshot_id).to_arrow(), snapshot_properties=properties)
        # The old snapshots leave the metadata in the same commit: every query loads the metadata
        # (about 0.3 ms a snapshot, measured), and a reader that planned on one keeps its files.
        ExpireSnapshots(transaction).by_ids([s.snapshot_id for s in old]).commit()
        unset = {k: v for k, v in METADATA_LOG_PROPERTIES.items() if k not in table.metadata.properties}
        if unset:
            transaction.set_properties(unset)
        table = transaction.commit_transaction()
        rewritten, expired = True, len(old)
    deleted = 0
    for at, files in sorted(pending.items()):
        if at <= due_ms:
            deleted += _delete(table, files)
    return Compaction(
        table=name,
        before=before,
        after=table_files(table),
        rewritten=rewritten,
        expired_snapshots=expired,
        deleted_files=deleted,
        seconds=time.perf_counter() - started,
    )


def _pending_deletes(snapshots: Iterable[Snapshot]) -> dict[int, set[str]]:
    """The files earlier compactions unreferenced, by the time (ms) they were unreferenced."""
    pending: dict[int, set[str]] = {}
    for snapshot in snapshots:
        encoded = snapshot.summary.get(UNREFERENCED_PROPERTY) if snapshot.summary else None
        if encoded:
            for at, files in json.loads(encoded).items():
                pending.setdefault(int(at), set()).update(files)
    return pending


def _encode_pending(pending: dict[int, set[str]]) -> str:
    return json.dumps({str(at): sorted(files) for at, files in sorted(pending.items())}, separators=(",", ":"))


def _delete(table: Table, paths: Iterable[str]) -> int:
    """Delete the files that still exist (a retried or repeated deletion finds some gone)."""
    deleted = 0
    for path in sorted(paths):
        try:
            table.io.delete(path)
            deleted += 1
        except FileNotFoundError:
            pass
    return deleted


def _untouched_data_files(table: Table, data: list[DataFile], deletes: list[DataFile]) -> list[DataFile] | None:
    """The data files no delete touches, when every other data file is deleted in full; None when
    some file is deleted in part, or a delete file is not a Parquet position delete (then the rows
    must be rewritten)."""
    if any(d.content != DataFileContent.POSITION_DELETES or d.file_format != FileFormat.PARQUET for d in deletes):
        return None
    deleted_rows: dict[str, int] = {}
    if deletes:
        positions = pa.concat_tables(
            [pq.read_table(table.io.new_input(d.file_path).open(), columns=["file_path", "pos"]) for d in deletes]
        )
        counts = positions.group_by("file_path").aggregate([("pos", "count_distinct")])
        deleted_rows = dict(zip(counts["file_path"].to_pylist(), counts["pos_count_distinct"].to_pylist(), strict=True))
    untouched = []
    for data_file in data:
        deleted = deleted_rows.get(data_file.file_path, 0)
        if deleted == 0:
            untouched.append(data_file)
        elif deleted < data_file.record_count:
            return None
    return untouched


def _reachable(table: Table, snapshots: Iterable[Snapshot]) -> set[str]:
    """Every file the snapshots reach: manifest lists, manifests, and the data and delete files their
    manifests name, whatever the entries' status (conservative: a file some kept snapshot names in
    any way is never deleted)."""
    files: set[str] = set()
    for snapshot in snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                files.add(entry.data_file.file_path)
    return files


def compact_tables(
    catalog: Catalog, identifiers: Sequence[tuple[str, str]], *, retain: timedelta, workers: int = 4
) -> dict[tuple[str, str], Compaction | Exception]:
    """:func:`compact` each table, a few at a time (each is a handful of catalog and S3 round trips);
    one table's failure is returned, not raised, so the others are still compacted."""

    def one(identifier: tuple[str, str]) -> Compaction | Exception:
        try:
            return compact(catalog.load_table(identifier), retain=retain)
        except Exception as exc:  # reported per table by the caller
            return exc

    if not identifiers:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(identifiers)), thread_name_prefix="iceberg-compact") as pool:
        return dict(zip(identifiers, pool.map(one, identifiers), strict=True))
