"""Run a container from dist/ as a local process, as close to the kubelet as this machine allows.

What is taken from the manifests unchanged: the command and args, every env var (Secret and
ConfigMap references resolved, ``$(VAR)`` expanded), the image's own ``ENV`` (from the Dockerfile),
the working directory, and every mounted file (ConfigMaps written out, emptyDirs created).

What is translated, and only this: mount paths are re-rooted under a temporary folder (the repo
stands in for the image's app directory), and network addresses named in ``rewrites`` (in-cluster
Service names and ports) are replaced by the loopback ones of the local stand-ins. Each test lists
its rewrites, so a reader sees exactly how the local run differs from the pod.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from demo.bootstrap.image import APP_DIR
from tests.support.manifests import expand_args, pod_spec, resolve_env

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def dockerfile_env(dockerfile: Path = REPO / "Dockerfile") -> dict[str, str]:
    """The ``ENV`` of the project image, in order (later ENV lines override earlier ones)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().startswith("ENV "):
            for token in shlex.split(line.strip()[4:]):
                if "=" in token:
                    key, value = token.split("=", 1)
                    env[key] = value
    env.pop("PATH", None)  # the image's venv path; locally the venv's bin goes first instead
    return env


@dataclass
class LocalContainer:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    root: Path
    files: dict[str, Path] = field(default_factory=dict)

    def local_path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        return subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _rewrite(text: str, rewrites: dict[str, str], path_map: dict[str, str]) -> str:
    for old, new in rewrites.items():
        text = text.replace(old, new)
    if not path_map:
        return text
    # One pass, longest container path first (/opt/dagster/home before /opt), so a replaced path
    # (often itself under /tmp) is never rewritten again.
    alternatives = "|".join(re.escape(p) for p in sorted(path_map, key=len, reverse=True))
    return re.sub(rf"(?<![\w/.-])({alternatives})(?=/|\b|$)", lambda m: path_map[m[1]], text)


def materialize(
    documents: list[dict],
    kind: str,
    name: str,
    container_name: str,
    *,
    root: Path,
    rewrites: dict[str, str] | None = None,
    image_env: dict[str, str] | None = None,
    extra_paths: dict[str, Path] | None = None,
) -> LocalContainer:
    """Lay out ``container_name`` of ``kind/name`` under ``root`` and return how to start it."""
    rewrites = rewrites or {}
    spec = pod_spec(documents, kind, name)
    container = next(c for c in spec["containers"] + (spec.get("initContainers") or []) if c["name"] == container_name)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in documents if d["kind"] == "ConfigMap"}

    path_map: dict[str, str] = {APP_DIR: str(REPO)}
    for container_path, local in (extra_paths or {}).items():
        path_map[container_path] = str(local)
    for mount in container.get("volumeMounts") or []:
        path_map.setdefault(mount["mountPath"], str(root / mount["mountPath"].lstrip("/")))

    files: dict[str, Path] = {}
    # emptyDirs first, then ConfigMaps (a subPath file may sit inside an emptyDir mount).
    ordered = sorted(container.get("volumeMounts") or [], key=lambda m: "configMap" in volumes[m["name"]])
    for mount in ordered:
        volume = volumes[mount["name"]]
        target = Path(path_map[mount["mountPath"]])
        if "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
        elif "configMap" in volume:
            data = config_maps[volume["configMap"]["name"]]
            if mount.get("subPath"):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_rewrite(data[mount["subPath"]], rewrites, path_map))
                files[mount["mountPath"]] = target
            else:
                target.mkdir(parents=True, exist_ok=True)
                for key, text in data.items():
                    (target / key).write_text(_rewrite(text, rewrites, path_map))
                    files[f"{mount['mountPath']}/{key}"] = target / key
        else:
            raise AssertionError(f"unsupported volume {volume}")

    env = {k: _rewrite(v, rewrites, path_map) for k, v in {**(image_env or {}), **resolve_env(container, documents)}.items()}
    argv = [_rewrite(a, rewrites, path_map) for a in expand_args(container, env)]
    process_env = {
        # What a bare container has, plus the venv standing in for the image's.
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        **env,
    }
    if "HOME" in process_env:
        Path(process_env["HOME"]).mkdir(parents=True, exist_ok=True)
    cwd = Path(_rewrite(container.get("workingDir") or APP_DIR, rewrites, path_map))
    return LocalContainer(argv=argv, env=process_env, cwd=cwd, root=root, files=files)


def pg_env(server) -> dict[str, str]:  # noqa: ANN001 - tests.support.postgres.PostgresServer
    """Environment for psql to reach a test PostgreSQL server over its unix socket."""
    return {**os.environ, "PGHOST": str(server.socket_dir), "PGPORT": str(server.port)}
