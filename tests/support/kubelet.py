"""ConfigMap and Secret volumes laid out on disk exactly as the kubelet writes them.

Tests that hand a mounted file to a real tool (Dagster, dbt, DuckDB, Cube's FileRepository) must
see what the container sees, not a tidy folder. The kubelet fills a ConfigMap/Secret volume with its
AtomicWriter (kubernetes/kubernetes pkg/volume/util/atomic_writer.go):

* the payload goes into a timestamped directory, ``newTimestampDir()``:
  ``os.MkdirTemp(targetDir, time.Now().UTC().Format("..2006_01_02_15_04_05."))`` (mode 0755), so
  its name is ``..<UTC timestamp>.<MkdirTemp's random digits>``;
* ``..data`` is a relative symlink to that directory (``dataDirName``; swapped atomically on
  updates through ``..data_tmp``);
* ``createUserVisibleFiles()`` links the FIRST path segment of every payload path to
  ``..data/<segment>`` (``key -> ..data/key``; with ``items`` path ``a/b``, only ``a -> ..data/a``);
* each file has the volume's ``defaultMode`` (default 0644, ``items[].mode`` overrides it).

The volume-source side (``configMap``/``secret`` with ``items`` key->path, ``defaultMode``) follows
the Kubernetes API (ConfigMapVolumeSource / SecretVolumeSource / KeyToPath). A ``subPath`` mount is
different: the container runtime bind-mounts the one resolved file, so the container sees a plain
file with no ``..data`` around it (:func:`write_sub_path`).
"""

from __future__ import annotations

import base64
import os
import random
import time
from pathlib import Path

DATA_DIR = "..data"
DEFAULT_MODE = 0o644  # ConfigMapVolumeSource/SecretVolumeSource defaultMode default


def _timestamp_dir_name(now: float | None = None) -> str:
    """``..2006_01_02_15_04_05.<digits>``: Go's time format in UTC plus os.MkdirTemp's suffix
    (a decimal random number)."""
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}{random.randrange(10**9, 10**10)}"


def source_data(volume: dict, documents: list[dict]) -> dict[str, bytes]:
    """The key -> bytes payload a ``configMap`` or ``secret`` volume source refers to, from
    ``documents`` (Secrets: base64 ``data`` plus plain ``stringData``, as the API server merges
    them; ConfigMaps: ``data`` plus base64 ``binaryData``)."""
    if "configMap" in volume:
        name, kind = volume["configMap"]["name"], "ConfigMap"
    elif "secret" in volume:
        name, kind = volume["secret"]["secretName"], "Secret"
    else:
        raise AssertionError(f"not a ConfigMap or Secret volume: {volume}")
    obj = next((d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name), None)
    if obj is None:
        raise AssertionError(f"volume {volume['name']}: {kind} {name} is not in the manifests")
    payload: dict[str, bytes] = {}
    if kind == "ConfigMap":
        payload |= {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        payload |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    else:
        payload |= {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        payload |= {k: v.encode() for k, v in (obj.get("stringData") or {}).items()}
    return payload


def projected_files(volume: dict, payload: dict[str, bytes]) -> dict[str, tuple[bytes, int]]:
    """Relative path -> (content, mode) the volume projects: every key under its own name, or only
    the ``items`` listed (key -> path, optional per-item mode)."""
    source = volume.get("configMap") or volume.get("secret")
    default_mode = source.get("defaultMode", DEFAULT_MODE)
    items = source.get("items")
    if not items:
        return {key: (content, default_mode) for key, content in payload.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] not in payload:
            if source.get("optional"):
                continue
            raise AssertionError(f"volume {volume['name']}: key {item['key']!r} is not in its source")
        files[item["path"]] = (payload[item["key"]], item.get("mode", default_mode))
    return files


def write_volume(target: Path, files: dict[str, tuple[bytes, int]], *, now: float | None = None) -> Path:
    """Write ``files`` (relative path -> (content, mode)) into the directory ``target`` as the
    kubelet's AtomicWriter does; returns the timestamped directory."""
    target.mkdir(parents=True, exist_ok=True)
    ts_dir = target / _timestamp_dir_name(now)
    ts_dir.mkdir()
    ts_dir.chmod(0o755)
    for relative, (content, mode) in files.items():
        path = ts_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    os.symlink(ts_dir.name, target / DATA_DIR)
    for first in sorted({relative.split("/", 1)[0] for relative in files}):
        os.symlink(f"{DATA_DIR}/{first}", target / first)
    return ts_dir


def write_sub_path(target: Path, volume: dict, payload: dict[str, bytes], sub_path: str) -> Path:
    """A ``subPath`` mount of a ConfigMap/Secret volume: the container sees one plain file (the
    runtime bind-mounts the resolved ``..data/<subPath>`` file, with the volume's mode)."""
    files = projected_files(volume, payload)
    if sub_path not in files:
        raise AssertionError(f"volume {volume['name']}: subPath {sub_path!r} is not one of its files {sorted(files)}")
    content, mode = files[sub_path]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    target.chmod(mode)
    return target


def mount(target: Path, volume: dict, volume_mount: dict, documents: list[dict], *,
          transform=None) -> dict[str, Path]:  # noqa: ANN001 - transform: (str) -> str
    """Lay out one ``volumeMount`` of a ConfigMap/Secret ``volume`` at ``target`` (the mount path,
    rebased by the caller). ``transform`` rewrites text content (tests' address rewrites).
    Returns container-relative file name -> local path of every file the mount shows."""
    payload = source_data(volume, documents)
    if transform is not None:
        payload = {k: transform(v.decode()).encode() for k, v in payload.items()}
    if volume_mount.get("subPath"):
        return {"": write_sub_path(target, volume, payload, volume_mount["subPath"])}
    files = projected_files(volume, payload)
    write_volume(target, files)
    return {relative: target / relative for relative in files}
