"""The calls of ``floe.deploy verify``, for the stand-in kubectl (fake_kubectl.py hands them over).

``create -f -`` keeps the Job it is given (FAKE_KUBE_LOG.created.json) and answers
``job.batch/<name>``; FAKE_VERIFY_STATE picks the recorded pods and Job it then answers with
(``exit-0`` / ``exit-1`` / ``exit-2`` / ``image-never-pull``: fixtures/verify-*.json, with JOBNAME
replaced by the created Job's name); FAKE_VERIFY_LOG is the file its ``logs`` print. Every ``apply
-f -`` input is kept in FAKE_KUBE_LOG.applied.jsonl (one JSON string per line). FAKE_VERIFY_LAST is
a file holding the answer to ``get configmaps -l floe.dev/verify-report=last`` (default: none).
FAKE_KUBE_UNREACHABLE makes every API call fail the way a stopped cluster does;
FAKE_KUBE_NO_NAMESPACE answers NotFound for the namespace.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
UNREACHABLE = "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"


def _recorded(name: str, job: str) -> str:
    return (FIXTURES / f"{name}.json").read_text().replace("JOBNAME", job)


def _created(log: str | None) -> dict | None:
    path = Path(f"{log}.created.json")
    return json.loads(path.read_text()) if log and path.exists() else None


def answer(args: list[str], log: str | None) -> int | None:
    """The exit code after printing the answer; None when the call is not one of verify's."""
    if os.environ.get("FAKE_KUBE_UNREACHABLE") and args[:1] != ["config"]:
        print(UNREACHABLE, file=sys.stderr)
        return 1
    if args[:2] == ["get", "namespace"]:
        if os.environ.get("FAKE_KUBE_NO_NAMESPACE"):
            print(f'Error from server (NotFound): namespaces "{args[2]}" not found', file=sys.stderr)
            return 1
        print(f"namespace/{args[2]}")
        return 0
    if args[:1] == ["create"] and "-f" in args:
        job = json.loads(sys.stdin.read())
        Path(f"{log}.created.json").write_text(json.dumps(job))
        print(f"job.batch/{job['metadata']['name']}")
        return 0
    if args[:1] == ["apply"] and args[-1] == "-":
        text = sys.stdin.read()
        if log:
            with open(f"{log}.applied.jsonl", "a") as handle:
                handle.write(json.dumps(text) + "\n")
        print("configured")
        return 0
    if args[:2] == ["get", "configmaps"]:
        last = os.environ.get("FAKE_VERIFY_LAST")
        print(Path(last).read_text() if last else json.dumps({"apiVersion": "v1", "kind": "List", "items": []}))
        return 0
    state = os.environ.get("FAKE_VERIFY_STATE", "exit-0")
    if args[:2] == ["get", "pods"] and any(a.startswith("job-name=") for a in args):
        job = next(a for a in args if a.startswith("job-name="))[len("job-name="):]
        print(_recorded(f"verify-pods-{state}", job))
        return 0
    if args[:2] == ["get", "job"]:
        print(_recorded("verify-job-running" if state == "image-never-pull" else f"verify-job-{state}", args[2]))
        return 0
    created = _created(log)
    if args[:1] == ["logs"] and created and f"job/{created['metadata']['name']}" in args:
        print(Path(os.environ["FAKE_VERIFY_LOG"]).read_text(), end="")
        return 0
    return None
