"""Exit codes of every deploy command (documented in docs/troubleshooting.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    SUCCESS = 0
    # Something is broken: a pod/job failed, preflight refused, kubectl/docker errored.
    FAILURE = 1
    # Nothing failed outright, but a phase was not Ready within its timeout.
    TIMEOUT = 2
    # Ctrl-C during a deploy (128 + SIGINT, the shell convention).
    INTERRUPTED = 130
