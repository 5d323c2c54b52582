"""The commented examples in config/cluster.yaml are what a user copies: each must load as it is
written once uncommented (issue 19 left a stale `minio.external.secret` example behind; nothing
checked it)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from floe.config import load_config
from tests.infra.conftest import REPO

CLUSTER = REPO / "config" / "cluster.yaml"


def commented_blocks(text: str) -> list[tuple[int, dict]]:
    """Every commented YAML mapping of the file: a run of comment lines at one indent whose first line
    is ``# key:`` (an empty value) and whose next lines are deeper. Returns (indent, parsed data)."""
    lines = text.splitlines()
    blocks: list[tuple[int, dict]] = []
    i = 0
    while i < len(lines):
        head = re.match(r"^(\s*)# ([a-z_]+):\s*(#.*)?$", lines[i])
        if not head:
            i += 1
            continue
        indent = head.group(1)
        body = [f"{head.group(2)}:"]
        j = i + 1
        while j < len(lines) and re.match(rf"^{indent}# (  |[a-z_]+:\s*(#.*)?$)", lines[j]):
            body.append(lines[j][len(indent) + 2 :])
            j += 1
        if len(body) > 1:
            blocks.append((len(indent), yaml.safe_load("\n".join(body))))
        i = j
    return blocks


def test_every_commented_example_loads(tmp_path: Path) -> None:
    text = CLUSTER.read_text()
    base = yaml.safe_load(text)
    blocks = commented_blocks(text)
    top: dict = {}
    nested: list[dict] = []
    for indent, data in blocks:
        if indent == 0:
            top.update(data)
        else:
            nested.append(data)
    # The existing-services example replaces the in-cluster postgres and minio sections.
    assert {"postgres", "minio"} <= set(top), f"examples found: {sorted(top)}"
    assert "external" in top["postgres"] and "external" in top["minio"]
    # Both together, and the object store alone beside the in-cluster PostgreSQL and its backups
    # (then the example's backup Secret is the one the backup CronJob needs).
    for name, sections in {"both": top, "store only": {"minio": top["minio"]}}.items():
        path = tmp_path / f"{name}.yaml"
        # As the example says: no MinIO console host with an external store.
        hosts = {k: v for k, v in base["ingress"]["hosts"].items() if k != "minio_console"}
        path.write_text(yaml.safe_dump({**base, **sections, "ingress": {**base["ingress"], "hosts": hosts}}))
        config = load_config(path, environ={})
        assert config.minio.external is not None, name
    assert config.postgres.backup is not None and config.minio.external.secrets.backup is not None
    # The Gateway example inside `ingress`: with the ingress-nginx-only settings dropped, as it says.
    gateways = [data for data in nested if "gateway" in data]
    assert gateways, "the commented ingress.gateway example is gone"
    ingress = {k: v for k, v in base["ingress"].items() if k not in {"class_name", "auth", "annotations", "controller"}}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({**base, "ingress": {**ingress, **gateways[0]}}))
    assert load_config(path, environ={}).ingress.gateway is not None
