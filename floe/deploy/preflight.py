"""Checks before anything is applied: the right cluster, reachable, the image built, enough room.

Each decision is a pure function over what kubectl/docker returned, so every branch is tested
without a cluster; :func:`run_preflight` only gathers the inputs.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from floe.deploy.distribution import MINIKUBE_PROVIDER, KubeContext, detect
from floe.deploy.kubectl import CommandError, Docker, Kubectl
from floe.deploy.manifests import Phase, Stack, pod_effective_requests
from floe.deploy.manifests import describe_cpu
from floe.quantities import cpu_millicores, format_memory, memory_bytes

# Contexts the usual local clusters create (Docker Desktop, kind, k3d, minikube, Rancher Desktop, OrbStack, colima).
LOCAL_CONTEXT_NAMES = {"docker-desktop", "docker-for-desktop", "minikube", "rancher-desktop", "orbstack", "colima"}
LOCAL_CONTEXT_PREFIXES = ("kind-", "k3d-", "colima-")
# Docker Desktop's API server certificate name; host.docker.internal from inside containers.
LOCAL_HOSTS = {"localhost", "kubernetes.docker.internal", "host.docker.internal"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    # A warning is reported but does not stop the deploy.
    blocking: bool = True

    @property
    def symbol(self) -> str:
        return "ok" if self.ok else ("FAIL" if self.blocking else "warn")


def _is_local_host(host: str) -> bool:
    if host in LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_context(context: str | None, server: str | None, allowed: Iterable[str] = (), providers: Iterable[str] = ()) -> Check:
    """Refuse a context that is not a local cluster, unless explicitly allowed by name.

    ``providers``: the kubeconfig extensions' ``provider`` fields of the context and its cluster; minikube
    writes ``minikube.sigs.k8s.io`` there for every profile, whatever its name (floe/deploy/distribution.py).
    """
    if not context:
        return Check("kubectl context", False, "no current kubectl context: enable Kubernetes in Docker Desktop (Settings > Kubernetes)")
    host = urlsplit(server or "").hostname or ""
    where = f"context '{context}' (server {server or 'unknown'})"
    if context in set(allowed):
        return Check("kubectl context", True, f"{where}: allowed explicitly")
    if _is_local_host(host):
        return Check("kubectl context", True, f"{where} is a local cluster")
    if context in LOCAL_CONTEXT_NAMES or context.startswith(LOCAL_CONTEXT_PREFIXES):
        # kind/minikube API servers can sit on a VM or docker-network address: the name is the signal.
        return Check("kubectl context", True, f"{where}: a local-cluster context name")
    if MINIKUBE_PROVIDER in set(providers):
        # `minikube start -p NAME`: the context is the profile name, the server on the minikube network.
        return Check("kubectl context", True, f"{where}: a minikube profile (kubeconfig extension {MINIKUBE_PROVIDER})")
    return Check(
        "kubectl context",
        False,
        f"{where} does not look like a local cluster; refusing to deploy there. "
        f"Switch with `kubectl config use-context docker-desktop`, or pass --allow-context {context} if you mean it.",
    )


def check_reachable(result_code: int, stderr: str) -> Check:
    if result_code == 0:
        return Check("cluster reachable", True, "API server answers /readyz")
    detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {result_code}"
    return Check("cluster reachable", False, f"the API server does not answer ({detail}): is Docker Desktop running with Kubernetes enabled?")


def check_images(images: Iterable[str], exists: Mapping[str, bool]) -> Check:
    missing = [i for i in images if not exists.get(i, False)]
    if missing:
        return Check("project image", False, f"not built: {', '.join(missing)}. Run `make image` first.")
    shown = ", ".join(images) or "none needed"
    return Check("project image", True, f"present locally: {shown}")


def check_pull_policies(images: Mapping[str, str], local_images: Iterable[str]) -> Check:
    """A local-only image with imagePullPolicy Always would be pulled from a registry and fail."""
    bad = [i for i in local_images if images.get(i) == "Always" or (images.get(i, "") == "" and i.endswith(":latest"))]
    if bad:
        return Check("pull policy", False, f"{', '.join(bad)} would be pulled from a registry (policy Always): use IfNotPresent or Never")
    return Check("pull policy", True, "local images are used without pulling")


def node_allocatable(nodes: Mapping[str, Any]) -> tuple[int, int]:
    cpu = mem = 0
    for node in nodes.get("items") or []:
        spec = node.get("spec") or {}
        if spec.get("unschedulable"):
            continue
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        cpu += cpu_millicores(allocatable.get("cpu", "0"))
        mem += memory_bytes(allocatable.get("memory", "0"))
    return cpu, mem


def requests_of_other_pods(pods: Mapping[str, Any], namespace: str) -> tuple[int, int]:
    """What pods outside our namespace already hold (kube-system, other apps): not available to us."""
    cpu = mem = 0
    for pod in pods.get("items") or []:
        if pod.get("metadata", {}).get("namespace") == namespace:
            continue  # ours: replaced by what we apply
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue  # finished pods hold no requests
        c, m = pod_effective_requests(pod.get("spec") or {})
        cpu, mem = cpu + c, mem + m
    return cpu, mem


def check_capacity(
    allocatable: tuple[int, int], used_by_others: tuple[int, int], steady: tuple[int, int], peak: tuple[int, int]
) -> Check:
    free_cpu, free_mem = allocatable[0] - used_by_others[0], allocatable[1] - used_by_others[1]
    summary = (
        f"stack requests {describe_cpu(steady[0])} / {format_memory(steady[1])} "
        f"(with bootstrap Jobs {describe_cpu(peak[0])} / {format_memory(peak[1])}); "
        f"node free {describe_cpu(free_cpu)} / {format_memory(free_mem)} "
        f"(allocatable {describe_cpu(allocatable[0])} / {format_memory(allocatable[1])}, "
        f"other pods hold {describe_cpu(used_by_others[0])} / {format_memory(used_by_others[1])})"
    )
    short = [what for what, need, have in (("memory", steady[1], free_mem), ("CPU", steady[0], free_cpu)) if need > have]
    if short:
        return Check(
            "capacity",
            False,
            f"not enough {' and '.join(short)}: {summary}. Raise Docker Desktop's limits in Settings > Resources "
            "(Advanced), or lower the stack's requests in its config.",
        )
    if peak[0] > free_cpu or peak[1] > free_mem:
        return Check("capacity", False, f"tight: {summary}; Jobs may wait for room until earlier ones finish", blocking=False)
    return Check("capacity", True, summary)


@dataclass(frozen=True)
class PreflightInputs:
    context: str | None
    server: str | None
    reachable: tuple[int, str]
    images_present: dict[str, bool]
    nodes: dict[str, Any] | None
    pods: dict[str, Any] | None
    # `kubectl config view --minify -o json`: cluster/user names and extensions tell distributions apart.
    config_view: dict[str, Any] | None = None
    # With HTTPRoutes in the phases (ingress.gateway): the Gateway API CRDs the cluster has, and each
    # declared Gateway as the API server returns it ("namespace/name" -> object, None: not found).
    gateway_api: GatewayApiState | None = None


@dataclass(frozen=True)
class GatewayApiState:
    installed_crds: frozenset[str]
    gateways: dict[str, dict[str, Any] | None]


#: kind -> its CRD's name, for the Gateway API kinds dist/ may hold.
GATEWAY_API_CRDS = {"HTTPRoute": "httproutes.gateway.networking.k8s.io", "ReferenceGrant": "referencegrants.gateway.networking.k8s.io"}
GATEWAY_API_INSTALL = (
    "install the Gateway API's standard channel (v1.0 or newer; this stack is checked against v1.3.0: "
    "kubectl apply -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.3.0/standard-install.yaml), "
    "or your Gateway implementation's bundle of it"
)


def gateway_objects(phases: Iterable[Phase]) -> list[dict[str, Any]]:
    return [o for phase in phases for o in phase.objects if o.get("kind") in GATEWAY_API_CRDS]


def route_parents(phases: Iterable[Phase]) -> dict[str, dict[str, Any]]:
    """"namespace/name" of each Gateway the phases' HTTPRoutes attach to -> that parentRef."""
    parents: dict[str, dict[str, Any]] = {}
    for route in (o for o in gateway_objects(phases) if o["kind"] == "HTTPRoute"):
        for parent in route["spec"].get("parentRefs") or []:
            namespace = parent.get("namespace", route["metadata"]["namespace"])
            parents.setdefault(f"{namespace}/{parent['name']}", {**parent, "namespace": namespace})
    return parents


