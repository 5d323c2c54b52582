"""The Kubernetes API types the constructs build with: cdk8s-plus-27's ``k8s`` names, as plain Python.

``k8s.Container(name=..., liveness_probe=...)``, ``k8s.Quantity.from_string("1Gi")``,
``k8s.KubeDeployment(scope, id, metadata=..., spec=...)``: the same names and keyword arguments as the
generated L1 module ``cdk8s_plus_27.k8s`` (Kubernetes 1.27), which the constructs used before. That
module costs about a quarter of a second of CPU to import (its jsii assembly is loaded into node and
its Python module is megabytes of generated classes), every struct of it type-checks its arguments
with typeguard when built, and each ``Kube*`` object is a jsii object whose props node converts again
at synth: together more than the bare jsii start itself. Here a struct is a keyword record, a value
object holds its value, and a ``Kube*`` class makes a :class:`constructs.plain.PlainApiObject`, kept
and rendered in Python (:func:`constructs.plain.api_object`): cdk8s gets each chart's objects in one
call back, and writes every file.

Field names follow jsii's rule (``liveness_probe`` -> ``livenessProbe``, a trailing ``_`` dropped:
``except_``, ``from_``) except where Kubernetes spells an initialism (:data:`FIELD_NAMES`:
``cluster_ip`` -> ``clusterIP``). tests/infra/test_plain.py checks that rule against every field of
every struct of ``cdk8s_plus_27.k8s`` and :data:`KINDS` against its classes, so a name here is the
generated module's. What the generated classes also did, rejecting an unknown field or a wrong type,
the strict schema check of every object (floe/manifest_checks.py, ``schema``) still does: a field
that Kubernetes does not know fails the synth, naming the object and the field.
"""

from __future__ import annotations

from typing import Any

#: Fields whose Kubernetes name is not jsii's camel case (from cdk8s-plus-27's generated docstrings;
#: JSONSchemaProps' ``$ref``/``x-kubernetes-*`` fields are not supported here).
FIELD_NAMES = {
    "client_ip": "clientIP",
    "cluster_ip": "clusterIP",
    "dataset_uuid": "datasetUUID",
    "disk_uri": "diskURI",
    "downward_api": "downwardAPI",
    "external_id": "externalID",
    "host_ip": "hostIP",
    "host_ipc": "hostIPC",
    "host_pid": "hostPID",
    "insecure_skip_tls_verify": "insecureSkipTLSVerify",
    "load_balancer_ip": "loadBalancerIP",
    "node_id": "nodeID",
    "non_resource_ur_ls": "nonResourceURLs",
    "open_apiv3_schema": "openAPIV3Schema",
    "pd_id": "pdID",
    "pod_cid_rs": "podCIDRs",
    "pod_cidr": "podCIDR",
    "provider_id": "providerID",
    "scale_io": "scaleIO",
    "set_hostname_as_fqdn": "setHostnameAsFQDN",
    "storage_policy_id": "storagePolicyID",
    "target_cpu_utilization_percentage": "targetCPUUtilizationPercentage",
    "target_ww_ns": "targetWWNs",
    "volume_id": "volumeID",
}

#: apiVersion and kind of each ``Kube*`` class (cdk8s-plus-27's ``GVK``).
KINDS = {
    "KubeClusterRole": ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    "KubeClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    "KubeConfigMap": ("v1", "ConfigMap"),
    "KubeCronJob": ("batch/v1", "CronJob"),
    "KubeDaemonSet": ("apps/v1", "DaemonSet"),
    "KubeDeployment": ("apps/v1", "Deployment"),
    "KubeEndpoints": ("v1", "Endpoints"),
    "KubeHorizontalPodAutoscaler": ("autoscaling/v1", "HorizontalPodAutoscaler"),
    "KubeIngress": ("networking.k8s.io/v1", "Ingress"),
    "KubeJob": ("batch/v1", "Job"),
    "KubeLimitRange": ("v1", "LimitRange"),
    "KubeNamespace": ("v1", "Namespace"),
    "KubeNetworkPolicy": ("networking.k8s.io/v1", "NetworkPolicy"),
    "KubePersistentVolumeClaim": ("v1", "PersistentVolumeClaim"),
    "KubePod": ("v1", "Pod"),
    "KubePodDisruptionBudget": ("policy/v1", "PodDisruptionBudget"),
    "KubePodTemplate": ("v1", "PodTemplate"),
    "KubePriorityClass": ("scheduling.k8s.io/v1", "PriorityClass"),
    "KubeResourceQuota": ("v1", "ResourceQuota"),
    "KubeRole": ("rbac.authorization.k8s.io/v1", "Role"),
    "KubeRoleBinding": ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    "KubeSecret": ("v1", "Secret"),
    "KubeService": ("v1", "Service"),
    "KubeServiceAccount": ("v1", "ServiceAccount"),
    "KubeStatefulSet": ("apps/v1", "StatefulSet"),
    "KubeStorageClass": ("storage.k8s.io/v1", "StorageClass"),
}


def field_name(python_name: str) -> str:
    """The Kubernetes name of a field given by its Python keyword."""
    known = FIELD_NAMES.get(python_name)
    if known is not None:
        return known
    head, *rest = python_name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Struct:
    """A Kubernetes API struct (``k8s.Container``, ``k8s.PodSpec``, ...): its fields by Python keyword;
    ``None`` means unset, as in the generated classes. Fields read as attributes (``env.name``)."""

    __slots__ = ("_values",)

    def __init__(self, **values: Any) -> None:
        self._values = {k: v for k, v in values.items() if v is not None}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._values.get(name)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values == self._values  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"k8s.{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


class _Value:
    """A value object (IntOrString, Quantity): rendered as its value."""

    __slots__ = ("value",)

    def __init__(self, value: str | int | float) -> None:
        self.value = value

    @classmethod
    def from_string(cls, value: str) -> Any:
        return cls(value)

    @classmethod
    def from_number(cls, value: int | float) -> Any:
        return cls(value)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.value == self.value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.value))

    def __repr__(self) -> str:
        return f"k8s.{type(self).__name__}({self.value!r})"


class IntOrString(_Value):
    pass


class Quantity(_Value):
    pass


class KubeKind:
    """``k8s.KubeDeployment`` and the like: calling it adds the object to ``scope`` (a
    :class:`constructs.plain.PlainApiObject`, see constructs/plain.py) and returns it."""

    def __init__(self, name: str, api_version: str, kind: str) -> None:
        self.__name__ = self.name = name
        self.api_version, self.kind = api_version, kind

    def __call__(self, scope: Any, id: str, **props: Any) -> Any:
        from constructs import plain

        return plain.api_object(self, scope, id, **props)

    def __repr__(self) -> str:
        return f"k8s.{self.name}"


def __getattr__(name: str) -> Any:
    """``k8s.<Name>``: a ``Kube*`` kind of :data:`KINDS`, else a struct type (made once)."""
    if name.startswith("__"):
        raise AttributeError(name)
    if name in KINDS:
        made: Any = KubeKind(name, *KINDS[name])
    elif name.startswith("Kube") and not name.endswith("Props"):
        raise AttributeError(f"k8s.{name}: not in constructs.k8s.KINDS (add its apiVersion and kind there)")
    else:
        made = type(name, (Struct,), {"__slots__": (), "__module__": __name__, "__qualname__": name})
    globals()[name] = made
    return made
