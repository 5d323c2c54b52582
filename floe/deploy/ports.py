"""Port-forwards from the Services' ``floe.dev/port-forward`` annotations: pick free local ports, run
``kubectl port-forward`` for each, restart one that drops, stop all cleanly on Ctrl-C."""

from __future__ import annotations

import errno
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from floe.deploy.kubectl import Kubectl
from floe.deploy.manifests import PortForwardSpec

BIND_ADDRESS = "127.0.0.1"
# How far above the preferred port to look for a free one before asking the OS for any.
SEARCH_SPAN = 20


def port_is_free(port: int, host: str = BIND_ADDRESS) -> bool:
    """True when a listener could bind ``host:port`` now. SO_REUSEADDR like kubectl's (Go) listener, so
    a port in TIME_WAIT counts as free but one with a live listener does not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def any_free_port(host: str = BIND_ADDRESS) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Assignment:
    spec: PortForwardSpec
    local_port: int

    @property
    def moved(self) -> bool:
        return self.local_port != self.spec.preferred_local_port

    @property
    def url(self) -> str:
        name = (self.spec.port_name or "").lower()
        if "sql" in name or "postgres" in name:  # Postgres wire protocol, not HTTP
            return f"postgresql://127.0.0.1:{self.local_port}"
        return f"http://localhost:{self.local_port}"

    @property
    def note(self) -> str:
        if not self.moved:
            return ""
        return f"port {self.spec.preferred_local_port} is in use; using {self.local_port} instead"


def assign_ports(
    specs: Sequence[PortForwardSpec],
    is_free: Callable[[int], bool] = port_is_free,
    fallback: Callable[[], int] = any_free_port,
    span: int = SEARCH_SPAN,
) -> list[Assignment]:
    """Each spec's preferred local port when free, else the next free one above it (never one another
    spec prefers or already got), else any port the OS offers."""
    taken: set[int] = set()
    preferred = {s.preferred_local_port for s in specs}
    assignments: list[Assignment] = []
    for spec in specs:
        port = spec.preferred_local_port
        if port in taken or not is_free(port):
            candidates = (p for p in range(port + 1, min(port + 1 + span, 65536)) if p not in taken and p not in preferred)
            port = next((p for p in candidates if is_free(p)), None) or fallback()
        taken.add(port)
        assignments.append(Assignment(spec, port))
    return assignments


def port_forward_argv(kubectl: Kubectl, namespace: str, assignment: Assignment) -> list[str]:
    spec = assignment.spec
    # svc/<name> LOCAL:REMOTE with REMOTE the Service port: kubectl resolves it to the pod's targetPort.
    return kubectl.argv(
        "port-forward", "-n", namespace, f"svc/{spec.service}", f"{assignment.local_port}:{spec.service_port}", "--address", BIND_ADDRESS
    )


def wait_listening(port: int, timeout: float, host: str = BIND_ADDRESS, alive: Callable[[], bool] = lambda: True) -> bool:
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


@dataclass
class Forward:
    assignment: Assignment
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0


class Supervisor:
    """Runs one ``kubectl port-forward`` per assignment; restarts one that exits (its pod restarted)."""

    def __init__(self, forwards: Iterable[Forward], log: Callable[[str], None] = print, max_restarts: int = 5) -> None:
        self.forwards = list(forwards)
        self.log = log
        self.max_restarts = max_restarts

    def _spawn(self, forward: Forward) -> None:
        # Own process group: the terminal's Ctrl-C reaches us, and we stop the children in order.
        forward.process = subprocess.Popen(
            forward.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )

    def start(self, ready_timeout: float = 15.0) -> list[Forward]:
        """Start all; return the ones that never listened (their stderr is logged)."""
        for forward in self.forwards:
            self._spawn(forward)
        failed = []
        for forward in self.forwards:
            proc = forward.process
            assert proc is not None
            if not wait_listening(forward.assignment.local_port, ready_timeout, alive=lambda p=proc: p.poll() is None):
                failed.append(forward)
                self.log(f"port-forward to {forward.assignment.spec.service} did not come up: {self._stderr(forward)}")
        return failed

    @staticmethod
    def _stderr(forward: Forward) -> str:
        proc = forward.process
        if proc is None or proc.poll() is None or proc.stderr is None:
            return "still starting"
        # The last line only: kubectl repeats its error for every retry, and one line per forward is readable.
        lines = proc.stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit {proc.returncode}"

    def check(self) -> None:
        """Restart forwards whose kubectl exited (kubectl port-forward ends when its pod goes away)."""
        for forward in self.forwards:
            proc = forward.process
            if proc is None or proc.poll() is None:
                continue
            if forward.restarts >= self.max_restarts:
                continue
            forward.restarts += 1
            self.log(f"port-forward to {forward.assignment.spec.service} exited ({self._stderr(forward)}); restarting")
            self._spawn(forward)

    def stop(self, grace: float = 5.0) -> None:
        for forward in self.forwards:
            if forward.process is not None and forward.process.poll() is None:
                forward.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for forward in self.forwards:
            proc = forward.process
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def run_until_interrupted(self, interval: float = 1.0) -> None:
        try:
            while True:
                self.check()
                time.sleep(interval)
        except KeyboardInterrupt:
            self.log("stopping port-forwards")
        finally:
            self.stop()
