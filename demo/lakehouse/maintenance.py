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
   data files): read the current snapshot's rows (pyiceberg applies the position deletes) and commit
   ONE new snapshot that holds only them, as a fresh history: the commit removes the ``main`` ref and
   adds the new snapshot as ``main``'s head, which is how Iceberg's own replace transaction starts a
   snapshot without carrying the parent's manifests (pyiceberg 0.12 has no rewrite that drops delete
   files: its overwrite and delete keep every delete manifest). Readers see the old snapshot or the
   new one, with the same rows.
2. **Expire** every snapshot older than ``retain`` except the current one, then delete the files
   only those snapshots reached (manifest lists, manifests, data and delete files). ``retain`` is how
   long a reader that planned its scan on an older snapshot can still read it.

Concurrency: the rewrite's commit requires ``main`` to still be the snapshot that was read
(``assert-ref-snapshot-id``), so a concurrent writer's commit makes the rewrite fail, never lost. It
is tried once: pyiceberg's commit retry re-plans the append against the refreshed table and drops
every ``AssertRefSnapshotId`` (``Transaction._rebuild_snapshot_updates``), ours included. That such
a retry still fails today (the re-planned append asserts that ``main`` is absent) is an accident
of pyiceberg 0.12, and costs four back-offs (1.5 s and more) first. pyiceberg still logs one
"retrying" warning before it asks to re-plan; the next build compacts again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFileContent
from pyiceberg.table import Table, Transaction
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update.snapshot import ManageSnapshots

__all__ = ["Compaction", "TableFiles", "compact", "compact_tables", "table_files"]

#: Snapshot summary property naming the snapshot a rewrite was read from.
COMPACTED_FROM_PROPERTY = "floe.compacted-from"
MAIN = "main"


@dataclass(frozen=True)
class TableFiles:
    """What a table's current snapshot reads, and how many snapshots its metadata holds."""

    data_files: int
    delete_files: int
    snapshots: int
    rows: int

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


def table_files(table: Table) -> TableFiles:
    """Count the live data and delete files of ``table``'s current snapshot (reads its manifests)."""
    snapshot = table.current_snapshot()
    data = deletes = rows = 0
    if snapshot is not None:
        for manifest in snapshot.manifests(table.io):
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                if entry.data_file.content == DataFileContent.DATA:
                    data += 1
                    rows += entry.data_file.record_count
                else:
                    deletes += 1
    return TableFiles(data_files=data, delete_files=deletes, snapshots=len(table.metadata.snapshots), rows=rows)


def compact(
    table: Table,
    *,
    retain: timedelta,
    max_data_files: int = 1,
    now: datetime | None = None,
) -> Compaction:
    """Rewrite ``table``'s current rows without delete files when needed, then expire snapshots older
    than ``retain`` (never the current one) and delete the files only they reached.

    Raises :class:`~pyiceberg.exceptions.CommitFailedException` when another writer committed
    meanwhile (nothing changed then).
    """
    started = time.perf_counter()
    name = ".".join(table.name()[1:]) if len(table.name()) > 2 else ".".join(table.name())
    before = table_files(table)
    current = table.current_snapshot()
    rewritten = False
    if current is not None and (before.delete_files > 0 or before.data_files > max_data_files):
        rows = table.scan(snapshot_id=current.snapshot_id).to_arrow()
        transaction = _SingleAttemptTransaction(table)
        # Stages remove-snapshot-ref main with assert-ref-snapshot-id(main == current): the append
        # below then has no parent, so its manifest list holds only the new data file.
        ManageSnapshots(transaction).remove_branch(MAIN).commit()
        transaction.append(rows, snapshot_properties={COMPACTED_FROM_PROPERTY: str(current.snapshot_id)})
        table = transaction.commit_transaction()
        rewritten = True
    expired, deleted = _expire(table, cutoff=(now or datetime.now(timezone.utc)) - retain)
    table.refresh()
    return Compaction(
        table=name,
        before=before,
        after=table_files(table),
        rewritten=rewritten,
        expired_snapshots=expired,
        deleted_files=deleted,
        seconds=time.perf_counter() - started,
    )


def _expire(table: Table, *, cutoff: datetime) -> tuple[int, int]:
    """Expire the unprotected snapshots older than ``cutoff``; delete the files only they reached."""
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    cutoff_ms = int(cutoff.timestamp() * 1000)
    expiring = [s for s in table.metadata.snapshots if s.snapshot_id not in protected and s.timestamp_ms < cutoff_ms]
    if not expiring:
        return 0, 0
    kept = [s for s in table.metadata.snapshots if s not in expiring]
    # Listed before the commit: once expired, their manifest lists are no longer in the metadata.
    expiring_files = _reachable(table, expiring)
    kept_files = _reachable(table, kept)
    # Not a snapshot producer, so pyiceberg does not retry it; it requires nothing of main.
    table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in expiring]).commit()
    orphans = expiring_files - kept_files
    for path in sorted(orphans):
        table.io.delete(path)
    return len(expiring), len(orphans)


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
