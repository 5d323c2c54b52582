"""What the synth does while jsii's node process starts (main.py, floe/jsii_kernel.py, floe/synth.py)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from floe.synth import NODE_FREE_IMPORTS
from tests.infra.conftest import REPO


def test_the_node_free_imports_cover_the_constructs_demo_imports() -> None:
    """Every demo/ module a construct module imports is imported before the wait for node."""
    imported = set()
    for path in (REPO / "constructs").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("demo"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names if a.name.startswith("demo"))
    assert imported and imported <= set(NODE_FREE_IMPORTS), sorted(imported - set(NODE_FREE_IMPORTS))


def test_the_node_free_imports_start_no_node() -> None:
    """Imported in a new interpreter, they load neither jsii nor the constructs package (which would
    wait for node, or start it a second time)."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(NODE_FREE_IMPORTS)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('jsii', 'constructs', 'cdk8s'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
