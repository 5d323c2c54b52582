"""One resource total in the docs, generated from the code (issue 16 item 8): docs/quickstart.md holds
the block `python -m floe.capacity` prints for the default profile, and every CPU/memory pair the
local-profile docs quote is one of its figures."""

from __future__ import annotations

import re
import subprocess
import sys

from floe.capacity import DOCS_BEGIN, DOCS_END, resource_markdown, resource_rows, split_documents
from floe.deploy.manifests import Stack
from floe.quantities import cpu_millicores, memory_bytes
from floe.synth import SynthResult
from tests.infra.conftest import REPO

# The docs about the local profile (production.md is about the cluster profile's nodes).
LOCAL_DOCS = ["README.md", "docs/quickstart.md", "docs/architecture.md", "docs/troubleshooting.md"]
# "1650m CPU / 2.84Gi", "1.95 CPU and 3.5 GiB", "3.15 CPU / 3.6 GiB"
PAIR = re.compile(r"(\d+(?:\.\d+)?)(m)? CPU (?:/|and) (\d+(?:\.\d+)?) ?(Gi|GiB|Mi|MiB)\b")


def test_quickstart_holds_the_generated_block(default_synth: SynthResult) -> None:
    text = (REPO / "docs/quickstart.md").read_text()
    assert text.count(DOCS_BEGIN) == 1 and text.count(DOCS_END) == 1
    expected = resource_markdown(*split_documents(default_synth.file_documents))
    found = text[text.index(DOCS_BEGIN) : text.index(DOCS_END) + len(DOCS_END)]
    assert found == expected, f"regenerate with `.venv/bin/python -m floe.capacity` after `make synth`:\n{expected}"


def test_the_figures_are_the_tools_own(default_synth: SynthResult) -> None:
    """The rows are what `floe.deploy resources`/preflight compute from the same dist/."""
    stack = Stack.load(default_synth.out_dir)
    rows = resource_rows(*split_documents(default_synth.file_documents))
    assert (rows[0][1], rows[0][2]) == stack.pod_requests(include_jobs=False)
    assert (rows[1][1], rows[1][2]) == stack.pod_requests(include_jobs=True)
    assert rows[2][1] > rows[1][1] and rows[2][2] > rows[1][2]  # the verification Job adds its pod


def test_every_total_quoted_in_the_docs_is_a_generated_figure(default_synth: SynthResult) -> None:
    rows = resource_rows(*split_documents(default_synth.file_documents))
    known = {(cpu, round(mem / 2**20)) for _, cpu, mem in rows}
    quoted = []
    for name in LOCAL_DOCS:
        for m in PAIR.finditer((REPO / name).read_text()):
            cpu = cpu_millicores(m.group(1) + (m.group(2) or ""))
            mem = memory_bytes(m.group(3) + m.group(4)[:2])
            quoted.append((name, m.group(0), (cpu, round(mem / 2**20))))
    assert quoted, "the pattern finds nothing: it could not fail"
    wrong = [(name, text) for name, text, pair in quoted if not any(pair[0] == c and abs(pair[1] - m) <= 6 for c, m in known)]
    assert not wrong, f"totals in the docs that the code does not give: {wrong}"


def test_the_generator_runs_as_documented(default_synth: SynthResult) -> None:
    out = subprocess.run([sys.executable, "-m", "floe.capacity", str(default_synth.out_dir)], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == resource_markdown(*split_documents(default_synth.file_documents))
