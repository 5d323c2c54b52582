"""PostgreSQL backups in the object store: upload a dump set, keep the newest N, restore one.

The backup CronJob (constructs/backup.py, ``postgres.backup``) runs two containers in one pod:
``dump`` (the PostgreSQL image, so pg_dump matches the server's major version) writes one
``pg_dump --format=custom`` file per application database into a shared emptyDir, then ``upload``
(the project image) runs ``python -m demo.backup upload``: each file goes to
``s3://<bucket>/<prefix>/<UTC stamp>/<database>.dump``, then a ``manifest.json`` that marks the set
complete, then sets beyond ``--keep`` (oldest first; complete sets only count) are deleted.

``python -m demo.backup restore`` (docs/production.md, "Backups and restore") downloads a set (the
newest complete one, or ``--set <stamp>``) and runs ``pg_restore --clean --if-exists`` into each
database as the superuser: objects keep their owners (the application roles, which the init script
re-creates on a new volume from the same Secrets). ``list`` prints the complete sets.

S3 credentials come from boto3's standard variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); the
endpoint and region from ``--endpoint``/``--region`` or FLOE_BACKUP_S3_ENDPOINT/FLOE_BACKUP_S3_REGION.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
SUFFIX = ".dump"
ENDPOINT_ENV = "FLOE_BACKUP_S3_ENDPOINT"
REGION_ENV = "FLOE_BACKUP_S3_REGION"


class BackupError(Exception):
    """A backup or restore that cannot go on: the message says what and what to do."""


@dataclass(frozen=True)
class Store:
    bucket: str
    prefix: str
    endpoint: str
    region: str

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        # Imported here: constructs/backup.py reads this module's constants at synth, without boto3.
        from demo.bootstrap.buckets import path_style_s3_client

        return path_style_s3_client(self.endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], self.region)

    def key(self, stamp: str, name: str) -> str:
        return f"{self.prefix}/{stamp}/{name}"


def stamp_now() -> str:
    """UTC, sortable, one per second: 20261202T021500Z."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def complete_sets(store: Store, client=None) -> list[str]:  # noqa: ANN001
    """Stamps of the sets whose manifest was written (the last object of an upload), oldest first."""
    client = client or store.client()
    stamps = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=f"{store.prefix}/"):
        for obj in page.get("Contents", []):
            parts = obj["Key"][len(store.prefix) + 1 :].split("/")
            if len(parts) == 2 and parts[1] == MANIFEST:
                stamps.append(parts[0])
    return sorted(stamps)


def upload(store: Store, directory: Path, keep: int, stamp: str | None = None) -> str:
    """Upload every ``*.dump`` of ``directory`` as a new set, then prune to ``keep`` sets."""
    dumps = sorted(directory.glob(f"*{SUFFIX}"))
    if not dumps:
        raise BackupError(f"no {SUFFIX} files in {directory}: the dump container wrote nothing")
    client = store.client()
    stamp = stamp or stamp_now()
    manifest = {"stamp": stamp, "databases": {}}
    for path in dumps:
        size = path.stat().st_size
        if size == 0:
            raise BackupError(f"{path.name} is empty: pg_dump failed")
        client.upload_file(str(path), store.bucket, store.key(stamp, path.name))
        manifest["databases"][path.name[: -len(SUFFIX)]] = {"key": store.key(stamp, path.name), "bytes": size}
        print(f"uploaded {path.name} ({size} bytes) to s3://{store.bucket}/{store.key(stamp, path.name)}", flush=True)
    client.put_object(Bucket=store.bucket, Key=store.key(stamp, MANIFEST), Body=json.dumps(manifest, indent=2).encode())
    sets = complete_sets(store, client)
    for old in sets[: max(0, len(sets) - keep)]:
        listed = client.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.prefix}/{old}/").get("Contents", [])
        # The manifest goes first: a half-deleted set is never taken for a complete one.
        for obj in sorted(listed, key=lambda o: not o["Key"].endswith(MANIFEST)):
            client.delete_object(Bucket=store.bucket, Key=obj["Key"])
        print(f"deleted set {old} (keeping the newest {keep})", flush=True)
    print(f"floe-backup {json.dumps({'set': stamp, 'databases': sorted(manifest['databases']), 'kept': min(len(sets), keep)})}", flush=True)
    return stamp


