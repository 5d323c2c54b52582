"""A thin kubectl/docker wrapper: build the command line, run it, parse ``-o json``.

Every call goes through a :class:`Runner`, so tests replace the process with recorded cluster states
and check the exact command lines the tool would run.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, input: str | None = None, timeout: float | None = None) -> Completed: ...


def subprocess_runner(argv: Sequence[str], *, input: str | None = None, timeout: float | None = None) -> Completed:
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return Completed(tuple(argv), 127, "", f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return Completed(tuple(argv), 124, "", f"{' '.join(argv)}: no answer within {timeout:g}s")
    return Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)


class CommandError(Exception):
    def __init__(self, result: Completed) -> None:
        self.result = result
        detail = (result.stderr or result.stdout).strip().splitlines()
        super().__init__(f"`{' '.join(result.argv)}` failed (exit {result.returncode}): {detail[-1] if detail else 'no output'}")


@dataclass
class Kubectl:
    """kubectl pinned to one context (the one preflight checked), so a context switch mid-deploy is harmless."""

    binary: str = "kubectl"
    context: str | None = None
    runner: Runner = field(default=subprocess_runner)
    # Per call: a cluster that stops answering must not hang the wait loop.
    request_timeout: str = "10s"

    def argv(self, *args: str) -> list[str]:
        base = [self.binary]
        if self.context:
            base += ["--context", self.context]
        return base + list(args)

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float | None = 60) -> Completed:
        result = self.runner(self.argv(*args), input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise CommandError(result)
        return result

    def get_json(self, *args: str) -> dict[str, Any]:
        result = self.run("get", *args, "-o", "json", f"--request-timeout={self.request_timeout}")
        return json.loads(result.stdout)

    # --- the calls the tool makes ----------------------------------------------------------------
    def workloads_and_pods(self, namespace: str) -> dict[str, Any]:
        """One List of every Deployment, StatefulSet, DaemonSet, Job and Pod in the namespace."""
        return self.get_json("deployments,statefulsets,daemonsets,jobs,pods", "-n", namespace)

    def events(self, namespace: str) -> list[dict[str, Any]]:
        return self.get_json("events", "-n", namespace).get("items", [])

    def logs(self, namespace: str, pod: str, container: str | None, *, previous: bool = False, tail: int = 20) -> str:
        """Last lines of one container, or of every container (prefixed) when ``container`` is None."""
        args = ["logs", "-n", namespace, pod, f"--tail={tail}"]
        args += ["-c", container] if container else ["--all-containers=true", "--prefix=true"]
        if previous:
            args.append("--previous")
        result = self.run(*args, check=False, timeout=20)
        return result.stdout if result.returncode == 0 else f"(no logs: {result.stderr.strip()})"

    def apply_file(self, path: str) -> Completed:
        return self.run("apply", "-f", path, timeout=120)

    def apply_stdin(self, manifest: str) -> Completed:
        return self.run("apply", "-f", "-", input=manifest, timeout=60)


@dataclass
class Docker:
    binary: str = "docker"
    runner: Runner = field(default=subprocess_runner)

    def image_exists(self, image: str) -> bool:
        return self.runner([self.binary, "image", "inspect", "--format", "{{.Id}}", image], timeout=30).returncode == 0

    def build_argv(self, image: str, context: str = ".", dockerfile: str | None = None) -> list[str]:
        argv = [self.binary, "build", "-t", image]
        if dockerfile:
            argv += ["-f", dockerfile]
        return argv + [context]