def _namespace_admitted(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against a namespace's labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if (operator == "In" and (not present or labels[key] not in values)) or (operator == "NotIn" and present and labels[key] in values):
            return False
        if (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
    return True


def check_gateway_api(
    needed_crds: Iterable[str], parents: dict[str, dict[str, Any]], state: GatewayApiState, namespace: str, namespace_labels: dict[str, str]
) -> Check:
    """The cluster can take the HTTPRoutes: the Gateway API CRDs exist, each declared Gateway exists,
    has the declared listener, and that listener (every one, without sectionName) admits HTTPRoutes
    from the stack's namespace (``allowedRoutes``: protocol HTTP/HTTPS, ``namespaces.from`` Same /
    All / Selector, ``kinds``), as the Gateway API spec says a route attaches."""
    missing = sorted(set(needed_crds) - state.installed_crds)
    if missing:
        return Check("Gateway API", False, f"the cluster has no CRD {', '.join(missing)}: {GATEWAY_API_INSTALL}.")
    admitted: list[str] = []
    for key, parent in sorted(parents.items()):
        gateway = state.gateways.get(key)
        if gateway is None:
            return Check("Gateway API", False, f"Gateway {key} not found: ingress.gateway must name an existing Gateway (kubectl get gateways -A).")
        listeners = gateway.get("spec", {}).get("listeners") or []
        wanted = parent.get("sectionName")
        if wanted:
            listeners = [l for l in listeners if l.get("name") == wanted]
            if not listeners:
                have = ", ".join(l.get("name", "?") for l in gateway.get("spec", {}).get("listeners") or [])
                return Check("Gateway API", False, f"Gateway {key} has no listener {wanted!r} (it has: {have}): fix ingress.gateway.section_name.")
        refusals = []
        for listener in listeners:
            name = listener.get("name")
            if listener.get("protocol") not in ("HTTP", "HTTPS"):
                refusals.append(f"listener {name} speaks {listener.get('protocol')}, not HTTP or HTTPS")
                continue
            allowed = listener.get("allowedRoutes") or {}
            kinds = [k.get("kind") for k in allowed.get("kinds") or [] if k.get("group", "gateway.networking.k8s.io") == "gateway.networking.k8s.io"]
            if allowed.get("kinds") and "HTTPRoute" not in kinds:
                refusals.append(f"listener {name} admits only {', '.join(kinds) or 'other kinds'}, not HTTPRoute")
                continue
            namespaces = allowed.get("namespaces") or {}
            source = namespaces.get("from", "Same")
            if source == "Same" and parent["namespace"] != namespace:
                refusals.append(f"listener {name} admits routes from its own namespace only (allowedRoutes.namespaces.from: Same)")
            elif source == "Selector" and not _namespace_admitted(namespaces.get("selector") or {}, namespace_labels):
                refusals.append(f"listener {name}'s allowedRoutes.namespaces.selector does not match namespace {namespace}")
            else:
                admitted.append(f"{key} listener {name} ({listener.get('protocol')})")
        if not any(a.startswith(f"{key} ") for a in admitted):
            return Check(
                "Gateway API",
                False,
                f"Gateway {key} would not attach the UIs' HTTPRoutes from namespace {namespace}: {'; '.join(refusals)}. "
                "Its owner sets the listener's allowedRoutes (namespaces.from: All, or a Selector matching the namespace).",
            )
    return Check("Gateway API", True, f"CRDs installed; routes from {namespace} admitted by {', '.join(admitted)}")


def gather_gateway_api(kubectl: Kubectl, phases: Iterable[Phase]) -> GatewayApiState | None:
    """What check_gateway_api needs, read only when the phases hold Gateway API objects."""
    phases = list(phases)
    needed = sorted({GATEWAY_API_CRDS[o["kind"]] for o in gateway_objects(phases)})
    if not needed:
        return None
    crds = kubectl.run("get", "customresourcedefinitions", *needed, "-o", "name", "--ignore-not-found", check=False, timeout=20)
    installed = frozenset(line.rsplit("/", 1)[-1] for line in crds.stdout.split() if line)
    gateways: dict[str, dict[str, Any] | None] = {}
    if GATEWAY_API_CRDS["HTTPRoute"] in installed:
        for key in route_parents(phases):
            namespace, name = key.split("/", 1)
            found = kubectl.run("get", "gateways.gateway.networking.k8s.io", name, "-n", namespace, "-o", "json", "--ignore-not-found", check=False, timeout=20)
            gateways[key] = json.loads(found.stdout) if found.returncode == 0 and found.stdout.strip() else None
    return GatewayApiState(installed, gateways)


@dataclass(frozen=True)
class ContextView:
    """A kube context as kubeconfig describes it: its name, API server URL and ``kubectl config view
    --minify -o json`` (cluster/user names and provider extensions tell distributions apart)."""

    context: str | None
    server: str | None
    config_view: dict[str, Any] | None

    def check(self, allowed: Iterable[str] = ()) -> Check:
        """check_context with the kubeconfig's provider extensions (a minikube profile of any name)."""
        providers = KubeContext.from_config_view(self.config_view, self.context).providers
        return check_context(self.context, self.server, allowed, providers)


class GroundError(Exception):
    """A cluster command cannot start: a tool is missing, there is no context, the server does not
    answer. The message is one or two lines and says what to do."""


# What the runner returns when the binary is not on PATH (floe.deploy.kubectl.subprocess_runner).
COMMAND_NOT_FOUND = 127
KUBECTL_INSTALL = "https://kubernetes.io/docs/tasks/tools/"


def kubeconfig_description(environ: Mapping[str, str] | None = None) -> str:
    """Where kubectl reads contexts from, as a person would look for it."""
    environ = os.environ if environ is None else environ
    return f"KUBECONFIG={environ['KUBECONFIG']}" if environ.get("KUBECONFIG") else "~/.kube/config"


def kubectl_missing(kubectl: Kubectl) -> GroundError:
    return GroundError(
        f"kubectl not found (looked for '{kubectl.binary}' on PATH): every cluster command needs it.\n"
        f"Install it ({KUBECTL_INSTALL}; Docker Desktop ships one), or set FLOE_KUBECTL to its path, then run the command again."
    )


def read_context(kubectl: Kubectl, context: str | None = None) -> ContextView:
    """``context``, else kubeconfig's current one, with what kubeconfig says about it. Talks to no
    cluster: only ``kubectl config``. Raises :class:`GroundError` when kubectl itself is missing."""
    if not context:
        current = kubectl.run("config", "current-context", check=False, timeout=10)
        if current.returncode == COMMAND_NOT_FOUND:
            raise kubectl_missing(kubectl)
        context = current.stdout.strip() or None if current.returncode == 0 else None
    server = config_view = None
    if context:
        pinned = Kubectl(kubectl.binary, context, kubectl.runner, kubectl.request_timeout)
        view = pinned.run("config", "view", "--minify", "-o", "json", check=False, timeout=10)
        if view.returncode == COMMAND_NOT_FOUND:
            raise kubectl_missing(kubectl)
        if view.returncode == 0:
            config_view = json.loads(view.stdout)
            clusters = config_view.get("clusters") or []
            server = clusters[0].get("cluster", {}).get("server") if clusters else None
    return ContextView(context, server, config_view)


def check_docker(docker: Docker) -> None:
    """The docker CLI is on PATH and its engine answers (what ``make image`` builds with)."""
    result = docker.runner([docker.binary, "version", "--format", "{{.Server.Version}}"], timeout=30)
    if result.returncode == COMMAND_NOT_FOUND:
        raise GroundError(
            f"docker not found (looked for '{docker.binary}' on PATH): `make image` builds the project image with it.\n"
            "Install Docker Desktop (or another engine with the docker CLI), or set FLOE_DOCKER to its path, then run it again."
        )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise GroundError(
            f"the Docker engine does not answer ({lines[-1] if lines else f'exit {result.returncode}'}).\n"
            "Start Docker Desktop (or your engine), wait until it is running, then run the command again."
        )


def ground(kubectl: Kubectl, *, docker: Docker | None = None, allowed: Iterable[str] | None = None, reach: bool = True) -> ContextView:
    """The one check every cluster command runs before any work, in the order a person fixes things:
    kubectl on PATH, a context, a local one (``allowed`` given: the commands that change a cluster), its
    API server answering, then docker (when the command builds the image). Raises :class:`GroundError` with a
    one- or two-line message; returns the context, for pinning kubectl to it."""
    found = read_context(kubectl, kubectl.context)
    if not found.context:
        raise GroundError(
            f"no current kubectl context (kubeconfig: {kubeconfig_description()}).\n"
            "Enable Kubernetes in Docker Desktop (Settings > Kubernetes) or start your local cluster; "
            "`kubectl config get-contexts` lists contexts, `kubectl config use-context NAME` picks one."
        )
    if found.config_view is None:
        raise GroundError(
            f"context '{found.context}' is not in your kubeconfig ({kubeconfig_description()}).\n"
            "`kubectl config get-contexts` lists the contexts there; pick one with `kubectl config use-context NAME`."
        )
    if allowed is not None:
        check = found.check(allowed)
        if not check.ok:
            raise GroundError(check.message)  # never even talk to a cluster we refuse
    if reach:
        pinned = Kubectl(kubectl.binary, found.context, kubectl.runner, kubectl.request_timeout)
        ready = pinned.run("get", "--raw=/readyz", "--request-timeout=5s", check=False, timeout=15)
        if ready.returncode != 0:
            lines = (ready.stderr or ready.stdout).strip().splitlines()
            raise GroundError(
                f"context '{found.context}' (server {found.server}): the API server does not answer ({lines[-1] if lines else f'exit {ready.returncode}'}).\n"
                "Start the cluster (Docker Desktop: Settings > Kubernetes, wait for the green light) or switch context; "
                "`kubectl get --raw=/readyz` must print ok."
            )
    if docker is not None:
        check_docker(docker)
    return found


def gather(
    kubectl: Kubectl, docker: Docker, local_images: Iterable[str], allowed_contexts: Iterable[str] = (), phases: Iterable[Phase] = ()
) -> PreflightInputs:
    """Read the context first; contact the API server only if that context is one we would deploy to."""
    found = read_context(kubectl)
    context, server, config_view = found.context, found.server, found.config_view
    acceptable = found.check(allowed_contexts).ok
    if acceptable:
        kubectl = Kubectl(kubectl.binary, context, kubectl.runner, kubectl.request_timeout)  # pin what we checked
    ready = kubectl.run("get", "--raw=/readyz", "--request-timeout=5s", check=False, timeout=15) if acceptable else None
    nodes = pods = gateway_api = None
    if ready is not None and ready.returncode == 0:
        try:
            nodes = kubectl.get_json("nodes")
            pods = kubectl.get_json("pods", "--all-namespaces")
        except CommandError:
            pass
        gateway_api = gather_gateway_api(kubectl, phases)
    return PreflightInputs(
        context=context,
        server=server,
        reachable=(ready.returncode, ready.stderr) if ready is not None else (1, "not contacted: context refused"),
        images_present={image: docker.image_exists(image) for image in local_images},
        nodes=nodes,
        pods=pods,
        config_view=config_view,
        gateway_api=gateway_api,
    )


def context_check(inputs: PreflightInputs, allowed: Iterable[str] = ()) -> Check:
    """check_context over what gather() read (name, server and the kubeconfig's provider extensions)."""
    return ContextView(inputs.context, inputs.server, inputs.config_view).check(allowed)


def context_check_with_distribution(check: Check, inputs: PreflightInputs) -> Check:
    """The accepted context's line also says which distribution it is (floe/deploy/distribution.py)."""
    found = detect(KubeContext.from_config_view(inputs.config_view, inputs.context), inputs.nodes)
    return Check(check.name, check.ok, f"{check.message}; distribution: {found.describe()} [{found.evidence}]", check.blocking)


def decide(inputs: PreflightInputs, stack: Stack, phases: list[Phase], local_images: list[str], allowed_contexts: Iterable[str] = ()) -> list[Check]:
    """Every check, in the order a person fixes them."""
    checks = [context_check(inputs, allowed_contexts)]
    if not checks[0].ok:
        return checks  # never even talk to a cluster we refuse
    checks[0] = context_check_with_distribution(checks[0], inputs)
    checks.append(check_reachable(*inputs.reachable))
    checks.append(check_images(local_images, inputs.images_present))
    checks.append(check_pull_policies(stack.images(phases), local_images))
    if inputs.nodes is not None and inputs.pods is not None:
        # The phases being deployed must fit next to what other namespaces already hold.
        checks.append(
            check_capacity(
                node_allocatable(inputs.nodes),
                requests_of_other_pods(inputs.pods, stack.namespace),
                stack.pod_requests(phases, include_jobs=False),
                stack.pod_requests(phases, include_jobs=True),
            )
        )
    if inputs.gateway_api is not None:
        namespace = stack.namespace_object or {}
        labels = {**((namespace.get("metadata") or {}).get("labels") or {}), "kubernetes.io/metadata.name": stack.namespace}
        needed = {GATEWAY_API_CRDS[o["kind"]] for o in gateway_objects(phases)}
        checks.append(check_gateway_api(needed, route_parents(phases), inputs.gateway_api, stack.namespace, labels))
    return checks


def passed(checks: list[Check]) -> bool:
    return all(c.ok or not c.blocking for c in checks)
