"""Run a container from dist/ as a local process, as close to the kubelet as this machine allows.

What is taken from the manifests unchanged: the command and args, every env var (Secret and
ConfigMap references resolved, ``$(VAR)`` expanded), the image's own ``ENV`` (from the Dockerfile),
the working directory, and every mounted file (ConfigMaps and Secrets laid out as the kubelet
writes them, by tests.support.kubelet; emptyDirs created).

What is translated, and only this: mount paths are re-rooted under a temporary folder (the repo
stands in for the image's app directory), and network addresses named in ``rewrites`` (in-cluster
Service names and ports) are replaced by the loopback ones of the local stand-ins. Each test lists
its rewrites, so a reader sees exactly how the local run differs from the pod.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from demo.bootstrap.image import APP_DIR, CUBE_OTEL_DIR, DUCKDB_EXTENSION_DIR
from floe import image_tag
from tests.support import kubelet
from tests.support.manifests import expand_args, pod_spec, resolve_env

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def dockerfile_env(dockerfile: Path = REPO / "Dockerfile", *, before: str | None = None) -> dict[str, str]:
    """The ``ENV`` of the project image, in order (later ENV lines override earlier ones); with
    ``before``, only the ENV in effect at the first line containing that text (a build step's env)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        if before is not None and before in line:
            break
        if line.strip().startswith("ENV "):
            for token in shlex.split(line.strip()[4:]):
                if "=" in token:
                    key, value = token.split("=", 1)
                    env[key] = value
    env.pop("PATH", None)  # the image's venv path; locally the venv's bin goes first instead
    return env


#: What the Dockerfile puts in the image, mirrored by :func:`build_local_image` (a test checks the
#: Dockerfile still says the same, so the two cannot drift apart).
IMAGE_BUILD_STEPS = (
    "COPY pyproject.toml uv.lock ./",
    "COPY demo/ ./demo/",
    "RUN python -m demo.bootstrap duckdb-extensions --directory /opt/floe/duckdb-extensions",
    'RUN python -c "from demo.orchestration.dbt import dbt_project, ensure_manifest; ensure_manifest(dbt_project())"',
)
#: The Dockerfile's Node stage for Cube's OpenTelemetry SDK, mirrored by :func:`build_cube_otel`
#: (checked against the Dockerfile like IMAGE_BUILD_STEPS).
CUBE_OTEL_BUILD_STEPS = (
    f"WORKDIR {CUBE_OTEL_DIR}",
    "COPY demo/cube/otel/package.json demo/cube/otel/package-lock.json ./",
    "RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund",
    "COPY demo/cube/otel/tracing.js ./",
    f"COPY --from=cube-otel {CUBE_OTEL_DIR} {CUBE_OTEL_DIR}",
)
CUBE_OTEL_SOURCE = REPO / "demo" / "cube" / "otel"


def build_cube_otel(target: Path) -> Path:
    """The project image's CUBE_OTEL_DIR, built under ``target`` by the Dockerfile's steps: the
    lock's production packages (``npm ci --omit=dev``, from npm's cache when warm) and tracing.js."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not installed")
    target.mkdir(parents=True)
    for name in ("package.json", "package-lock.json", "tracing.js"):
        shutil.copy2(CUBE_OTEL_SOURCE / name, target / name)
    subprocess.run([npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--silent"],
                   cwd=target, check=True, capture_output=True, timeout=900)
    return target


def run_copy_init_containers(documents: list[dict], kind: str, name: str, *, root: Path, image: dict[str, Path]) -> list[str]:
    """Run the pod's init containers that copy a folder of the project image into an emptyDir
    (``cp -R <image path>/. <mount>``), for the image paths given in ``image``, with the same
    ``root`` the app container is materialized under (so they share the emptyDir). Returns their names."""
    spec = pod_spec(documents, kind, name)
    ran = []
    for init in spec.get("initContainers") or []:
        command = init.get("command") or []
        if command[:2] != ["cp", "-R"] or not any(command[2].startswith(f"{path}/") for path in image):
            continue
        local = materialize(documents, kind, name, init["name"], root=root, extra_paths=image)
        subprocess.run(local.argv, env=local.env, cwd=root, check=True, capture_output=True, timeout=300)
        ran.append(init["name"])
    return ran


def build_local_image(root: Path) -> dict[str, Path]:
    """Lay out the project image's files under ``root`` as the Dockerfile does, owned by root
    (so the pod's non-root uid cannot write them, as with a read-only root filesystem).
    Returns the image path -> local path map."""
    app = root / APP_DIR.lstrip("/")
    extensions = root / DUCKDB_EXTENSION_DIR.lstrip("/")
    app.mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy2(REPO / name, app / name)
    # `COPY demo/ ./demo/` copies what the build context holds of demo/: the files .dockerignore leaves
    # (no caches, no dbt output, no node_modules: 370 MB the image never holds).
    for name in image_tag.context_files(REPO):
        if name.startswith("demo/"):
            (app / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, app / name)
    # The build's own env: the Dockerfile's ENV in effect at each step (the manifest is parsed with
    # the pods' dbt target), the venv and a home of its own standing in for the image's.
    build_env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "DBT_"))}
    build_env.update(dockerfile_env(before="ensure_manifest"))
    build_env.update({"PATH": f"{VENV_BIN}:{os.environ['PATH']}", "HOME": str(root / "build-home")})
    subprocess.run([sys.executable, "-m", "demo.bootstrap", "duckdb-extensions", "--directory", str(extensions)],
                   cwd=app, env=build_env, check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-c", "from demo.orchestration.dbt import dbt_project, ensure_manifest; ensure_manifest(dbt_project())"],
                   cwd=app, env=build_env, check=True, capture_output=True, timeout=600)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.chown(path, 0, 0)
            path.chmod(0o755 if path.is_dir() else (path.stat().st_mode & 0o777) & ~0o022)
    return {APP_DIR: app, DUCKDB_EXTENSION_DIR: extensions}


#: Which directories were opened to other uids, by whom (pids) and from which mode: shared by every
#: process on the machine (pytest-xdist workers, other checkouts' test runs), under one lock.
_TRAVERSE_STATE = Path(tempfile.gettempdir()) / "floe-tests-traverse.json"
_TRAVERSE_LOCK = Path(tempfile.gettempdir()) / "floe-tests-traverse.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _traverse_state() -> Iterator[dict[str, dict[str, object]]]:
    """The shared record, locked for the block and written back after it; holders that died are
    dropped (and a directory nobody holds any more gets its mode back)."""
    with open(_TRAVERSE_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(_TRAVERSE_STATE.read_text()) if _TRAVERSE_STATE.exists() else {}
        except ValueError:
            state = {}
        for path, entry in list(state.items()):
            entry["holders"] = [pid for pid in entry["holders"] if _alive(pid)]  # type: ignore[union-attr]
            if not entry["holders"]:
                with contextlib.suppress(OSError):
                    Path(path).chmod(int(entry["mode"]))  # type: ignore[arg-type]
                del state[path]
        yield state
        _TRAVERSE_STATE.write_text(json.dumps(state))


@contextlib.contextmanager
def interpreter_reachable_by_other_users() -> Iterator[None]:
    """Let non-root uids reach this venv and its interpreter for the duration of the block.

    The venv's python is a link into the interpreter's install (e.g. pyenv under /root, mode 0700),
    and the venv itself lies in the checkout, which may sit under a directory only root may enter
    (a clone in /root, or under `mktemp -d`): a pod-uid process could not even start. Grant
    traverse (o+x, not read) on exactly the ancestors that block either, and restore their modes
    afterwards — once no other process needs them any more: pytest-xdist workers (and test runs of
    other checkouts) open the same directories at the same time, so who holds which directory is
    kept in one record shared under a file lock, and the last holder restores the mode.
    """
    targets = [Path(os.path.realpath(sys.executable)), VENV_BIN]
    me = os.getpid()
    held: list[str] = []
    with _traverse_state() as state:
        for ancestor in dict.fromkeys(a for target in targets for a in reversed(target.parents)):
            key = str(ancestor)
            if key in state:
                state[key]["holders"].append(me)  # type: ignore[union-attr]
                held.append(key)
                continue
            mode = ancestor.stat().st_mode
            if not mode & stat.S_IXOTH:
                state[key] = {"mode": stat.S_IMODE(mode), "holders": [me]}
                held.append(key)
                ancestor.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        with _traverse_state() as state:
            for key in reversed(held):
                entry = state.get(key)
                if entry is None:
                    continue
                holders: list[int] = entry["holders"]  # type: ignore[assignment]
                if me in holders:
                    holders.remove(me)
                if not holders:
                    with contextlib.suppress(OSError):
                        Path(key).chmod(int(entry["mode"]))  # type: ignore[arg-type]
                    del state[key]


def world_traversable_tmpdir(prefix: str) -> Path:
    """A scratch folder other uids can reach (pytest's tmp folders are root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass
class LocalContainer:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    root: Path
    files: dict[str, Path] = field(default_factory=dict)
    # uid/gid from the pod's securityContext (None: the caller's own).
    user: int | None = None
    group: int | None = None

    def local_path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def _identity(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user, "group": self.group, "extra_groups": []}

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        return subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            **self._identity(),
        )

    def run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run another command in the same 'container' (as a probe's exec does)."""
        return subprocess.run(argv, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout, **self._identity())


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
    as_pod_user: bool = False,
) -> LocalContainer:
    """Lay out ``container_name`` of ``kind/name`` under ``root`` and return how to start it."""
    rewrites = rewrites or {}
    spec = pod_spec(documents, kind, name)
    container = next(c for c in spec["containers"] + (spec.get("initContainers") or []) if c["name"] == container_name)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}

    path_map: dict[str, str] = {APP_DIR: str(REPO)}
    pod_security = spec.get("securityContext") or {}
    uid = pod_security.get("runAsUser") if as_pod_user else None
    gid = pod_security.get("fsGroup", pod_security.get("runAsGroup")) if as_pod_user else None
    for container_path, local in (extra_paths or {}).items():
        path_map[container_path] = str(local)
    for mount in container.get("volumeMounts") or []:
        path_map.setdefault(mount["mountPath"], str(root / mount["mountPath"].lstrip("/")))

    files: dict[str, Path] = {}
    # emptyDirs first, then ConfigMaps/Secrets (a subPath file may sit inside an emptyDir mount).
    projected = ("configMap", "secret")
    ordered = sorted(container.get("volumeMounts") or [], key=lambda m: any(k in volumes[m["name"]] for k in projected))
    for mount in ordered:
        volume = volumes[mount["name"]]
        target = Path(path_map[mount["mountPath"]])
        if "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
            if uid is not None:
                # fsGroup: the kubelet makes emptyDirs writable for the pod's group.
                os.chown(target, uid, gid)
                target.chmod(0o2775)
        elif any(k in volume for k in projected):
            # The kubelet's layout: ..<timestamp>/ + ..data symlink + key symlinks; subPath: a plain file.
            shown = kubelet.mount(target, volume, mount, documents, transform=lambda text: _rewrite(text, rewrites, path_map))
            for relative, local in shown.items():
                files[f"{mount['mountPath']}/{relative}" if relative else mount["mountPath"]] = local
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
    if "HOME" in process_env and uid is None:
        Path(process_env["HOME"]).mkdir(parents=True, exist_ok=True)
    cwd = Path(_rewrite(container.get("workingDir") or APP_DIR, rewrites, path_map))
    return LocalContainer(argv=argv, env=process_env, cwd=cwd, root=root, files=files, user=uid, group=gid)


def pg_env(server) -> dict[str, str]:  # noqa: ANN001 - tests.support.postgres.PostgresServer
    """Environment for psql to reach a test PostgreSQL server over its unix socket."""
    return {**os.environ, "PGHOST": str(server.socket_dir), "PGPORT": str(server.port)}
