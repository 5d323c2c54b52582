"""The UIs behind one Ingress (networking.k8s.io/v1): Dagster, Cube REST/GraphQL, Marquez web, the
Jaeger UI and the MinIO console, one host each (``ingress.hosts``), optionally TLS-terminated with
one Secret (``ingress.tls_secret``), for the IngressClass ``ingress.class_name``.

Guarded (issue 19): ``ingress.auth`` puts an authentication service (ingress-nginx ``auth-url`` /
``auth-signin``: an oauth2-proxy you run) or basic auth from a declared Secret (``auth-type``,
``auth-secret``, ``auth-realm``) in front of every host, since the annotations apply to the whole
Ingress; ``ingress.annotations`` adds yours (body size, cert-manager issuer, ...). These are
ingress-nginx's annotation names: another controller ignores them, so the UIs would be open.

Off by default (the local profile uses ``make port-forward``). Each rule routes ``/`` (pathType
Prefix) of its host to the UI's Service port; the ``ingress`` manifest check proves each backend
Service and port exist. The annotations below say where the ingress controller's pods run:
constructs/network.py reads them from this object and admits exactly those pods into the backends'
pods, on the target ports (no hand-written rule).
"""

from __future__ import annotations

import json


from constructs import base, k8s, plain
from floe.config import StackConfig

#: Namespace of the ingress controller's pods (read by constructs/network.py).
CONTROLLER_NAMESPACE_ANNOTATION = "floe.dev/ingress-controller-namespace"
#: The controller pods' labels, as JSON (read by constructs/network.py).
CONTROLLER_LABELS_ANNOTATION = "floe.dev/ingress-controller-pod-labels"


def backends(config: StackConfig) -> dict[str, tuple[str, int]]:
    """UI (an ``ingress.hosts`` field) -> (Service name, Service port)."""
    n = config.names
    return {
        "dagster": (n.dagster_webserver, config.dagster.service_port),
        "cube": (n.cube, config.cube.api_port),
        "marquez": (n.marquez_web, config.marquez.web.port),
        "jaeger": (n.jaeger, config.jaeger.ui_port),
        "minio_console": (n.minio_console, config.minio.console_port),
    }


class UiIngress(plain.PlainConstruct):
    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        ing, name = config.ingress, config.names.ingress
        hosts = ing.hosts.given()
        targets = backends(config)
        rules = [
            k8s.IngressRule(
                host=host,
                http=k8s.HttpIngressRuleValue(
                    paths=[
                        k8s.HttpIngressPath(
                            path="/",
                            path_type="Prefix",
                            backend=k8s.IngressBackend(
                                service=k8s.IngressServiceBackend(
                                    name=targets[ui][0], port=k8s.ServiceBackendPort(number=targets[ui][1])
                                )
                            ),
                        )
                    ]
                ),
            )
            for ui, host in sorted(hosts.items())
        ]
        annotations = {
            # Yours first (ingress.annotations), then authentication in front of every host
            # (ingress.auth; the config refuses the same keys in both), then the stack's own.
            **ing.annotations,
            **ing.auth_annotations(),
            base.DESCRIPTION_ANNOTATION: "the UIs from outside the cluster, one host each",
            CONTROLLER_NAMESPACE_ANNOTATION: ing.controller.namespace,
            CONTROLLER_LABELS_ANNOTATION: json.dumps(ing.controller.pod_labels, sort_keys=True, separators=(",", ":")),
        }
        plain.api_object(
            k8s.KubeIngress,
            self,
            "ingress",
            metadata=base.meta(name, base.labels(name, component="ingress", layer=layer), annotations),
            spec=k8s.IngressSpec(
                ingress_class_name=ing.class_name,
                rules=rules,
                tls=[k8s.IngressTls(hosts=sorted(hosts.values()), secret_name=ing.tls_secret)] if ing.tls_secret else None,
            ),
        )
