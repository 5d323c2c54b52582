"""Whether a local test server (or fake kubectl) listens yet: a bare connect, fine where the test
owns the port. Not a port-forward's readiness, which floe.deploy.ports.PortForwardProcess takes from
kubectl's own "Forwarding from" line (anything that bound the port would pass a connect)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_listening(port: int, timeout: float, host: str = "127.0.0.1", alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll until something accepts connections on ``host:port`` (or ``alive`` says the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False
