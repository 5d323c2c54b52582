"""A newcomer's first hour (issue 16): `make` lists every target with its help (item 2), the commands
the docs give work as written (item 4), and the exit codes the docs give are what a person sees,
through make too (item 6)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from floe.deploy.outcome import ExitCode
from tests.deploy.test_e2e_workflow import make_targets

REPO = Path(__file__).parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
# What runs inside the project image's pods (the docs describe those containers' commands): not for a
# person to type on their machine.
IN_POD_MODULES = ("demo.bootstrap", "demo.verify", "demo.orchestration.daemon_liveness", "demo.orchestration.migrate")


def rule_targets() -> dict[str, str]:
    """Every `target: ... ## help` rule of the Makefile and the files it includes."""
    found = {}
    for path in [REPO / "Makefile", *sorted((REPO / "make").glob("*.mk"))]:
        for m in re.finditer(r"^([a-zA-Z0-9_-]+):[^=\n]*?## (.+)$", path.read_text(), re.M):
            found[m.group(1)] = m.group(2).strip()
    return found


def phony_targets() -> set[str]:
    names: set[str] = set()
    for path in [REPO / "Makefile", *sorted((REPO / "make").glob("*.mk"))]:
        for m in re.finditer(r"^\.PHONY:(.*)$", path.read_text(), re.M):
            names |= set(m.group(1).split())
    return names


def as_a_user_types_it() -> dict[str, str]:
    """The environment without the suite's own make: under `make test` (MAKELEVEL) or a recipe of
    another make (`$(MAKE) -C floe test`, whose MAKEFLAGS carries -w even past -s), a make run here
    would print make[1] and "Entering directory" lines no user sees."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")}


@needs_make
def test_make_lists_every_target_with_its_help() -> None:
    out = subprocess.run(["make", "-s"], cwd=REPO, env=as_a_user_types_it(), capture_output=True, text=True, timeout=60, check=True).stdout
    listed = {}
    for line in out.splitlines():
        m = re.match(r"^  make (\S+)\s+(\S.*)$", line)
        assert m, f"not a `make <target>  <help>` line: {line!r}"
        listed[m.group(1)] = m.group(2)
    assert listed == rule_targets()
    # Every phony target a person may call has a help line (from the Makefile and make/*.mk alike).
    assert phony_targets() <= set(listed), phony_targets() - set(listed)
    assert {"main", "test", "deploy-local-full", "port-forward", "verify", "cube-token", "clean"} <= set(listed)
    assert not any("Makefile" in line or ".mk" in line.split()[1] for line in out.splitlines())


def _python_commands(text: str) -> list[str]:
    return re.findall(r"(?<![\w/.])python3? (?:-m [\w.]+|main\.py|[\w/]+\.py)", text)


def test_docs_run_python_from_the_project_venv() -> None:
    """`python -m demo.local` with the system python is a ModuleNotFoundError: the docs say
    `.venv/bin/python` or a make target (commands of the image's pods excepted)."""
    bare = []
    for path in [*DOCS, REPO / "demo" / "local.py"]:
        for command in _python_commands(path.read_text()):
            module = command.split()[-1] if " -m " in command else None
            if module and module.startswith(IN_POD_MODULES):
                continue
            bare.append(f"{path.relative_to(REPO)}: {command}")
    assert not bare, bare


def test_documented_venv_modules_and_scripts_exist() -> None:
    for path in DOCS:
        for m in re.finditer(r"\.venv/bin/python (?:-m ([\w.]+)|([\w/]+\.py))", path.read_text()):
            if m.group(1):
                assert importlib.util.find_spec(m.group(1)) is not None, f"{path.name}: no module {m.group(1)}"
            else:
                assert (REPO / m.group(2)).is_file(), f"{path.name}: no file {m.group(2)}"


@needs_make
def test_documented_make_targets_exist() -> None:
    known = make_targets()
    # As commands: in backticks, or at the start of a line of a code block (`$ make x` or `make x`).
    command = re.compile(r"(?:`|^\$ |^)make (?:-s )?([a-z][a-z0-9-]*[a-z0-9])\b(?!-)", re.M)
    called = {(path.name, t) for path in DOCS for t in command.findall(path.read_text())}
    assert len(called) > 15, called  # the pattern finds the documented commands: it can fail
    missing = sorted((name, t) for name, t in called if t not in known)
    assert not missing, missing


def test_the_exit_code_table_is_the_tools() -> None:
    text = (REPO / "docs" / "troubleshooting.md").read_text()
    section = text[text.index("## Exit codes") : text.index("## Preflight")]
    rows = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", section, re.M)}
    assert rows == {int(code) for code in ExitCode}
    assert "Through make, every failure\nexits 2" in section and "Error 1" in section


@needs_make
def test_a_failure_through_make_exits_2_and_names_the_tools_code(tmp_path: Path) -> None:
    """What the docs say about make is what make does with our targets: exit 2, `Error 1` from the tool."""
    env = {**as_a_user_types_it(), "FLOE_KUBECTL": str(tmp_path / "no-kubectl"), "COLUMNS": "100"}
    result = subprocess.run(["make", "-s", "status", f"DIST={tmp_path}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("make: ***") and lines[-1].endswith("status] Error 1"), lines
    assert len(lines) == 3 and "kubectl not found" in lines[0] and "Traceback" not in result.stderr


def test_the_main_jobs_next_line_works_without_an_activated_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from demo.local import DEFAULT_DATA_DIR, next_command

    monkeypatch.chdir(tmp_path)
    assert next_command(DEFAULT_DATA_DIR).startswith("make ui")
    other = tmp_path / "my data"
    assert next_command(other).startswith(f".venv/bin/python -m demo.local ui --data-dir '{other}'")
    recipe = re.search(r"^ui:.*\n\t(.+)$", (REPO / "Makefile").read_text(), re.M)
    assert recipe and recipe.group(1).endswith("-m demo.local ui"), recipe  # `make ui`: the default data folder