def fetch(store: Store, stamp: str | None, directory: Path) -> tuple[str, dict[str, Path]]:
    """Download a complete set (the newest when ``stamp`` is None): (stamp, database -> file)."""
    client = store.client()
    sets = complete_sets(store, client)
    if not sets:
        raise BackupError(f"no complete backup set under s3://{store.bucket}/{store.prefix}/")
    stamp = stamp or sets[-1]
    if stamp not in sets:
        raise BackupError(f"no complete set {stamp!r} (complete sets: {', '.join(sets)})")
    manifest = json.loads(client.get_object(Bucket=store.bucket, Key=store.key(stamp, MANIFEST))["Body"].read())
    files = {}
    for database, entry in sorted(manifest["databases"].items()):
        target = directory / f"{database}{SUFFIX}"
        client.download_file(store.bucket, entry["key"], str(target))
        if target.stat().st_size != entry["bytes"]:
            raise BackupError(f"{entry['key']}: {target.stat().st_size} bytes downloaded, the manifest says {entry['bytes']}")
        files[database] = target
    return stamp, files


def restore(store: Store, stamp: str | None, databases: list[str] | None = None) -> str:
    """pg_restore a set into the server of PGHOST/PGPORT/PGUSER/PGPASSWORD (the superuser), each
    database in one transaction: its objects are dropped (--clean --if-exists) and re-created with
    their owners. Stop every client first (docs/production.md)."""
    with tempfile.TemporaryDirectory(prefix="floe-restore-") as folder:
        stamp, files = fetch(store, stamp, Path(folder))
        chosen = databases or sorted(files)
        missing = sorted(set(chosen) - set(files))
        if missing:
            raise BackupError(f"set {stamp} has no dump of {', '.join(missing)} (it has {', '.join(sorted(files))})")
        for database in chosen:
            command = ["pg_restore", "--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--dbname", database, str(files[database])]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise BackupError(f"pg_restore of {database} from set {stamp} failed (nothing of it was changed):\n{result.stderr.strip()}")
            print(f"restored {database} from set {stamp}", flush=True)
    return stamp


def _store(args: argparse.Namespace) -> Store:
    endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        raise BackupError(f"no S3 endpoint: pass --endpoint or set {ENDPOINT_ENV}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not os.environ.get(name):
            raise BackupError(f"{name} is not set (the object store's key)")
    return Store(bucket=args.bucket, prefix=args.prefix, endpoint=endpoint, region=args.region or os.environ.get(REGION_ENV, "us-east-1"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="postgres")
    parser.add_argument("--endpoint", help=f"S3 endpoint URL (default: ${ENDPOINT_ENV})")
    parser.add_argument("--region", help=f"S3 region (default: ${REGION_ENV} or us-east-1)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upload", help="upload the dumps of a folder as a new set, then prune")
    up.add_argument("--dir", type=Path, required=True)
    up.add_argument("--keep", type=int, required=True)
    commands.add_parser("list", help="print the complete sets, oldest first")
    back = commands.add_parser("restore", help="pg_restore a set into PGHOST (stop the clients first)")
    back.add_argument("--set", dest="stamp", help="a set's stamp (default: the newest complete set)")
    back.add_argument("--database", action="append", dest="databases", help="only this database (repeatable)")
    args = parser.parse_args(argv)
    try:
        store = _store(args)
        if args.command == "upload":
            upload(store, args.dir, args.keep)
        elif args.command == "list":
            for stamp in complete_sets(store):
                print(stamp)
        else:
            restore(store, args.stamp, args.databases)
    except BackupError as exc:
        print(f"floe-backup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
