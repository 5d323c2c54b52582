"""A real dagster-webserver serving the demo definitions, for the tests that talk GraphQL to one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from demo.orchestration.trigger import DEFAULT_LOCATION
from demo.processes import stop_process_group
from tests.support.postgres import free_port

REPO = Path(__file__).resolve().parents[2]


def wait_for_location(url: str, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    """Poll until the webserver answers and has loaded our code location (not a fixed sleep)."""
    query = "{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { location { name } } } } }"
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if client.get(f"{url}/server_info").status_code == 200:
                    data = client.post(f"{url}/graphql", json={"query": query}).json()["data"]["repositoriesOrError"]
                    if any(n["location"]["name"] == DEFAULT_LOCATION for n in data.get("nodes", [])):
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise TimeoutError(f"webserver not ready after {timeout}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def definitions_webserver(env: dict[str, str], log_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``dagster-webserver -m demo.orchestration.definitions`` on a free loopback port with ``env``
    (plus the repository on PYTHONPATH and the venv first on PATH), its output in ``log_path``.
    Yields its URL and process once our code location has loaded; stops it afterwards."""
    port = free_port()
    env = {**env, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver"), "-m", "demo.orchestration.definitions",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_location(url, process, log_path)
            yield url, process
        finally:
            stop_process_group(process)
