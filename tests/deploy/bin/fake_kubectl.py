"""A stand-in kubectl for the CLI tests: answers from the recorded states in ../fixtures.

Env: FAKE_KUBE_LOG (append each argv as a JSON line), FAKE_KUBE_STATE (fixture name returned for the
workload poll), FAKE_KUBE_CONTEXT (current context), FAKE_KUBE_STATE_FILE (also answers `get jobs` / `get pods`),
FAKE_KUBE_RECONCILE_LOG (output of the reconcile Job's container), FAKE_PF_FAIL (service names whose
port-forward fails), FAKE_KUBE_DISTRIBUTION (answer `config current-context`, `config view` and `get nodes`
from fixtures/distributions/<name>.kubeconfig.yaml / .nodes.yaml, as JSON). ``port-forward`` really
listens on the local port until SIGTERM/SIGINT. The calls of `floe.deploy verify`: fake_kubectl_verify.py.
"""

import json
import os
import signal
import socket
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def distribution(kind: str) -> dict | None:
    name = os.environ.get("FAKE_KUBE_DISTRIBUTION")
    if not name:
        return None
    import yaml

    return yaml.safe_load((FIXTURES / "distributions" / f"{name}.{kind}.yaml").read_text())


def port_forward(args: list[str]) -> int:
    target = next(a for a in args if a.startswith("svc/"))
    local, remote = next(a for a in args if ":" in a and a[0].isdigit()).split(":")
    if target[4:] in os.environ.get("FAKE_PF_FAIL", "").split(","):
        print('error: unable to forward port because pod is not running. Current status=Pending', file=sys.stderr)
        return 1
    server = socket.socket()
    # Like kubectl's Go listener (SO_REUSEADDR), so closed connections in TIME_WAIT do not hold the port.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("127.0.0.1", int(local)))
    except OSError as exc:
        print(f"Unable to listen on port {local}: {exc}", file=sys.stderr)
        return 1
    server.listen()
    print(f"Forwarding from 127.0.0.1:{local} -> {remote}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            conn, _ = server.accept()
            # client-go's portforward prints this on stdout for every connection (handleConnection).
            print(f"Handling connection for {local}", flush=True)
            conn.close()
    except KeyboardInterrupt:
        return 0


def main() -> int:
    args = sys.argv[1:]
    log = os.environ.get("FAKE_KUBE_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps(args) + "\n")
        with open(log + ".pids", "a") as handle:
            handle.write(f"{os.getpid()}\n")
    if args[:1] == ["--context"]:
        args = args[2:]
    # `floe.deploy verify`'s calls (create job, get pods -l job-name=, logs, get namespace ...).
    from fake_kubectl_verify import answer

    handled = answer(args, log)
    if handled is not None:
        return handled
    if args[:2] == ["config", "current-context"]:
        recorded = distribution("kubeconfig")
        print(os.environ.get("FAKE_KUBE_CONTEXT", recorded["current-context"] if recorded else "docker-desktop"))
    elif args[:2] == ["config", "view"] and distribution("kubeconfig"):
        print(json.dumps(distribution("kubeconfig")))
    elif args[:2] == ["get", "nodes"] and distribution("nodes"):
        print(json.dumps(distribution("nodes")))
    elif args[:2] == ["config", "view"]:
        server = os.environ.get("FAKE_KUBE_SERVER", "https://kubernetes.docker.internal:6443")
        print(json.dumps({"clusters": [{"name": "docker-desktop", "cluster": {"server": server}}]}))
    elif args[:2] == ["get", "--raw=/readyz"]:
        print("ok")
    elif args[:2] == ["get", "nodes"]:
        print(fixture(os.environ.get("FAKE_KUBE_NODES", "nodes-docker-desktop")))
    elif args[:2] == ["get", "pods"] and "--all-namespaces" in args:
        print(fixture("pods-all-namespaces"))
    elif args[:2] == ["get", "deployments,statefulsets,daemonsets,jobs,pods"]:
        state_file = os.environ.get("FAKE_KUBE_STATE_FILE")
        print(Path(state_file).read_text() if state_file else fixture(os.environ.get("FAKE_KUBE_STATE", "full-ready")))
    elif args[:2] == ["get", "events"]:
        print(fixture("events"))
    elif args[:1] == ["apply"]:
        if args[-1] == "-":
            sys.stdin.read()
        print("configured")
    elif args[:2] in (["get", "jobs"], ["get", "pods"]) and os.environ.get("FAKE_KUBE_STATE_FILE"):
        items = json.loads(Path(os.environ["FAKE_KUBE_STATE_FILE"]).read_text())["items"]
        kind = "Job" if args[1] == "jobs" else "Pod"
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": [i for i in items if i["kind"] == kind]}))
    elif args[:1] == ["logs"] and any(a.startswith("job/floe-reconcile") for a in args) and os.environ.get("FAKE_KUBE_RECONCILE_LOG"):
        print(Path(os.environ["FAKE_KUBE_RECONCILE_LOG"]).read_text(), end="")
    elif args[:1] == ["logs"]:
        print("Exception in thread main: FATAL: password authentication failed")
    elif args[:1] == ["delete"]:
        print(f"{args[1]} deleted")
    elif args[:1] == ["port-forward"]:
        return port_forward(args)
    else:
        print(f"fake kubectl: unexpected {args}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
