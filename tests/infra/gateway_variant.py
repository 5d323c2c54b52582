"""The Gateway API variant of the cluster profile (issue 19 item 3), shared by its tests and its
snapshot: config/cluster.yaml with the UIs behind HTTPRoutes attached to an existing Gateway in
another namespace (so the TLS Secret needs a ReferenceGrant), instead of the ingress-nginx Ingress."""

from __future__ import annotations

from pathlib import Path

from floe.config import StackConfig, load_config
from tests.infra.conftest import REPO, SNAPSHOT_IMAGE_TAG, write_fake_credentials

GATEWAY_NAMESPACE = "gateway-system"
#: Labels of the Gateway's data-plane pods (the GEP-1762 label an in-cluster implementation puts on
#: the proxies it deploys for a Gateway).
DATA_PLANE_LABELS = {"gateway.networking.k8s.io/gateway-name": "shared-gateway"}
GATEWAY = {
    "name": "shared-gateway",
    "namespace": GATEWAY_NAMESPACE,
    "section_name": "https",
    "data_plane": {"namespace": GATEWAY_NAMESPACE, "pod_labels": DATA_PLANE_LABELS},
    "authentication": "gateway",
}


def gateway_cluster_data(folder: Path) -> dict:
    """config/cluster.yaml as data, with ingress.gateway set and the ingress-nginx-only settings
    (auth, annotations, class_name) removed, as the config requires."""
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    data["project_image"]["tag"] = SNAPSHOT_IMAGE_TAG  # not the digest of demo/ (test_snapshots.py)
    ingress = data["ingress"]
    ingress.update(auth=None, annotations={}, class_name=None, gateway=GATEWAY)
    ingress.pop("controller")  # the default; the Gateway's pods are gateway.data_plane
    return data


def gateway_cluster_config(folder: Path, **gateway: object) -> StackConfig:
    data = gateway_cluster_data(folder)
    data["ingress"]["gateway"] = {**GATEWAY, **gateway}
    return StackConfig.model_validate(data)
