"""Read containers out of synthesized manifests the way the kubelet would run them."""

from __future__ import annotations

import base64
import re

from floe.manifest_checks import pod_template


def find(documents: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in documents if d["kind"] == kind and _named(d, name)]
    assert matches, f"no {kind}/{name} in the manifests"
    return matches[0]


def _named(doc: dict, name: str) -> bool:
    """A Job answers to its base name too: its object name ends in a content digest (base.job_name)."""
    if doc["metadata"]["name"] == name:
        return True
    return doc["kind"] == "Job" and (doc["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == name


def pod_spec(documents: list[dict], kind: str, name: str) -> dict:
    return pod_template(find(documents, kind, name))["spec"]


def container(documents: list[dict], kind: str, name: str, container_name: str | None = None) -> dict:
    spec = pod_spec(documents, kind, name)
    containers = spec["containers"] + (spec.get("initContainers") or [])
    if container_name is None:
        return spec["containers"][0]
    return next(c for c in containers if c["name"] == container_name)


def secret_values(secret: dict) -> dict[str, str]:
    """A Secret's decoded values, as a pod sees them (``data`` is base64, ``stringData`` plain)."""
    decoded = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
    return {**decoded, **(secret.get("stringData") or {})}


def resolve_env(c: dict, documents: list[dict], fields: dict[str, str] | None = None) -> dict[str, str]:
    """The container's environment with Secret/ConfigMap references and $(VAR) expanded.

    ``fields`` gives the downward-API values (``fieldRef``), e.g. ``{"metadata.name": "floe-cubestore-worker-0"}``.
    """
    secrets = {d["metadata"]["name"]: secret_values(d) for d in documents if d["kind"] == "Secret"}
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in documents if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for var in c.get("env") or []:
        if "value" in var:
            # Kubernetes expands $(NAME) of variables defined earlier in the list.
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), var["value"])
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[var["name"]] = config_maps[ref["name"]][ref["key"]]
        elif "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            assert fields is not None and path in fields, f"{c['name']}: pass fields={{{path!r}: ...}} to resolve {var['name']}"
            env[var["name"]] = fields[path]
        else:
            raise AssertionError(f"unsupported env source in {c['name']}: {source}")
    return env


def expand_args(c: dict, env: dict[str, str]) -> list[str]:
    """command + args with $(VAR) references expanded as the kubelet does."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), part) for part in (c.get("command") or []) + (c.get("args") or [])]
