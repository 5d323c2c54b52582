"""Pod Security Standards, "restricted" profile: the namespace labels that make the API server
enforce it, and the same rules evaluated offline over every pod template we synthesize.

The rules are those of the Kubernetes documentation "Pod Security Standards" (concepts/security/
pod-security-standards), policy version v1.27, which is the version the namespace pins: the
Baseline controls plus the Restricted ones. The admission controller checks the same fields of
every pod that a Deployment, StatefulSet, Job or CronJob would create, so a pod template that
fails here would be refused by the cluster (``enforce``) — found here at synth time instead.
"""

from __future__ import annotations

from collections.abc import Iterator

LEVEL = "restricted"
#: The policy version is pinned so a cluster upgrade cannot tighten the rules under a running stack.
VERSION = "v1.27"


def namespace_labels() -> dict[str, str]:
    """enforce + audit + warn, each pinned: a violating pod is refused, logged and warned about."""
    labels: dict[str, str] = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = VERSION
    return labels


# Baseline "Host Ports" / "Capabilities" / "Sysctls" / "/proc Mount Type" / "Volume Types" (restricted).
_BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}
_RESTRICTED_ADDABLE_CAPABILITIES = {"NET_BIND_SERVICE"}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
_SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}


def restricted_violations(spec: dict) -> Iterator[str]:
    """Every way ``spec`` (a PodSpec) breaks the restricted profile, as the admission message would
    name it. Empty when the pod would be admitted into a namespace enforcing ``restricted``."""
    psc = spec.get("securityContext") or {}
    containers = [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]

    # --- Baseline ---
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield f"{field}=true (host namespaces)"
    if _bad_selinux(psc.get("seLinuxOptions")):
        yield "pod seLinuxOptions set a forbidden type, user or role"
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            yield f"unsafe sysctl {sysctl.get('name')!r}"
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            yield f"volume {volume['name']!r} is a hostPath"
        elif not kinds <= _RESTRICTED_VOLUME_TYPES:
            yield f"volume {volume['name']!r} has restricted volume type(s) {sorted(kinds - _RESTRICTED_VOLUME_TYPES)}"

    # --- Restricted: the pod-level fields may stand in for every container's ---
    pod_non_root = psc.get("runAsNonRoot")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in _SECCOMP_ALLOWED:
        yield f"pod seccompProfile.type={pod_seccomp!r} (must be RuntimeDefault or Localhost)"
    if psc.get("runAsUser") == 0:
        yield "pod runAsUser=0"
    if pod_non_root is False:
        yield "pod runAsNonRoot=false"

    for c in containers:
        name = c.get("name", "?")
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            yield f"container {name!r}: privileged"
        caps = sc.get("capabilities") or {}
        added = set(caps.get("add") or [])
        if added - _BASELINE_CAPABILITIES:
            yield f"container {name!r}: adds non-baseline capabilities {sorted(added - _BASELINE_CAPABILITIES)}"
        if added - _RESTRICTED_ADDABLE_CAPABILITIES:
            yield f"container {name!r}: adds capabilities {sorted(added - _RESTRICTED_ADDABLE_CAPABILITIES)} (only NET_BIND_SERVICE may be added)"
        if "ALL" not in (caps.get("drop") or []):
            yield f"container {name!r}: capabilities.drop does not include ALL"
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                yield f"container {name!r}: hostPort {port['hostPort']}"
        if sc.get("procMount") not in (None, "Default"):
            yield f"container {name!r}: procMount={sc['procMount']!r}"
        if _bad_selinux(sc.get("seLinuxOptions")):
            yield f"container {name!r}: seLinuxOptions set a forbidden type, user or role"
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"container {name!r}: allowPrivilegeEscalation is not false"
        non_root = sc.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            yield f"container {name!r}: runAsNonRoot is not true (pod or container)"
        if sc.get("runAsUser") == 0:
            yield f"container {name!r}: runAsUser=0"
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in _SECCOMP_ALLOWED:
            yield f"container {name!r}: seccompProfile.type is {seccomp!r} (pod or container must set RuntimeDefault or Localhost)"


def _bad_selinux(options: dict | None) -> bool:
    if not options:
        return False
    return options.get("type", "") not in _SELINUX_TYPES or bool(options.get("user")) or bool(options.get("role"))
