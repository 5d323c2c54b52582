"""The project image's tag is a digest of what goes into it (floe/image_tag.py).

Change one file of demo/: the tag changes and a re-synth changes exactly the pod templates that run
the project image. No change: the same tag, dist/ byte-identical, and `make image` builds nothing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from floe import image_tag
from floe.config import StackConfig
from floe.manifest_checks import POD_OWNER_KINDS, pod_template
from floe.synth import SynthResult
from tests.infra.conftest import REPO, synth

# --- Docker's .dockerignore rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "path", "out"),
    [
        # Cases of moby/patternmatcher's own tests (MatchesOrParentMatches / Matches).
        ("*", "a", True), ("*", "a/b", True),  # a parent directory matches
        ("*\n!a", "a/b", False), ("*\n!a/", "a/b/c", False),
        ("a/*", "a/b", True), ("a/*", "b/a", False), ("a/*", "a/b/c", True),
        ("**", "a/b/c", True), ("**/b", "a/b", True), ("**/b", "b", True), ("a/**/c", "a/c", True), ("a/**/c", "a/b/x/c", True),
        ("a/**/c", "a/cc", False), ("?", "ab", False), ("a?", "ab", True), ("/a", "a", True), ("./a", "a", True),
        ("a/**/__pycache__", "a/x/__pycache__/m.pyc", True), ("*.pyc", "a/m.pyc", False), ("**/*.pyc", "a/m.pyc", True),
        ("# comment\n\na", "a", True), ("a\n!a\na", "a", True),  # the last match wins
    ],
)
def test_ignore_rules_follow_docker(patterns: str, path: str, out: bool) -> None:
    assert image_tag.excluded(path, image_tag.parse_ignore(patterns)) is out


@pytest.mark.parametrize(
    "patterns",
    [
        "*\n!demo/\ndemo/**/node_modules/",  # the walk skips node_modules (nothing re-includes it)
        "*\n!demo/\ndemo/**/node_modules/\n!demo/**/node_modules/keep.txt",  # a later ! brings one file back
        "*\n!demo/\ndemo/**/node_modules/\n!**/*.txt",  # a later wildcard ! may match anywhere
        "demo/**/node_modules/\n!demo/",  # an earlier exclusion loses to the later !
    ],
)
def test_the_walk_skips_only_folders_nothing_can_bring_back(tmp_path: Path, patterns: str) -> None:
    """context_files does not enter a folder whose every file is left out (fast on node_modules),
    and gives exactly the files the per-file rule keeps."""
    (tmp_path / ".dockerignore").write_text(patterns + "\n")
    for rel in ("demo/a.py", "demo/x/node_modules/p/index.js", "demo/x/node_modules/keep.txt", "demo/x/b.txt", "other/c.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    every_file = sorted(str(f.relative_to(tmp_path)) for f in tmp_path.rglob("*") if f.is_file())
    rules = image_tag.parse_ignore(patterns)
    assert image_tag.context_files(tmp_path) == [f for f in every_file if not image_tag.excluded(f, rules)]


def _dockerfile_copy_sources() -> list[str]:
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        # COPY --from copies out of another build stage, not out of the context.
        if line.startswith("COPY ") and "--from=" not in line:
            sources += [s.rstrip("/") for s in line.split()[1:-1] if not s.startswith("--")]
    return sources


def test_the_context_is_what_the_dockerfile_copies() -> None:
    """The context .dockerignore leaves (hashed) covers every tracked file the Dockerfile COPYs, and
    holds nothing else: no cache, no build output, no file of the rest of the repository."""
    context = set(image_tag.context_files())
    sources = _dockerfile_copy_sources()
    assert sources == [
        # The Cube OpenTelemetry stage (issue 17), then the Python stage.
        "demo/cube/otel/package.json", "demo/cube/otel/package-lock.json", "demo/cube/otel/tracing.js",
        "pyproject.toml", "uv.lock", "demo",
    ]
    tracked = subprocess.run(["git", "ls-files", "--", *sources], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    if tracked:  # a checkout without git metadata (an unpacked archive) has nothing to compare
        assert set(tracked) <= context
    assert all(any(f == s or f.startswith(f"{s}/") for s in sources) for f in context)
    assert not [f for f in context if "__pycache__" in f or "/target/" in f or f.endswith(".duckdb")]


def _copy_context(to: Path) -> Path:
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock"):
        shutil.copy2(REPO / name, to / name)
    # node_modules (370 MB of Cube's OpenTelemetry packages, installed for the tests) is left out of the
    # copy: the context excludes it, and the test below puts a file there to show that it does.
    shutil.copytree(REPO / "demo", to / "demo", ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    return to


def test_the_tag_follows_the_context_and_nothing_else(tmp_path: Path) -> None:
    root = _copy_context(tmp_path)
    tag = image_tag.content_tag(root)
    assert re.fullmatch(r"src-[0-9a-f]{12}", tag) and tag == image_tag.content_tag(REPO)  # same bytes, same tag
    # Not in the image: caches, dbt build output, files outside the context.
    (root / "demo" / "__pycache__").mkdir()
    (root / "demo" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "demo" / "dbt" / "target").mkdir(parents=True, exist_ok=True)
    (root / "demo" / "dbt" / "target" / "manifest.json").write_text("{}")
    (root / "README.md").write_text("docs are not in the image")
    (root / "demo" / "cube" / "otel" / "node_modules" / "x").mkdir(parents=True)
    (root / "demo" / "cube" / "otel" / "node_modules" / "x" / "index.js").write_text("module.exports = 1;\n")
    assert image_tag.content_tag(root) == tag
    # In the image: any file of demo/, the lock, the Dockerfile, an executable bit.
    for change in (
        lambda: (root / "demo" / "generator" / "new_module.py").write_text("X = 1\n"),
        lambda: (root / "uv.lock").write_text((root / "uv.lock").read_text() + "\n"),
        lambda: (root / "Dockerfile").write_text((root / "Dockerfile").read_text() + "\n# changed\n"),
        lambda: os.chmod(root / "demo" / "__init__.py", 0o755),
    ):
        before = image_tag.content_tag(root)
        change()
        assert image_tag.content_tag(root) != before


def test_the_config_resolves_the_content_tag_unless_one_is_set() -> None:
    assert StackConfig().project_image.tag == image_tag.content_tag()
    fixed = StackConfig.model_validate({"project_image": {"repository": "registry.example/floe", "tag": "1.2.3"}})
    assert fixed.project_image.ref == "registry.example/floe:1.2.3"


def _project_image_templates(result: SynthResult, ref: str) -> set[str]:
    found = set()
    for doc in result.documents:
        if doc["kind"] in POD_OWNER_KINDS:
            spec = pod_template(doc)["spec"]
            if any(c["image"] == ref for key in ("containers", "initContainers") for c in spec.get(key) or []):
                found.add(f"{doc['kind']}/{doc['metadata']['labels']['app.kubernetes.io/name']}")
    return found


def _templates(result: SynthResult) -> dict[str, str]:
    return {
        f"{d['kind']}/{d['metadata']['labels']['app.kubernetes.io/name']}": json.dumps([d["metadata"]["name"], pod_template(d)], sort_keys=True)
        for d in result.documents if d["kind"] in POD_OWNER_KINDS
    }


def test_a_changed_demo_file_rolls_exactly_the_project_image_pods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "checkout").mkdir()
    root = _copy_context(tmp_path / "checkout")
    monkeypatch.setattr(image_tag, "REPO", root)
    first = synth(tmp_path / "a")
    again = synth(tmp_path / "b")
    for a, b in zip(first.files, again.files, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.name}: no change, yet dist/ differs"
    # One file of demo/ (a dbt model) changes.
    model = next((root / "demo").rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- changed\n")
    second = synth(tmp_path / "c")
    old_ref = f"floe-project:{_tag(first)}"
    assert old_ref == f"floe-project:{image_tag.content_tag(REPO)}"  # the copy holds the checkout's bytes
    new_ref = f"floe-project:{image_tag.content_tag(root)}"
    assert old_ref != new_ref
    users = _project_image_templates(first, old_ref)
    assert users == _project_image_templates(second, new_ref)
    assert {"Deployment/floe-dagster-daemon", "Job/floe-minio-buckets", "CronJob/floe-reconcile", "Deployment/floe-cube"} <= users
    before, after = _templates(first), _templates(second)
    assert {ref for ref in before if before[ref] != after[ref]} == users


def _tag(result: SynthResult) -> str:
    for doc in result.documents:
        for c in pod_template(doc)["spec"].get("containers", []) if doc["kind"] in POD_OWNER_KINDS else []:
            if c["image"].startswith("floe-project:"):
                return c["image"].split(":", 1)[1]
    raise AssertionError("no project image in dist/")


# --- make image: builds only a tag docker does not have -----------------------------------------------


FAKE_DEPLOY = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args[:1] == ["image-name"]:
    print(os.environ["FAKE_IMAGE"])
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["floe.deploy", *args]) + "\\n")
"""
FAKE_DOCKER = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["docker", *args]) + "\\n")
if args[:2] == ["image", "inspect"]:
    sys.exit(0 if args[-1] in os.environ.get("FAKE_DOCKER_IMAGES", "").split(",") else 1)
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("present", [False, True])
def test_make_image_builds_only_a_new_tag(tmp_path: Path, present: bool) -> None:
    # Run through the interpreter, quoted for the recipe's shell: a shebang cannot hold a path with a
    # space (a checkout in "/tmp/ci root/floe main").
    tools = {}
    for name, text in (("deploy", FAKE_DEPLOY), ("docker", FAKE_DOCKER)):
        (tmp_path / name).write_text(text.format(python=sys.executable))
        tools[name] = f"{shlex.quote(sys.executable)} {shlex.quote(str(tmp_path / name))}"
    image = f"floe-project:{image_tag.content_tag()}"
    log = tmp_path / "log.jsonl"
    env = {**os.environ, "FAKE_LOG": str(log), "FAKE_IMAGE": image, "FAKE_DOCKER_IMAGES": image if present else ""}
    subprocess.run(
        ["make", "--no-print-directory", "-f", "make/deploy.mk", "image", "SYNTH=true", f"FLOE_DEPLOY={tools['deploy']}", f"DOCKER={tools['docker']}"],
        cwd=REPO, env=env, check=True, capture_output=True, text=True,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    builds = [c for c in calls if c[:2] == ["docker", "build"]]
    assert builds == ([] if present else [["docker", "build", "-t", image, "-f", "Dockerfile", "."]])
    assert [c[1] for c in calls if c[0] == "floe.deploy"] == ["load-image", "image-name", "load-image"]
