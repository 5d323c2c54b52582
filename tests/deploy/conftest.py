"""Recorded cluster states and fakes for the deploy tool's tests (no cluster needed).

The JSON states in fixtures/ are authored to the Kubernetes API shapes (see fixtures/author_states.py),
not captured from a live cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from pathlib import Path

import pytest

from floe.deploy.kubectl import Completed, Kubectl
from floe.deploy.manifests import Stack

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_DIST = FIXTURES / "dist"
# The recorded states were created at 17:00:00Z; "now" in the tests is a minute later unless said.
CREATED = datetime(2026, 11, 25, 17, 0, 0, tzinfo=UTC)


def state(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class FakeRunner:
    """Stands in for the kubectl process: records every argv, answers from recorded states.

    ``states`` are returned one per ``get deployments,...`` poll (the last one repeats); ``rules`` map a
    predicate over argv to a Completed answer; anything else succeeds with empty output.
    """

    states: list[dict] = field(default_factory=list)
    rules: list[tuple[Callable[[list[str]], bool], Callable[[list[str]], Completed]]] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    inputs: list[str | None] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], *, input: str | None = None, timeout: float | None = None) -> Completed:
        argv = list(argv)
        self.calls.append(argv)
        self.inputs.append(input)
        for predicate, answer in self.rules:
            if predicate(argv):
                return answer(argv)
        if "deployments,statefulsets,daemonsets,jobs,pods" in argv:
            polls = sum(1 for c in self.calls if "deployments,statefulsets,daemonsets,jobs,pods" in c)
            doc = self.states[min(polls, len(self.states)) - 1]
            return Completed(tuple(argv), 0, json.dumps(doc), "")
        if "get" in argv and "events" in argv:
            return Completed(tuple(argv), 0, json.dumps(state("events")), "")
        if "logs" in argv:
            return Completed(tuple(argv), 0, "line 1\nERROR: FATAL password authentication failed for user \"polaris\"\n", "")
        return Completed(tuple(argv), 0, "", "")

    def commands(self, verb: str) -> list[list[str]]:
        return [c for c in self.calls if verb in c[:4]]


@dataclass
class FakeClock:
    """Monotonic time that advances only when the code sleeps; wall time follows it from ``start``."""

    start: datetime = CREATED + timedelta(seconds=60)
    t: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def utcnow(self) -> datetime:
        return self.start + timedelta(seconds=self.t)


@pytest.fixture
def stack() -> Stack:
    return Stack.load(FIXTURE_DIST)


@pytest.fixture
def fake() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def kubectl(fake: FakeRunner) -> Kubectl:
    return Kubectl("kubectl", "docker-desktop", runner=fake)


BIN = Path(__file__).parent / "bin"


@dataclass(frozen=True)
class FakeTools:
    kubectl: str
    docker: str
    log: Path

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTools]:
    """Executable stand-ins for kubectl and docker (tests/deploy/bin), logging each call."""
    import sys

    paths = {}
    for tool in ("kubectl", "docker"):
        wrapper = tmp_path / f"fake-{tool}"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{BIN / f"fake_{tool}.py"}" "$@"\n')
        wrapper.chmod(0o755)
        paths[tool] = str(wrapper)
    log = tmp_path / "kubectl-calls.jsonl"
    monkeypatch.setenv("FAKE_KUBE_LOG", str(log))
    monkeypatch.setenv("FLOE_DOCKER", paths["docker"])
    yield FakeTools(paths["kubectl"], paths["docker"], log)
    # A failed test must not leave stand-in port-forwards running: end each by its recorded pid.
    import os
    import signal

    pids = tmp_path / "kubectl-calls.jsonl.pids"
    for pid in (int(p) for p in pids.read_text().split()) if pids.exists() else ():
        try:
            # Only if that pid is still our stand-in (a finished one's pid may have been reused).
            if b"fake_kubectl.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass
