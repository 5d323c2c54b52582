"""Port choice with real sockets bound on 127.0.0.1, and the port-forward processes' life cycle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from floe.deploy.kubectl import Kubectl
from floe.deploy.manifests import PortForwardSpec, Stack
from floe.deploy.ports import (
    Assignment, Forward, PortForwardProcess, Supervisor, assign_ports, port_forward_argv, port_is_free, restart_delay,
)
from tests.support.listening import wait_listening
from tests.deploy.conftest import FIXTURE_DIST, FakeTools


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port with a live listener on 127.0.0.1, like another app holding it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_block(n: int) -> int:
    """The first of ``n`` consecutive free ports (so the test controls what 'next free' is)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n < 65535 and all(port_is_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free block")


def spec(service: str, port: int, remote: int = 80) -> PortForwardSpec:
    return PortForwardSpec(service, remote, port, service)


def test_port_is_free_sees_a_live_listener(busy_port: int) -> None:
    assert not port_is_free(busy_port)


def test_a_busy_preferred_port_moves_to_the_next_free_one_and_says_so() -> None:
    base = free_block(4)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base))
        holder.listen()
        [a, b] = assign_ports([spec("floe-dagster-webserver", base), spec("floe-cube", base + 2, 4000)])
    assert (a.local_port, a.moved) == (base + 1, True)
    assert a.note == f"port {base} is in use; using {base + 1} instead"
    # The second keeps its own preferred port (never taken by the first's search).
    assert (b.local_port, b.moved, b.note) == (base + 2, False, "")


def test_the_search_skips_ports_other_forwards_prefer() -> None:
    base = free_block(4)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base))
        holder.listen()
        [a, b] = assign_ports([spec("a", base), spec("b", base + 1)])
    assert (a.local_port, b.local_port) == (base + 2, base + 1)


def test_when_the_whole_span_is_busy_the_os_picks(busy_port: int) -> None:
    [a] = assign_ports([spec("x", busy_port)], span=0)
    assert a.local_port != busy_port and port_is_free(a.local_port)


def test_port_forward_command_line(stack: Stack) -> None:
    kubectl = Kubectl("kubectl", "docker-desktop")
    marquez = next(s for s in stack.port_forwards() if s.service == "floe-marquez")
    assert port_forward_argv(kubectl, "floe", Assignment(marquez, 5001)) == [
        "kubectl", "--context", "docker-desktop", "port-forward", "-n", "floe", "svc/floe-marquez", "5001:5000", "--address", "127.0.0.1",
    ]


def test_supervisor_starts_restarts_and_stops_real_processes(tmp_path: Path, fake_tools: FakeTools) -> None:
    base = free_block(2)
    kubectl = Kubectl(fake_tools.kubectl)
    forwards = [Forward(a, port_forward_argv(kubectl, "floe", a)) for a in assign_ports([spec("one", base), spec("two", base + 1)])]
    logs: list[str] = []
    supervisor = Supervisor(forwards, log=logs.append)
    try:
        assert supervisor.start(ready_timeout=20) == []
        assert not port_is_free(base) and not port_is_free(base + 1)
        # kubectl port-forward exits when its pod goes away: the supervisor starts it again.
        first = forwards[0].process
        first.process.terminate()
        first.process.wait(timeout=10)
        supervisor.check()
        assert forwards[0].restarts == 1 and forwards[0].process is not first
        assert forwards[0].process.wait_ready(20)
        supervisor.check()
        assert any("one exited" in line and "restarting" in line for line in logs)
        assert logs[-1] == f"port-forward to one is up on http://localhost:{base}"
    finally:
        supervisor.stop()
    assert all(not f.process.running for f in forwards)
    assert port_is_free(base) and port_is_free(base + 1)


