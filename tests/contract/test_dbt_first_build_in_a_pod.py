"""A new Dagster pod's first dbt invocation reuses the parse baked into the project image.

The image is laid out by the Dockerfile's own steps (tests.support.pods.build_local_image: the
manifest baked by ``ensure_manifest`` with the Dockerfile's ENV of that step), owned by root and
read-only to the pod's uid; the pod is the user-code container of dist/ (its env with Secrets
resolved, the image's ENV, a fresh emptyDir for /tmp: a pod that has never run dbt). dbt runs as the
Dagster step runs it (``demo.orchestration.dbt.dbt_resource().cli``, in-process, partial parse seeded
from the image) and dbt's own debug log says whether it reused the baked parse. ``dbt parse`` stands
for ``dbt build`` here: the same parse, without a catalog to connect to.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from floe.synth import SynthResult
from tests.support.pods import LocalContainer, dockerfile_env, materialize

pytestmark = pytest.mark.timeout(900)

FIRST_PARSE = (
    "import json\n"
    "from demo.orchestration.dbt import dbt_resource\n"
    "invocation = dbt_resource().cli(['parse'], raise_on_error=False)\n"
    "invocation.wait()\n"
    "print(json.dumps({'ok': invocation.is_successful(), 'target': str(invocation.target_path)}))\n"
)


def new_pod(stack: SynthResult, scratch: Path, local_image: dict[str, Path]) -> LocalContainer:
    """The user-code container as a pod that has just started: its own, empty emptyDirs."""
    return materialize(
        stack.documents, "Deployment", "floe-dagster-user-code", "user-code",
        root=scratch / f"new-pod-{uuid.uuid4().hex[:8]}", image_env=dockerfile_env(),
        extra_paths=local_image, as_pod_user=True,
    )


def first_parse(pod: LocalContainer) -> list[tuple[str, dict]]:
    """dbt's events (name, data) from the pod's first dbt invocation."""
    root = Path(pod.env["DBT_TARGET_PATH"])
    assert not (root / "partial_parse.msgpack").exists()  # nothing parsed in this pod before
    result = pod.run(["python", "-c", FIRST_PARSE], timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["ok"], outcome
    log = Path(outcome["target"]) / "dbt.log"
    return [
        (event["info"]["name"], event.get("data", {}))
        for event in map(json.loads, (line for line in log.read_text().splitlines() if line.startswith("{")))
    ]


def test_a_new_pods_first_dbt_parse_reuses_the_image_parse(stack: SynthResult, scratch: Path, local_image: dict[str, Path]) -> None:
    pod = new_pod(stack, scratch, local_image)
    # What dbt's partial-parse check hashes differs between image and pod unless made equal: the
    # target (the Dockerfile parses with the pods' one), the profile's connection values (nothing
    # there varies: dbt's DuckDB file is attached by the plugin) and the project's env vars.
    assert pod.env["FLOE_PIPELINE_DBT_TARGET"] == dockerfile_env(before="ensure_manifest")["FLOE_PIPELINE_DBT_TARGET"]
    events = first_parse(pod)
    names = [name for name, _ in events]
    assert "UnableToPartialParse" not in names, [data for name, data in events if name == "UnableToPartialParse"]
    (enabled,) = [data for name, data in events if name == "PartialParsingEnabled"]
    # Nothing parsed again: no file added, changed (an env var it reads included) or deleted.
    assert (enabled.get("added", 0), enabled.get("changed", 0), enabled.get("deleted", 0)) == (0, 0, 0), enabled


def test_a_pod_whose_hashed_values_differ_from_the_image_parses_anew(stack: SynthResult, scratch: Path, local_image: dict[str, Path]) -> None:
    """The same check catches a pod that does not match the image (here: another dbt target), so
    the test above can fail: dbt itself refuses the baked parse and parses everything."""
    pod = new_pod(stack, scratch, local_image)
    pod.env["FLOE_PIPELINE_DBT_TARGET"] = "local"
    names = [name for name, _ in first_parse(pod)]
    assert "UnableToPartialParse" in names
    assert "PartialParsingEnabled" not in names
