"""Port-forwards from the Services' ``floe.dev/port-forward`` annotations: pick free local ports, run
``kubectl port-forward`` for each, restart one that drops, stop all cleanly on Ctrl-C."""

from __future__ import annotations

import errno
import signal
import socket
import subprocess
import threading
import time
from collections import deque
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


# client-go's portforward writes this line to kubectl's stdout once its local listener is up
# (k8s.io/client-go/tools/portforward/portforward.go, listenOnPortAndAddress), after the stream to the
# pod was opened; on failure it prints an error to stderr and exits instead.
FORWARDING_LINE = b"Forwarding from "
STDERR_LINES_KEPT = 20


class PortForwardProcess:
    """One running ``kubectl port-forward``, its output drained for as long as it runs.

    Ready means this process said "Forwarding from": a connect() to the local port would also reach any
    other program that bound it meanwhile (another forward, a test server), and take that for ours.
    Both pipes are read to the end by daemon threads: kubectl prints "Handling connection for N" on
    stdout for every connection and an error line on stderr for every failed one, and a full pipe would
    stall it; the last stderr lines are kept for the message when it exits.
    """

    def __init__(self, argv: Sequence[str], new_session: bool = False) -> None:
        # new_session: own process group, so the terminal's Ctrl-C reaches only us, and we stop it.
        self.process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=new_session
        )
        self._ready = threading.Event()
        self._stderr: deque[str] = deque(maxlen=STDERR_LINES_KEPT)
        self._readers = [
            threading.Thread(target=self._read_stdout, name="port-forward stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="port-forward stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            if line.startswith(FORWARDING_LINE):
                self._ready.set()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in iter(self.process.stderr.readline, b""):
            if line.strip():
                self._stderr.append(line.decode(errors="replace").strip())

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def came_up(self) -> bool:
        """Said "Forwarding from" (it may have exited since)."""
        return self._ready.is_set()

    @property
    def ready(self) -> bool:
        """Said "Forwarding from" and still runs."""
        return self.came_up and self.running

    def wait_ready(self, timeout: float) -> bool:
        """True once kubectl said "Forwarding from"; False if it exits or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not self._ready.is_set():
            remaining = deadline - time.monotonic()
            if not self.running or remaining <= 0:
                return False
            self._ready.wait(min(remaining, 0.05))
        return self.running

    def last_error(self) -> str:
        """kubectl's last stderr line once it has exited (it repeats its error on every retry, and one
        line per forward is readable), or that it has not come up while it runs."""
        if self.running:
            return "kubectl has not said it is forwarding yet"
        self._join_readers()
        return self._stderr[-1] if self._stderr else f"exit {self.process.returncode}"

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(timeout=2)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the pipes are closed once read to the end."""
        self.terminate()
        self.wait_stopped(grace)

    def terminate(self) -> None:
        if self.running:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, grace: float) -> None:
        try:
            self.process.wait(timeout=max(grace, 0.1))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._join_readers()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def restart_delay(failures: int) -> float:
    """Seconds before the next attempt after ``failures`` attempts in a row that never came up: at once
    the first time (a forward whose pod was replaced usually comes back straight away), then 1, 2, 4, 8,
    16 and 30 s, so a pod that takes a minute to restart is still picked up."""
    return 0.0 if failures == 0 else float(min(2 ** (failures - 1), 30))


@dataclass
class Forward:
    assignment: Assignment
    argv: list[str]
    process: PortForwardProcess | None = None
    restarts: int = 0
    # Attempts in a row that exited without coming up; reset once one is ready.
    failures: int = 0
    retry_at: float | None = None
    gave_up: bool = False
    # Whether the user was told it is up: by the table at start, else by a log line once it comes up.
    announced: bool = True

    @property
    def service(self) -> str:
        return self.assignment.spec.service


class Supervisor:
    """Runs one ``kubectl port-forward`` per assignment; restarts one that exits (its pod restarted or
    went away), backing off while it keeps failing, and gives up on it after ``max_attempts`` attempts
    in a row that never came up."""

    def __init__(self, forwards: Iterable[Forward], log: Callable[[str], None] = print, max_attempts: int = 8,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.forwards = list(forwards)
        self.log = log
        self.max_attempts = max_attempts
        self.clock = clock

    def _spawn(self, forward: Forward) -> None:
        forward.process = PortForwardProcess(forward.argv, new_session=True)

    def start(self, ready_timeout: float = 15.0) -> list[Forward]:
        """Start all; return the ones that never came up (kubectl's last error line is logged)."""
        for forward in self.forwards:
            self._spawn(forward)
        deadline = time.monotonic() + ready_timeout
        failed = []
        for forward in self.forwards:
            assert forward.process is not None
            if not forward.process.wait_ready(max(deadline - time.monotonic(), 0.0)):
                failed.append(forward)
                forward.announced = False  # the table says "not forwarded"; say so when it comes up later
                self.log(f"port-forward to {forward.service} did not come up: {forward.process.last_error()}")
        return failed

    def check(self) -> bool:
        """Restart forwards whose kubectl exited (kubectl port-forward ends when its pod goes away).
        False once no forward runs and none will be tried again."""
        now = self.clock()
        for forward in self.forwards:
            proc = forward.process
            if proc is None or forward.gave_up:
                continue
            if proc.running:
                if proc.ready:
                    forward.failures = 0
                    if not forward.announced:
                        forward.announced = True
                        self.log(f"port-forward to {forward.service} is up on {forward.assignment.url}")
                continue
            if forward.retry_at is None:
                if proc.came_up:  # it had come up: this exit starts a new streak
                    forward.failures = 0
                if forward.failures >= self.max_attempts:
                    forward.gave_up = True
                    self.log(f"port-forward to {forward.service}: gave up after {forward.failures} attempts "
                             f"({proc.last_error()}); see `make status`, then run `make port-forward` again")
                    continue
                delay = restart_delay(forward.failures)
                forward.retry_at = now + delay
                self.log(f"port-forward to {forward.service} exited ({proc.last_error()}); "
                         + ("restarting" if delay == 0 else f"retrying in {delay:.0f}s"))
            if now >= forward.retry_at:
                proc.wait_stopped(0.1)
                forward.retry_at = None
                forward.failures += 1
                forward.restarts += 1
                forward.announced = False
                self._spawn(forward)
        return any(not f.gave_up for f in self.forwards)

    def stop(self, grace: float = 5.0) -> None:
        processes = [f.process for f in self.forwards if f.process is not None]
        for proc in processes:  # all signalled first, so they stop side by side
            proc.terminate()
        deadline = time.monotonic() + grace
        for proc in processes:
            proc.wait_stopped(deadline - time.monotonic())

    def run_until_interrupted(self, interval: float = 1.0) -> bool:
        """Check every ``interval`` seconds until Ctrl-C (True) or until every forward was given up (False)."""
        try:
            while self.check():
                time.sleep(interval)
            return False
        except KeyboardInterrupt:
            self.log("stopping port-forwards")
            return True
        finally:
            self.stop()
