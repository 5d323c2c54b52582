"""Deploy benchmark without a cluster: the stack's resource requests vs Docker Desktop's default VM, and the
worst-case time for the deploy tool to call a failure, from the probes in dist/.

    .venv/bin/python bench/deploy.py [--dist DIR] [--json]

Without --dist the real stack is synthesized into a temporary folder (floe.synth, default profile).

Sources of the constants:
- Docker Desktop "Resources > Advanced": Memory limit "Defaults to 50% of your host's memory", Swap "1 GB default"
  (docs.docker.com/desktop/settings-and-maintenance/settings/). CPU limit: all host CPUs unless lowered.
- Container restart back-off: "exponential back-off delay (10s, 20s, 40s, …), capped at five minutes"
  (Kubernetes "Pod Lifecycle", container restarts). Some kubelets restart the first crash immediately
  (Kubernetes in Action 2e, 6.2.1); the bound below takes the slower documented sequence.
- Probe defaults (core/v1 Probe): periodSeconds 10, timeoutSeconds 1, failureThreshold 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from floe.deploy.manifests import ContainerProbes, Stack, describe_cpu  # noqa: E402
from floe.deploy.readiness import Policy  # noqa: E402
from floe.capacity import fit  # noqa: E402
from floe.quantities import format_memory  # noqa: E402
from floe.synth import load_documents  # noqa: E402

GiB = 2**30
HOST_MEMORY_GIB = (8, 16, 32)
DOCKER_DESKTOP_MEMORY_SHARE = 0.5
# Docker Desktop's kube-system pods (coredns x2, etcd, apiserver, controller-manager, scheduler): their
# usual requests, as in tests/deploy/fixtures/pods-all-namespaces.json (authored, not measured).
KUBE_SYSTEM_REQUESTS = (850, 240 * 2**20)
POLL_SECONDS = 2.0
PHASE_TIMEOUT_SECONDS = 600.0  # `deploy --timeout` default (make PHASE_TIMEOUT)
BACKOFF_START, BACKOFF_CAP = 10, 300


def backoff_total(restarts: int) -> int:
    """Seconds of kubelet back-off before the ``restarts``-th restart (10, 20, 40, … capped at 300)."""
    return sum(min(BACKOFF_START * 2**i, BACKOFF_CAP) for i in range(restarts))


@dataclass(frozen=True)
class Detection:
    workload: str
    container: str
    kill_after_hang_s: int | None  # probe-driven kill of a container that hangs from the start
    probe: str
    crash_detect_s: float  # a container that exits at start-up
    hang_detect_s: float | None  # a container that hangs at start-up (None: only the phase timeout sees it)


def detection(cp: ContainerProbes, policy: Policy) -> Detection:
    """When the tool calls a failure: CrashLoopBackOff with ``policy.crash_loop_restarts`` restarts means
    restarts+1 failed runs and ``restarts`` back-offs, plus one poll."""
    n = policy.crash_loop_restarts
    startup, liveness = cp.get("startup"), cp.get("liveness")
    killer = startup or liveness
    kill = killer.seconds_to_fail if killer else None
    crash = backoff_total(n) + POLL_SECONDS
    hang = (n + 1) * kill + backoff_total(n) + POLL_SECONDS if kill is not None else None
    return Detection(str(cp.workload), cp.container, kill, killer.kind if killer else "none", crash, hang)


def load_stack(dist: Path | None) -> tuple[Stack, str]:
    if dist is not None:
        return Stack.load(dist), str(dist)
    try:
        from floe.config import load_config
        from floe.synth import synthesize

        tmp = Path(tempfile.mkdtemp(prefix="floe-bench-"))
        (tmp / "local.yaml").write_text("{}\n")
        config = load_config(tmp / "local.yaml", environ={})
        result = synthesize(config, tmp / "dist", root=tmp)
        return Stack.load(result.out_dir), "synthesized (default profile)"
    except Exception as exc:  # noqa: BLE001 — report on the fixture stack instead, and say so
        fixture = REPO / "tests/deploy/fixtures/dist"
        return Stack.load(fixture), f"tests/deploy/fixtures/dist (synth failed: {exc})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    stack, source = load_stack(args.dist)
    policy = Policy()
    totals = stack.resource_totals()
    steady, peak = stack.pod_requests(include_jobs=False), stack.pod_requests(include_jobs=True)
    hosts = []
    for host_gib in HOST_MEMORY_GIB:
        vm = int(host_gib * GiB * DOCKER_DESKTOP_MEMORY_SHARE)
        free = vm - KUBE_SYSTEM_REQUESTS[1]
        hosts.append({"host_memory_gib": host_gib, "docker_desktop_vm_bytes": vm, "free_for_stack_bytes": free,
                      "steady_fits": steady[1] <= free, "peak_fits": peak[1] <= free, "limits_fit": totals.memory_limit <= free})
    detections = [detection(cp, policy) for cp in stack.probes()]
    worst_hang = max((d for d in detections if d.hang_detect_s is not None), key=lambda d: d.hang_detect_s, default=None)
    never = [f"{d.workload}/{d.container}" for d in detections if d.hang_detect_s is None]
    other = {
        "ErrImageNeverPull / ImagePullBackOff / InvalidImageName": POLL_SECONDS,
        "CreateContainerConfigError (grace)": policy.config_error_grace_seconds + POLL_SECONDS,
        "Unschedulable: Insufficient cpu/memory (grace)": policy.unschedulable_grace_seconds + POLL_SECONDS,
        "OOMKilled (after the kill)": POLL_SECONDS,
        "CrashLoopBackOff, exits at start-up": backoff_total(policy.crash_loop_restarts) + POLL_SECONDS,
    }
    if args.json:
        print(json.dumps({"source": source, "requests": {"steady_cpu_m": steady[0], "steady_memory": steady[1], "peak_cpu_m": peak[0], "peak_memory": peak[1],
                                                          "limits_cpu_m": totals.cpu_limit_m, "limits_memory": totals.memory_limit},
                          "docker_desktop": hosts, "detection": [asdict(d) for d in detections], "by_failure_s": other,
                          "worst_hang": asdict(worst_hang) if worst_hang else None, "never_killed": never}, indent=2))
        return 0
    print(f"# Deploy benchmark ({source})\n")
    print("## Requests vs Docker Desktop's default allocation\n")
    print(f"- long-running requests: {describe_cpu(steady[0])}, {format_memory(steady[1])}")
    print(f"- with every bootstrap Job at once: {describe_cpu(peak[0])}, {format_memory(peak[1])}")
    print(f"- limits (long-running): {describe_cpu(totals.cpu_limit_m)}, {format_memory(totals.memory_limit)}")
    print(f"- Docker Desktop default VM memory = 50% of host; kube-system holds ~{format_memory(KUBE_SYSTEM_REQUESTS[1])}")
    print(f"- the plan's minimum node: {fit(load_documents(stack.dist)).summary()}\n")
    print("| host RAM | Docker Desktop VM | free for the stack | requests fit | with Jobs | limits fit |")
    print("|---|---|---|---|---|---|")
    for h in hosts:
        yes = lambda b: "yes" if b else "**no**"  # noqa: E731
        print(f"| {h['host_memory_gib']} GiB | {format_memory(h['docker_desktop_vm_bytes'])} | {format_memory(h['free_for_stack_bytes'])} | "
              f"{yes(h['steady_fits'])} | {yes(h['peak_fits'])} | {yes(h['limits_fit'])} |")
    print("\n## Worst-case failure detection (poll every 2 s)\n")
    print("| failure | seconds until the deploy tool reports it |")
    print("|---|---|")
    for name, seconds in other.items():
        print(f"| {name} | {seconds:.0f} |")
    print("\nPer container, a process that hangs at start-up (killed by its startup/liveness probe, "
          f"{policy.crash_loop_restarts + 1} failed runs, then CrashLoopBackOff):\n")
    print("| workload/container | killing probe | kill after (s) | crash loop called after (s) | reported as |")
    print("|---|---|---|---|---|")
    for d in sorted(detections, key=lambda d: -(d.hang_detect_s or 1e9)):
        hang = d.hang_detect_s
        reported = "timeout (exit 2)" if hang is None or hang > PHASE_TIMEOUT_SECONDS else "failure (exit 1)"
        print(f"| {d.workload}/{d.container} | {d.probe} | {d.kill_after_hang_s if d.kill_after_hang_s is not None else '-'} | "
              f"{f'{hang:.0f}' if hang is not None else '-'} | {reported} |")
    if worst_hang:
        bounded = min(worst_hang.hang_detect_s, PHASE_TIMEOUT_SECONDS)
        print(f"\nWorst case with a probe: {worst_hang.workload}/{worst_hang.container}, crash loop after {worst_hang.hang_detect_s:.0f} s; "
              f"the phase timeout ({PHASE_TIMEOUT_SECONDS:.0f} s) reports it first, at {bounded:.0f} s.")
    if never:
        print(f"No startup/liveness probe (a hang is only caught by the phase timeout): {', '.join(never)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
