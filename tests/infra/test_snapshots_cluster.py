"""The cluster profile's manifests (config/cluster.yaml, fake credentials), held for review like the
local profile's (tests/infra/test_snapshots.py): a change to the cluster profile's dist/ shows up as
a diff of tests/infra/__snapshots__/test_snapshots_cluster.ambr.

Regenerate on purpose only (`pytest tests/infra/test_snapshots_cluster.py --snapshot-update`) and read
the diff. The local profile's snapshots are separate and must not change with this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from floe.config import StackConfig, load_config
from floe.synth import SynthResult, synthesize
from tests.infra.conftest import REPO, SNAPSHOT_IMAGE_TAG, write_fake_credentials

CHARTS = ["namespace", "infrastructure", "observability", "orchestration", "semantic", "verify"]


@pytest.fixture(scope="module")
def cluster_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    folder = tmp_path_factory.mktemp("cluster-snapshot")
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    data["project_image"]["tag"] = SNAPSHOT_IMAGE_TAG  # not the digest of demo/ (test_snapshots.py)
    return synthesize(StackConfig.model_validate(data), folder / "dist", root=folder)


def chart_files(result: SynthResult) -> dict[str, str]:
    # NNNN-<chart>.k8s.yaml, and verify/verify.k8s.yaml.
    return {
        path.name.split("-", 1)[-1].removesuffix(".k8s.yaml") if path.parent == result.out_dir else "verify": path.read_text()
        for path in result.files
    }


def test_cluster_charts_are_the_local_ones(cluster_synth: SynthResult) -> None:
    assert sorted(chart_files(cluster_synth)) == sorted(CHARTS)


@pytest.mark.parametrize("chart", CHARTS)
def test_cluster_chart_snapshot(cluster_synth: SynthResult, chart: str, snapshot) -> None:
    assert chart_files(cluster_synth)[chart] == snapshot


# --- variants (issue 19): the other way to guard the UIs ---------------------------------------


@pytest.fixture(scope="module")
def basic_auth_read_only_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """config/cluster.yaml with basic auth from a declared Secret instead of the external auth
    service, and the Dagster webserver in its read-only mode."""
    folder = tmp_path_factory.mktemp("cluster-basic-auth")
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    data["ingress"]["auth"] = {"type": "basic", "secret": "floe-ui-users", "realm": "floe UIs"}
    data["dagster"]["webserver_read_only"] = True
    data["project_image"]["tag"] = SNAPSHOT_IMAGE_TAG  # not the digest of demo/ (test_snapshots.py)
    return synthesize(StackConfig.model_validate(data), folder / "dist", root=folder)


def test_cluster_basic_auth_read_only_variant_snapshot(basic_auth_read_only_synth: SynthResult, snapshot) -> None:
    import yaml

    wanted = {("Ingress", "floe-ingress"), ("Role", "floe-dagster-webserver"), ("Deployment", "floe-dagster-webserver")}
    docs = [d for d in basic_auth_read_only_synth.documents if (d["kind"], d["metadata"]["name"]) in wanted]
    assert len(docs) == len(wanted)
    assert yaml.safe_dump_all(docs, sort_keys=False) == snapshot


# --- variant (issue 19 item 3): the UIs through the Gateway API instead of the Ingress ----------


@pytest.fixture(scope="module")
def gateway_synth(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """config/cluster.yaml with ingress.gateway (tests/infra/gateway_variant.py): HTTPRoutes on an
    existing Gateway in another namespace, the TLS Secret granted to it."""
    from tests.infra.gateway_variant import gateway_cluster_data

    folder = tmp_path_factory.mktemp("cluster-gateway")
    return synthesize(StackConfig.model_validate(gateway_cluster_data(folder)), folder / "dist", root=folder)


def test_cluster_gateway_variant_snapshot(gateway_synth: SynthResult, snapshot) -> None:
    """The routes, the grant, and one UI's NetworkPolicy (the data-plane pods admitted on its port)."""
    import yaml

    docs = [
        d for d in gateway_synth.documents
        if d["kind"] in ("HTTPRoute", "ReferenceGrant") or (d["kind"], d["metadata"]["name"]) == ("NetworkPolicy", "floe-jaeger")
    ]
    assert [d["kind"] for d in docs].count("HTTPRoute") == 5 and not [d for d in gateway_synth.documents if d["kind"] == "Ingress"]
    assert yaml.safe_dump_all(docs, sort_keys=False) == snapshot
