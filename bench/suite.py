"""The test suite against an earlier commit: `make bench-suite BASE=<rev>` (or `.venv/bin/python -m bench.suite <rev>`).

    .venv/bin/python -m bench.suite BASE [--pairs N] [--repo PATH] [--keep]

Item 4 of issue 20 asks for "the suite in half the time, same tests": a figure that only holds as a
ratio measured in one sitting, since this machine drifts 2-3x between days. So:

- **Each arm is a clean clone** of its commit (HEAD's committed tree, and BASE) with its own locked
  environment, set up by its own `make test` prerequisites in an untimed collect-only run.
- **Each arm runs its own `make test`**, so each runs with the options it shipped with (serial before
  pytest-xdist came, `-n auto --dist loadfile` after), on **the same test ids**: BASE's ids that HEAD
  still collects under the same id. BASE's ids that HEAD lost are counted and printed.
- **The runs alternate** (HEAD, BASE, then BASE, HEAD, ...), so drift hits both arms alike; the figure to
  quote is the summed ratio, beside the floor: the cores here (the most xdist can use).
- A failing test can end early, so a run with failures is flagged: its arm did less work than a
  passing one.

A full comparison takes as long as 2 x pairs runs of each arm (56 minutes here for 2 pairs against the
suite as issue 20 found it, e7c26db, set-up included), so it is not part of `make bench`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[1]

#: pytest's last line: "==== 3 failed, 1118 passed, 27 warnings in 1055.58s (0:17:35) ====".
_SUMMARY = re.compile(r"^=*\s*(?P<counts>.*?) in (?P<seconds>[0-9.]+)s\b.*$")


@dataclass(frozen=True)
class Summary:
    passed: int
    failed: int
    errors: int
    pytest_seconds: float


def parse_summary(output: str) -> Summary:
    """pytest's final counts from a run's output (its last summary line)."""
    for line in reversed(output.splitlines()):
        match = _SUMMARY.match(line.strip())
        if match and re.search(r"\d+ (passed|failed|error)", match["counts"]):
            counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?)\b", match["counts"])}
            return Summary(counts.get("passed", 0), counts.get("failed", 0),
                           counts.get("error", 0) + counts.get("errors", 0), float(match["seconds"]))
    raise ValueError("no pytest summary line in the output")


def collected_ids(output: str) -> list[str]:
    """Test ids from `pytest --collect-only -q` output, in collection order."""
    return [line for line in output.splitlines() if "::" in line and not line.startswith((" ", "="))]


def common_ids(base: list[str], head: list[str]) -> tuple[list[str], list[str]]:
    """(BASE's ids that HEAD still has, in BASE's order; BASE's ids that HEAD lost)."""
    kept = set(head)
    return [i for i in base if i in kept], [i for i in base if i not in kept]


def run_order(pairs: int) -> list[str]:
    """ABBA: head, base, base, head, head, base, ..."""
    return [arm for n in range(pairs) for arm in (("head", "base") if n % 2 == 0 else ("base", "head"))]


def _default_sigint() -> None:
    # A shell's background job ignores SIGINT, and the child inherits that; the suite's Ctrl-C tests
    # need the default action back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _make_test(clone: Path, addopts: str, log: Path) -> tuple[float, str]:
    """`make test` in a clone with PYTEST_ADDOPTS, output to a log: (wall seconds, output)."""
    env = {**os.environ, "PYTEST_ADDOPTS": addopts}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a normal environment caches bytecode
    env.pop("VIRTUAL_ENV", None)
    # Each arm's make as if typed at a shell: under `make bench-suite` these carry -w (print the
    # directory) and the job server down to every make the suite runs, and a base commit's test of
    # `make`'s output cannot be fixed after the fact.
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(name, None)
    started = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(["make", "test"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_default_sigint)
    return time.perf_counter() - started, log.read_text(errors="replace")


def _stop(output: str, message: str) -> NoReturn:
    """Exit with a run's last output lines on stderr, then the message naming what failed."""
    print(output[-3000:], file=sys.stderr)
    sys.exit(f"bench.suite: {message}")


def _clone(repo: Path, commit: str, dest: Path) -> None:
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(repo), str(dest)], check=True)
    subprocess.run(["git", "-C", str(dest), "checkout", "--quiet", "--detach", commit], check=True)


def _resolve(repo: Path, rev: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench.suite: {rev!r} is not a commit in {repo}")
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the earlier commit (a rev git understands)")
    parser.add_argument("--pairs", type=int, default=2, help="pairs of runs, alternating (default 2: HEAD, BASE, BASE, HEAD)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the repository (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the clones and logs (printed at the end)")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    commits = {"head": _resolve(repo, "HEAD"), "base": _resolve(repo, args.base)}
    work = Path(tempfile.mkdtemp(prefix="floe-bench-suite-"))
    try:
        clones = {arm: work / arm for arm in commits}
        ids: dict[str, list[str]] = {}
        for arm, commit in commits.items():
            print(f"{arm}: {commit[:10]}: clone, set up and collect (untimed) ...", flush=True)
            _clone(repo, commit, clones[arm])
            _, output = _make_test(clones[arm], "--collect-only -q -p no:cacheprovider", work / f"{arm}-collect.log")
            ids[arm] = collected_ids(output)
            if not ids[arm]:
                _stop(output, f"{arm} ({commit[:10]}) collected no tests; its log is above")
        same, lost = common_ids(ids["base"], ids["head"])
        if not same:  # an empty id file would run each arm's whole suite instead
            sys.exit(f"bench.suite: HEAD has none of the base's {len(ids['base'])} test ids; there is nothing to compare")
        id_file = work / "ids.txt"
        id_file.write_text("".join(f"{i}\n" for i in same))
        print(f"ids: base {len(ids['base'])}, head {len(ids['head'])}; run: the {len(same)} base ids head still has"
              f" ({len(lost)} lost{': ' + ', '.join(lost[:5]) if lost else ''})", flush=True)
        runs: list[tuple[str, float, Summary]] = []
        for n, arm in enumerate(run_order(args.pairs), start=1):
            wall, output = _make_test(clones[arm], f"-p no:cacheprovider @{id_file}", work / f"run{n}-{arm}.log")
            try:
                summary = parse_summary(output)
            except ValueError:
                _stop(output, f"run {n} ({arm}, {commits[arm][:10]}) printed no pytest summary; its output ends above")
            runs.append((arm, wall, summary))
            flag = "" if summary.failed == summary.errors == 0 else "  <- failures: this arm did less work"
            print(f"run {n} {arm:4} {commits[arm][:10]}: {wall:7.1f} s wall ({summary.passed} passed,"
                  f" {summary.failed} failed, {summary.errors} errors; pytest {summary.pytest_seconds:.1f} s){flag}", flush=True)
        print(f"floor: {os.cpu_count()} cores here (xdist's `-n auto` uses one worker per core)")
        for pair in range(args.pairs):
            walls = {arm: wall for arm, wall, _ in runs[2 * pair: 2 * pair + 2]}
            print(f"pair {pair + 1}: base {walls['base']:.1f} s / head {walls['head']:.1f} s = {walls['base'] / walls['head']:.2f}x")
        totals = {arm: sum(wall for run_arm, wall, _ in runs if run_arm == arm) for arm in commits}
        print(f"sum: base {totals['base']:.1f} s / head {totals['head']:.1f} s = {totals['base'] / totals['head']:.2f}x"
              f" on {len(same)} tests (target >= 2x)")
        return 0
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
