"""The config checksum: what every pod template carries so that a change reaches its pods.

A pod reads a ConfigMap or Secret once: env (``valueFrom``, ``envFrom``) when the container starts,
a ``subPath`` file when it is mounted, and a whole-volume mount is re-synced by the kubelet but read
by no process of this stack after start-up (none reloads its config file: Dagster, Jaeger, Marquez,
Polaris, PostgreSQL, MinIO and Cube all parse theirs once). So a content change must change the pod
template, or the running pods keep the old config until something kills them.

:func:`consumed` derives from a pod spec exactly what it reads (kind, name, key): env ``valueFrom``
keys, ``envFrom`` objects whole, ``configMap``/``secret`` volumes and the ``configMap``/``secret``
sources of ``projected`` volumes (their ``items`` keys, or the keys their ``subPath`` mounts pick when
every mount of the volume is a subPath one, else every key). :func:`digest` hashes the values of those
keys. The same two functions put the annotation on every template at synth
(``constructs.base.add_config_checksums``) and check it over ``dist/`` (the ``config-checksum``
check), so a new ConfigMap or Secret from any construct is covered by construction.

Secrets: only ``sha256(value)`` enters the digest, never the value, and the annotation is a sha256
over all of them: the annotation shows nothing of a secret. An object not in ``dist/`` (the Secrets of
``credentials.source: existing``, or of external services) has no known content: it enters the digest
as its name and key only, so changing it does not roll the pods (``kubectl rollout restart`` does).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping

#: The pod template annotation holding the digest.
ANNOTATION = "floe.dev/config-checksum"
#: Kinds whose content a pod consumes.
KINDS = ("ConfigMap", "Secret")
#: A whole object (envFrom, a volume mounted as a directory).
ALL_KEYS = "*"

Ref = tuple[str, str, str]  # (kind, name, key or ALL_KEYS)


def _volume_sources(volume: dict) -> Iterator[tuple[str, dict]]:
    """(kind, source) of a volume's ConfigMaps/Secrets: a plain volume or the sources of a projected one."""
    if "configMap" in volume:
        yield "ConfigMap", volume["configMap"]
    if "secret" in volume:
        yield "Secret", {**volume["secret"], "name": volume["secret"].get("secretName")}
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "configMap" in source:
            yield "ConfigMap", source["configMap"]
        if "secret" in source:
            yield "Secret", source["secret"]


def _containers(spec: dict) -> Iterator[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def consumed(spec: dict) -> list[Ref]:
    """Every (kind, name, key) of a ConfigMap or Secret the pod spec reads, sorted, without repeats."""
    refs: set[Ref] = set()
    containers = list(_containers(spec))
    for c in containers:
        for var in c.get("env") or []:
            source = var.get("valueFrom") or {}
            for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if field in source:
                    refs.add((kind, source[field]["name"], source[field]["key"]))
        for source in c.get("envFrom") or []:
            for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if field in source:
                    refs.add((kind, source[field]["name"], ALL_KEYS))
    for volume in spec.get("volumes") or []:
        mounts = [m for c in containers for m in c.get("volumeMounts") or [] if m.get("name") == volume.get("name")]
        if not mounts:
            continue  # declared, mounted by no container: read by nothing
        # A subPath mount reads one file: the first path component (a key, or an item's path).
        picked = {m["subPath"].split("/", 1)[0] for m in mounts if m.get("subPath")} if all(m.get("subPath") for m in mounts) else None
        for kind, source in _volume_sources(volume):
            items = source.get("items")
            if items:
                keys = {i["key"] for i in items if picked is None or i["path"].split("/", 1)[0] in picked}
            else:
                keys = picked if picked is not None else {ALL_KEYS}
            refs.update((kind, source["name"], key) for key in keys)
    return sorted(refs)


def object_data(doc: Mapping) -> dict[str, bytes]:
    """A ConfigMap's or Secret's content, key -> bytes (base64 ``data`` decoded)."""
    result: dict[str, bytes] = {}
    if doc.get("kind") == "Secret":
        result.update({k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()})
        result.update({k: v.encode() for k, v in (doc.get("stringData") or {}).items()})
    else:
        result.update({k: v.encode() for k, v in (doc.get("data") or {}).items()})
        result.update({k: base64.b64decode(v) for k, v in (doc.get("binaryData") or {}).items()})
    return result


def index(documents: list[Mapping]) -> dict[tuple[str, str], dict[str, bytes]]:
    """(kind, name) -> content of every ConfigMap and Secret among ``documents``."""
    return {(d["kind"], d["metadata"]["name"]): object_data(d) for d in documents if d.get("kind") in KINDS}


def digest(spec: dict, objects: Mapping[tuple[str, str], Mapping[str, bytes]]) -> str | None:
    """sha256 over what ``spec`` consumes (each value as its own sha256), None if it consumes nothing.

    A reference to an object not in ``objects`` (an existing Secret) or to a missing key enters as
    its name and key only, marked unknown."""
    refs = consumed(spec)
    if not refs:
        return None
    entries = []
    for kind, name, key in refs:
        data = objects.get((kind, name))
        if data is None:
            entries.append([kind, name, key, "unknown"])
            continue
        keys = sorted(data) if key == ALL_KEYS else [key]
        values = {k: hashlib.sha256(data[k]).hexdigest() if k in data else "missing" for k in keys}
        entries.append([kind, name, key, values])
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def template_of(doc: dict) -> dict:
    """The pod template of a workload, Job, CronJob (one Job deeper) or PodTemplate."""
    if doc.get("kind") == "PodTemplate":
        return doc["template"]
    spec = doc["spec"]["jobTemplate"]["spec"] if doc.get("kind") == "CronJob" else doc["spec"]
    return spec["template"]


def job_name(base_name: str, job_spec: dict) -> str:
    """``<base>-<8 hex>`` over a Job's spec (as JSON): a changed Job is a new object (its pod template
    is immutable), an unchanged one keeps its name. See constructs.base.job_name."""
    return f"{base_name}-{hashlib.sha256(json.dumps(job_spec, sort_keys=True, separators=(',', ':')).encode()).hexdigest()[:8]}"
