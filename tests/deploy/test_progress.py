"""Progress that moves (issue 16 item 7): elapsed seconds on every long step, as a spinner in a
terminal and as periodic lines elsewhere; a step that redirects stdout cannot swallow it; the
deploy tool repeats an unchanged waiting line with its elapsed time."""

from __future__ import annotations

import contextlib
import io
import re
import time

import pytest

from demo.progress import elapsed
from tests.deploy.conftest import FakeTools
from tests.deploy.test_cli import IMAGE, run


def test_lines_with_growing_elapsed_seconds_when_not_a_terminal() -> None:
    out = io.StringIO()
    with elapsed("dbt build", out, interval=0.2, tty=False) as step:
        time.sleep(1.1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "dbt build ..."
    seconds = [int(m.group(1)) for line in lines[1:] if (m := re.fullmatch(r"  \.\.\. dbt build \((\d+) s\)", line))]
    assert len(seconds) >= 4 and seconds == sorted(seconds) and seconds[-1] >= 1, lines
    assert step.seconds >= 1.1


def test_a_spinner_whose_text_counts_seconds_in_a_terminal() -> None:
    out = io.StringIO()
    with elapsed("dbt build", out, tty=True):
        time.sleep(2.3)
    text = out.getvalue()
    assert "\x1b[" in text  # a live terminal display, redrawn
    assert "dbt build (0 s)" in text and "dbt build (2 s)" in text, text


def test_a_redirected_stdout_does_not_swallow_the_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """demo.local sends a Dagster run's output to a log file: the progress goes to the terminal."""
    import sys

    terminal, log = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", terminal)
    with elapsed("tick", sys.stdout, interval=0.2, tty=False), contextlib.redirect_stdout(log):
        print("dagster engine event")
        time.sleep(0.5)
    assert "... tick (0 s)" in terminal.getvalue() and "engine event" not in terminal.getvalue()
    assert "tick" not in log.getvalue()


def test_deploy_repeats_an_unchanged_waiting_line_with_its_elapsed_time(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> None:
    from floe.deploy import cli

    monkeypatch.setattr(cli, "PROGRESS_REPEAT_SECONDS", 0.5)
    monkeypatch.setenv("FAKE_DOCKER_IMAGES", IMAGE)
    monkeypatch.setenv("FAKE_KUBE_STATE", "not-ready")
    result = run(fake_tools, "deploy", "--image", IMAGE, "--timeout", "2.5", "--poll", "0.2")
    assert result.exit_code == 2
    waiting = [line for line in result.output.splitlines() if re.match(r"\s+\[\s*\d+s\] waiting for ", line)]
    assert len(waiting) >= 3, result.output  # the same state, printed again as time passes
    assert len(set(line.split("]", 1)[1] for line in waiting)) == 1
