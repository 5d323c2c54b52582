"""The UIs through the Gateway API (``ingress.gateway``), the alternative to constructs/ingress.py.

One ``HTTPRoute`` (gateway.networking.k8s.io/v1) per UI host, attached to the declared, existing
Gateway (``parentRefs``: its name, namespace and optionally one listener, ``sectionName``), routing
``/`` (PathPrefix) of that host to the same Service and port as the Ingress would
(:func:`constructs.ingress.backends`). The Gateway is not ours: its listeners, their hostnames and
``allowedRoutes`` belong to whoever runs it.

TLS the Gateway way: it terminates on the Gateway's listener, whose ``certificateRefs`` name the
certificate's Secret. ``ingress.tls_secret`` keeps that Secret in the stack's namespace (as for the
Ingress, created by you or cert-manager); a Gateway in another namespace may reference it only when
a ``ReferenceGrant`` in the Secret's namespace allows it (Gateway API GEP-709), so exactly then one is
synthesized: from Gateways of that namespace, to that one Secret. A Gateway in the stack's own
namespace needs none, and without ``tls_secret`` the certificate is the Gateway owner's business.

NetworkPolicies: like the Ingress, each route carries where the Gateway's data-plane pods run
(annotations below, from ``ingress.gateway.data_plane``); constructs/network.py reads them from the
route and admits exactly those pods into the backends' pods, on the target ports. The ``gateway``
manifest check proves each parentRef is the declared Gateway and each backendRef a Service port we
synthesize; the ``schema`` check validates the objects against the Gateway API's published CRDs.
"""

from __future__ import annotations

import json

from cdk8s import ApiObject, ApiObjectMetadata, JsonPatch
from constructs import Construct

from constructs import base
from constructs.ingress import backends
from floe.config import GATEWAY_API_GROUP as GATEWAY_GROUP
from floe.config import StackConfig

HTTP_ROUTE_API_VERSION = f"{GATEWAY_GROUP}/v1"
#: v1beta1: served by every release from v0.6 to v1.6 (v1 exists only from v1.6 on).
REFERENCE_GRANT_API_VERSION = f"{GATEWAY_GROUP}/v1beta1"
#: Namespace of the Gateway's data-plane pods (read by constructs/network.py).
DATA_PLANE_NAMESPACE_ANNOTATION = "floe.dev/gateway-data-plane-namespace"
#: The data-plane pods' labels, as JSON (read by constructs/network.py).
DATA_PLANE_LABELS_ANNOTATION = "floe.dev/gateway-data-plane-pod-labels"
#: Each route's one match: every path of its host, as the Ingress' ``/`` (pathType Prefix) does.
ROUTE_MATCH = {"path": {"type": "PathPrefix", "value": "/"}}


class UiRoutes(Construct):
    """The HTTPRoutes (and ReferenceGrant) of ingress.gateway: raw cdk8s ApiObjects (no cdk8s-plus-27
    kind), so a construct of node's, read back from node (constructs/plain.py: written after the
    chart's plain objects; this is the last construct of its chart anyway)."""

    def __init__(self, scope: Construct, id: str, *, config: StackConfig, layer: str) -> None:
        super().__init__(scope, id)
        ing, gateway = config.ingress, config.ingress.gateway
        assert gateway is not None
        targets = backends(config)
        annotations = {
            DATA_PLANE_NAMESPACE_ANNOTATION: gateway.data_plane.namespace,
            DATA_PLANE_LABELS_ANNOTATION: json.dumps(gateway.data_plane.pod_labels, sort_keys=True, separators=(",", ":")),
        }
        for ui, host in sorted(ing.hosts.given().items()):
            name = config.names.ui_route(ui)
            service, port = targets[ui]
            route = ApiObject(
                self,
                f"route-{ui}",
                api_version=HTTP_ROUTE_API_VERSION,
                kind="HTTPRoute",
                metadata=ApiObjectMetadata(
                    name=name,
                    labels=base.labels(name, component="gateway-route", layer=layer),
                    annotations={base.DESCRIPTION_ANNOTATION: f"the {ui.replace('_', ' ')} UI from outside the cluster, through the Gateway", **annotations},
                ),
            )
            route.add_json_patch(
                JsonPatch.add(
                    "/spec",
                    {
                        "parentRefs": [gateway.parent_ref()],
                        "hostnames": [host],
                        "rules": [
                            {
                                "matches": [ROUTE_MATCH],
                                # weight: the CRD's default, written (a default left out inside a list
                                # makes every kubectl apply send the list again: the "apply" check).
                                "backendRefs": [{"group": "", "kind": "Service", "name": service, "port": port, "weight": 1}],
                            }
                        ],
                    },
                )
            )
        if ing.tls_secret and gateway.namespace != config.namespace:
            name = config.names.gateway_certificate_grant
            grant = ApiObject(
                self,
                "certificate-grant",
                api_version=REFERENCE_GRANT_API_VERSION,
                kind="ReferenceGrant",
                metadata=ApiObjectMetadata(
                    name=name,
                    labels=base.labels(name, component="gateway-certificate-grant", layer=layer),
                    annotations={base.DESCRIPTION_ANNOTATION: f"lets Gateway {gateway.namespace}/{gateway.name}'s listener use the UIs' certificate"},
                ),
            )
            grant.add_json_patch(
                JsonPatch.add(
                    "/spec",
                    {
                        "from": [{"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": gateway.namespace}],
                        "to": [{"group": "", "kind": "Secret", "name": ing.tls_secret}],
                    },
                )
            )
