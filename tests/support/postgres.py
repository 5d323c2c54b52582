"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` on 127.0.0.1, a free port, data
and unix socket in a private temporary folder, password authentication over TCP.

PostgreSQL refuses to run as root: when the tests run as root (CI here does), the server runs as
``nobody`` through ``runuser``, in a folder under /tmp owned by ``nobody`` (pytest's own tmp folders
are root-only, so ``nobody`` could not reach them).

    with postgres_server() as pg:
        pg.url  # postgresql://floe:...@127.0.0.1:<port>/dagster
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from demo.lakehouse.local import free_port  # noqa: F401 - re-exported for the tests

#: Fixed fake test credentials (never used outside a throwaway server).
TEST_USER = "floe"
TEST_PASSWORD = "floe-test-password"
SERVICE_USER = "nobody"



def _binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/local/bin/{name}" if Path(f"/usr/local/bin/{name}").exists() else None)
    if not found:
        raise FileNotFoundError(f"{name} not found on PATH (PostgreSQL server binaries)")
    return found


@dataclass
class PostgresServer:
    base_dir: Path
    port: int
    user: str = TEST_USER
    password: str = TEST_PASSWORD
    database: str = "dagster"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "socket"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def _as_service_user(self, args: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", SERVICE_USER, "--", *args]
        return args

    def start(self, timeout: float = 60) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            for path in (self.base_dir, self.socket_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            self._as_service_user(
                [
                    _binary("initdb"),
                    "-D", str(self.data_dir),
                    "-U", self.user,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "-E", "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off"
        subprocess.run(
            self._as_service_user(
                [_binary("pg_ctl"), "-D", str(self.data_dir), "-o", options, "-l", str(self.log_path),
                 "-w", "-t", str(int(timeout)), "start"]
            ),
            check=True,
            capture_output=True,
            timeout=timeout + 10,
        )
        with contextlib.closing(
            psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres")
        ) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}" OWNER "{self.user}"')

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            self._as_service_user([_binary("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
            timeout=60,
        )


@contextlib.contextmanager
def postgres_server(database: str = "dagster") -> Iterator[PostgresServer]:
    """Start a PostgreSQL server, yield it, stop it and delete its files."""
    base = Path(tempfile.mkdtemp(prefix="floe-pg-"))
    server = PostgresServer(base_dir=base, port=free_port(), database=database)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
