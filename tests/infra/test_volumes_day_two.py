"""Volumes and shutdown as the images need (issue 18 item 9): fsGroupChangePolicy OnRootMismatch on
the pods with PersistentVolumes (no recursive chown of the 100 GiB MinIO volume on each start), the
PostgreSQL image's fast shutdown given time, PostgreSQL's /dev/shm sized."""

from __future__ import annotations

import pytest

from floe.config import StackConfig, load_config
from floe.synth import SynthResult, synthesize
from tests.infra.conftest import REPO, write_fake_credentials
from tests.support.manifests import container, find


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    folder = tmp_path_factory.mktemp("volumes")
    data = load_config(REPO / "config" / "cluster.yaml", environ={}).model_dump(mode="json")
    data["credentials"]["store"] = str(write_fake_credentials(folder))
    return synthesize(StackConfig.model_validate(data), folder / "dist", root=folder)


def test_persistent_pods_chown_only_on_root_mismatch(cluster: SynthResult) -> None:
    docs = cluster.documents
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob", "PodTemplate"):
            from floe.manifest_checks import pod_template

            policy = pod_template(doc)["spec"]["securityContext"].get("fsGroupChangePolicy")
            persistent = bool(doc.get("spec", {}).get("volumeClaimTemplates"))
            assert (policy == "OnRootMismatch") == persistent, doc["metadata"]["name"]
    assert {d["metadata"]["name"] for d in docs if d.get("spec", {}).get("volumeClaimTemplates")} == {"floe-postgres", "floe-minio"}


def test_postgres_shuts_down_cleanly_and_has_shared_memory(cluster: SynthResult, default_synth: SynthResult) -> None:
    for docs, kind in ((cluster.documents, "StatefulSet"), (default_synth.documents, "Deployment")):
        spec = find(docs, kind, "floe-postgres")["spec"]["template"]["spec"]
        # The image's STOPSIGNAL SIGINT (fast shutdown, a checkpoint) needs more than 30 s on a busy server.
        assert spec["terminationGracePeriodSeconds"] == 120
        shm = next(v for v in spec["volumes"] if v["name"] == "shm")
        assert shm == {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "128Mi"}}
        mounts = {m["mountPath"]: m["name"] for m in container(docs, kind, "floe-postgres")["volumeMounts"]}
        assert mounts["/dev/shm"] == "shm"
