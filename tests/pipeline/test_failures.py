"""Failure paths on a lakehouse of their own: the catalog goes down in the middle of a write."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyiceberg.catalog.rest import RestCatalog

from demo.ingest import (
    IngestError,
    append_orders,
    catalog,
    committed_run_keys,
    raw_table_counts,
    seed_raw_tables,
    wait_for_catalog,
)
from demo.lakehouse.duckdb import LakehouseConnectionError, connect
from demo.lakehouse.local import LocalLakehouse, local_lakehouse
from demo.lakehouse.settings import LakehouseSettings

SMALL = {"n_customers": 20, "n_products": 8, "n_orders": 50}


@pytest.fixture(scope="module")
def own_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLakehouse]:
    with local_lakehouse(tmp_path_factory.mktemp("lakehouse-down")) as lake:
        wait_for_catalog(lake.settings)
        yield lake


def _listening_addresses(pid: int) -> set[str]:
    """host:port of every TCP socket ``pid`` listens on, from /proc (hex addresses decoded)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                host, port = fields[1].split(":")
                raw = bytes.fromhex(host)
                # /proc prints each 32-bit word of the address in host (little-endian) order.
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(f"{ipaddress.ip_address(words)}:{int(port, 16)}")
    return found


def test_the_lakehouse_listens_on_loopback_only_and_reports_to_no_one(own_lakehouse: LocalLakehouse) -> None:
    """Every port weed mini opens is on 127.0.0.1, and its master's telemetry (on by default: anonymous
    cluster statistics to telemetry.seaweedfs.com) is off; weed refuses a flag it does not know, so
    a running process is one that took it."""
    assert own_lakehouse.process is not None and own_lakehouse.process.poll() is None
    argv = Path(f"/proc/{own_lakehouse.process.pid}/cmdline").read_bytes().decode().split("\0")
    assert "-master.telemetry=false" in argv
    listening = _listening_addresses(own_lakehouse.process.pid)
    assert f"127.0.0.1:{own_lakehouse.s3_port}" in listening and f"127.0.0.1:{own_lakehouse.iceberg_port}" in listening
    assert {address.rsplit(":", 1)[0] for address in listening} == {"127.0.0.1"}, listening


def _orders_snapshot(settings: LakehouseSettings) -> int | None:
    snapshot = catalog(settings).load_table((settings.namespace_raw, "orders")).current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def test_catalog_down_mid_write_leaves_table_unchanged_and_retry_succeeds(
    own_lakehouse: LocalLakehouse, extension_directory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = own_lakehouse.settings.model_copy(update={"duckdb_extension_directory": extension_directory})
    seed_raw_tables(settings, seed=9, run_key="seed", **SMALL)
    counts_before = raw_table_counts(settings)
    snapshot_before = _orders_snapshot(settings)

    # Stop SeaweedFS (S3 + catalog) after pyiceberg wrote the data files, right before the commit.
    real_commit = RestCatalog.commit_table
    commits_attempted = []

    def commit_after_outage(self, table, requirements, updates):  # noqa: ANN001, ANN202
        commits_attempted.append(table.name())
        own_lakehouse.stop()
        return real_commit(self, table, requirements, updates)

    monkeypatch.setattr(RestCatalog, "commit_table", commit_after_outage)
    with pytest.raises(IngestError) as error:
        append_orders(settings, run_key="tick-1", n_orders=15)
    monkeypatch.setattr(RestCatalog, "commit_table", real_commit)
    assert commits_attempted == [(settings.namespace_raw, "orders")]
    message = str(error.value)
    assert "append of 15 rows" in message and "orders" in message and "re-run the same run key" in message

    # while it is down, reads fail clearly too (no hang)
    with pytest.raises(IngestError, match="cannot open Iceberg REST catalog"):
        raw_table_counts(settings)
    with pytest.raises(LakehouseConnectionError):
        connect(settings)

    # same data dir and ports: the catalog and the tables survive the restart, unchanged
    own_lakehouse.start()
    wait_for_catalog(settings)
    assert raw_table_counts(settings) == counts_before
    assert _orders_snapshot(settings) == snapshot_before
    orders = catalog(settings).load_table((settings.namespace_raw, "orders"))
    assert "tick-1" not in committed_run_keys(orders)

    # the next run with the same key succeeds, once
    retry = append_orders(settings, run_key="tick-1", n_orders=15)
    assert retry.rows_written["orders"] == 15 and not retry.skipped
    assert append_orders(settings, run_key="tick-1", n_orders=15).skipped == ("orders", "order_lines")
    counts_after = raw_table_counts(settings)
    assert counts_after["orders"] == counts_before["orders"] + 15
    con = connect(settings)
    raw = f"lake.{settings.namespace_raw}"
    assert con.sql(f"SELECT count(*) - count(DISTINCT order_id) FROM {raw}.orders").fetchone() == (0,)
    assert con.sql(
        f"SELECT count(*) FROM {raw}.order_lines l ANTI JOIN {raw}.orders o USING (order_id)"
    ).fetchone() == (0,)


def test_catalog_down_before_the_run_fails_fast(own_lakehouse: LocalLakehouse, tmp_path: Path) -> None:
    settings = own_lakehouse.settings.model_copy(update={"catalog_uri": "http://127.0.0.1:9"})  # nothing listens
    with pytest.raises(IngestError, match="http://127.0.0.1:9"):
        seed_raw_tables(settings, seed=1, run_key="never")
    with pytest.raises(IngestError, match="not ready"):
        wait_for_catalog(settings, timeout=1)


def test_a_port_taken_before_seaweedfs_binds_it_is_picked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """free_port() names a port that was free a moment ago; another process can take it before weed
    binds (seen as flaky starts on a loaded machine). weed exits saying so, and the start is retried on
    fresh ports, while a port the caller named is kept."""
    import socket

    from demo.lakehouse import local

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks = iter([taken])
        real_free_port = local.free_port
        # The first port picked for us (the S3 port) is the one just taken; every later pick is real.
        monkeypatch.setattr(local, "free_port", lambda: next(picks, None) or real_free_port())
        with local_lakehouse(tmp_path / "weed") as lake:
            assert lake.s3_port != taken
            catalog(lake.settings).list_namespaces()  # the catalog answers on the port picked again
        log = (tmp_path / "weed" / "weed.log").read_text()
        assert f"port {taken} for S3 (specified by flag s3.port) is not available" in log

        # A named port that is taken is not swapped for another: the error says which one it was.
        with pytest.raises(local.PortTaken, match=f"port {taken} for S3"), local_lakehouse(tmp_path / "named", s3_port=taken):
            pass