def test_supervisor_reports_a_forward_that_never_comes_up(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PF_FAIL", "broken")
    base = free_block(1)
    kubectl = Kubectl(fake_tools.kubectl)
    [a] = assign_ports([spec("broken", base)])
    logs: list[str] = []
    supervisor = Supervisor([Forward(a, port_forward_argv(kubectl, "floe", a))], log=logs.append)
    try:
        assert len(supervisor.start(ready_timeout=20)) == 1
    finally:
        supervisor.stop()
    assert "pod is not running" in logs[0]


def test_another_program_on_the_port_is_not_taken_for_the_forward(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI hang: kubectl failed at once, but another test's listener had taken the port meanwhile, so a
    connect() succeeded and the forward counted as up. Ready is kubectl's own "Forwarding from" line."""
    monkeypatch.setenv("FAKE_PF_FAIL", "broken")
    kubectl = Kubectl(fake_tools.kubectl)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        assert wait_listening(taken, 1)  # what the old check saw: something answers
        forward = Forward(Assignment(spec("broken", taken), taken), port_forward_argv(kubectl, "floe", Assignment(spec("broken", taken), taken)))
        supervisor = Supervisor([forward], log=lambda _m: None)
        try:
            assert supervisor.start(ready_timeout=20) == [forward]
        finally:
            supervisor.stop()
    assert forward.process is not None and forward.process.last_error().startswith("error: unable to forward port")


def test_a_forward_that_comes_up_after_the_table_is_announced(fake_tools: FakeTools) -> None:
    """Not up within the start's wait (the table says "not forwarded"), still running: once kubectl says
    it forwards, the user is told where."""
    base = free_block(1)
    [a] = assign_ports([spec("slow", base)])
    forward = Forward(a, port_forward_argv(Kubectl(fake_tools.kubectl), "floe", a))
    logs: list[str] = []
    supervisor = Supervisor([forward], log=logs.append)
    try:
        assert supervisor.start(ready_timeout=0) == [forward]
        assert logs == ["port-forward to slow did not come up: kubectl has not said it is forwarding yet"]
        assert forward.process is not None and forward.process.wait_ready(20)
        assert supervisor.check() and supervisor.check()
        assert logs[1:] == [f"port-forward to slow is up on http://localhost:{base}"]  # once
    finally:
        supervisor.stop()


def test_kubectl_output_is_drained_while_it_forwards(fake_tools: FakeTools) -> None:
    """kubectl prints "Handling connection for N" per connection: 3,000 of them (> a 64 KiB pipe) and the
    forward still accepts, because both pipes are read for as long as it runs."""
    base = free_block(1)
    [a] = assign_ports([spec("busy", base)])
    forward = PortForwardProcess(port_forward_argv(Kubectl(fake_tools.kubectl), "floe", a))
    try:
        assert forward.wait_ready(20)
        for _ in range(3000):
            with socket.create_connection(("127.0.0.1", base), timeout=10):
                pass
        with socket.create_connection(("127.0.0.1", base), timeout=10) as last:
            last.settimeout(10)
            assert last.recv(1) == b""  # accepted and closed by the fake, not stuck behind a full pipe
        assert forward.ready
    finally:
        forward.stop()
    assert not forward.running and forward.process.stdout.closed and forward.process.stderr.closed


def test_a_forward_that_keeps_failing_backs_off_then_is_given_up(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod restarting takes tens of seconds: retries back off (at once, 1 s, 2 s, …) instead of spending
    every attempt in the first seconds, and a forward that never comes up is given up, not retried forever."""
    monkeypatch.setenv("FAKE_PF_FAIL", "pending")
    assert [restart_delay(n) for n in range(8)] == [0, 1, 2, 4, 8, 16, 30, 30]
    now = [0.0]
    logs: list[str] = []
    [a] = assign_ports([spec("pending", free_block(1))])
    forward = Forward(a, port_forward_argv(Kubectl(fake_tools.kubectl), "floe", a))
    supervisor = Supervisor([forward], log=logs.append, max_attempts=3, clock=lambda: now[0])

    def exited() -> None:
        assert forward.process is not None
        forward.process.process.wait(timeout=20)

    try:
        assert supervisor.start(ready_timeout=20) == [forward]
        assert supervisor.check() and forward.restarts == 1  # at once
        exited()
        assert supervisor.check() and forward.restarts == 1 and "retrying in 1s" in logs[-1]
        now[0] = 0.9
        assert supervisor.check() and forward.restarts == 1
        now[0] = 1.0
        assert supervisor.check() and forward.restarts == 2
        exited()
        assert supervisor.check() and "retrying in 2s" in logs[-1]
        now[0] = 3.0
        assert supervisor.check() and forward.restarts == 3
        exited()
        assert not supervisor.check()  # three attempts in a row failed: given up, nothing left to run
        assert "gave up after 3 attempts (error: unable to forward port" in logs[-1]
        assert "make port-forward" in logs[-1]
    finally:
        supervisor.stop()


def test_cli_port_forward_uses_alternatives_and_stops_cleanly_on_ctrl_c(tmp_path: Path, fake_tools: FakeTools) -> None:
    """`python -m floe.deploy port-forward` end to end: a real process, real listeners, SIGINT."""
    stack = Stack.load(FIXTURE_DIST)
    # Hold Dagster's preferred port (3000) if we can, to see the CLI move it.
    holder = socket.socket()
    held = port_is_free(3000)
    if held:
        holder.bind(("127.0.0.1", 3000))
        holder.listen()
    proc = subprocess.Popen(
        [sys.executable, "-m", "floe.deploy", "port-forward", "--dist", str(FIXTURE_DIST), "--kubectl", fake_tools.kubectl],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2], env=os.environ | {"COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            started = [c for c in fake_tools.calls() if "port-forward" in c]
            if len(started) == len(stack.port_forwards()):
                break
            time.sleep(0.2)
        local_ports = {c[c.index("-n") + 2][4:]: int(c[c.index("-n") + 3].split(":")[0]) for c in fake_tools.calls() if "port-forward" in c}
        for port in local_ports.values():
            assert wait_listening(port, 20), f"nothing listens on {port}"
        if held:
            assert local_ports["floe-dagster-webserver"] != 3000
        # The table comes once every forward listens (issue 16: not before): wait for it, as a person would.
        assert proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        while not any("http://localhost:" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)  # stderr holds a few lines: the pipe cannot fill and block it
        reader.join(timeout=10)
        assert proc.stderr is not None
        err = proc.stderr.read()
        out = "".join(lines)
    finally:
        holder.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping port-forwards" in err
    if held:
        assert "port 3000 is in use; using" in err
    for port in local_ports.values():
        assert port_is_free(port), f"port {port} still held after Ctrl-C"
    assert "Port-forwards" in out and "http://localhost:" in out
