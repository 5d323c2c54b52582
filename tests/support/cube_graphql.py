"""The GraphQL schema Cube 1.7.43 serves for demo/cube, built by Cube's own ``makeSchema``
(@cubejs-backend/api-gateway from npm, tests/semantic/node/cube_graphql.js), and graphql-js — the copy
Cube's gateway uses — validating documents against it."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CUBE_DIR = REPO / "demo" / "cube"
NODE_DIR = REPO / "tests" / "semantic" / "node"


def unavailable(reason: str) -> None:
    """Skip on a developer machine without node or Cube's packages; in CI (CI=true) fail instead."""
    if os.environ.get("CI", "").lower() in ("1", "true"):
        pytest.fail(f"{reason} (CI must be able to run the Cube contract tests)")
    pytest.skip(reason)


@dataclass(frozen=True)
class CubeGraphQL:
    #: printSchema() of the schema makeSchema built.
    sdl: str
    #: document name -> graphql-js validation messages (empty: valid).
    errors: dict[str, list[str]]


def cube_graphql(documents: dict[str, str] | None = None, *, model_dir: Path = CUBE_DIR / "model") -> CubeGraphQL:
    """Build Cube's GraphQL schema from ``model_dir`` and validate ``documents`` against it."""
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    if not (NODE_DIR / "node_modules" / "@cubejs-backend" / "api-gateway").exists():
        unavailable("Cube's npm packages are not installed (make tests/semantic/node/node_modules/.installed)")
    # Relative to the working directory, as Cube's FileRepository joins it (CUBEJS_SCHEMA_PATH).
    return _run(node, json.dumps({"documents": documents or {}}, sort_keys=True), os.path.relpath(model_dir, CUBE_DIR))


@functools.lru_cache(maxsize=8)
def _run(node: str, payload: str, model_dir: str) -> CubeGraphQL:
    result = subprocess.run(
        [node, str(NODE_DIR / "cube_graphql.js"), model_dir], input=payload, cwd=CUBE_DIR,
        env={"PATH": os.environ.get("PATH", ""), "NODE_PATH": str(NODE_DIR / "node_modules")},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout)
    return CubeGraphQL(answer["sdl"], answer["errors"])
