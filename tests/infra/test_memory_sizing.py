"""Every JVM, Node.js, Go and DuckDB process is sized to its container limit explicitly, read back from
the synthesized manifests (issue 8, finding 6: run-java.sh gave Polaris an 80 % heap, leaving ~200 MiB
for metaspace, code cache, threads and buffers). The rules live in floe.memory_audit.RULES."""

from __future__ import annotations

import pytest

from floe.memory_audit import RULES, RUNTIME_IMAGES, Finding, Jvm, audit
from floe.synth import SynthResult


@pytest.fixture(scope="module")
def findings(default_synth: SynthResult) -> list[Finding]:
    return audit(default_synth.documents)


def _ids(findings: list[Finding]) -> list[str]:
    return [f"{f.workload}/{f.container}" for f in findings]


def test_every_rule_matches_a_container(findings: list[Finding]) -> None:
    assert set(RULES) <= {f.container for f in findings}, set(RULES) - {f.container for f in findings}


def test_every_runtime_image_is_covered(findings: list[Finding]) -> None:
    seen_runtimes = {f.runtime for f in findings}
    assert {"jvm", "go", "node"} <= seen_runtimes, seen_runtimes
    assert RUNTIME_IMAGES  # the images a rule must cover


def test_each_container_is_sized_explicitly_within_its_limit(findings: list[Finding]) -> None:
    failures = [f"{f.workload}/{f.container} ({f.runtime}, limit {f.limit_mib}Mi): {e}" for f in findings for e in f.errors]
    assert not failures, "memory sizing:\n" + "\n".join(failures)


def test_polaris_heap_leaves_room_for_the_rest(findings: list[Finding]) -> None:
    """The finding itself: Polaris' heap plus its fixed pools fit its limit with 10 % headroom."""
    polaris = next(f for f in findings if f.container == "polaris")
    assert not polaris.errors, polaris.errors
    assert polaris.pools["heap"] < polaris.limit_mib * 0.6
    assert polaris.used_mib <= polaris.budget_mib


def test_the_audit_catches_an_unsized_jvm() -> None:
    """A run-java image with no explicit settings is reported, with the 80 % default it would get."""
    doc = {
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "polaris", "image": "apache/polaris:1.7.0", "resources": {"limits": {"memory": "1Gi"}}}
        ]}}},
    }
    (f,) = audit([doc])
    assert any("no explicit heap" in e for e in f.errors)
    assert f.pools["heap"] == 819 and any("exceeds" in e for e in f.errors)
    assert isinstance(RULES["polaris"], Jvm)


def test_cube_counts_the_preloaded_opentelemetry_sdk(findings: list[Finding]) -> None:
    """Issue 17: with Jaeger on, Cube preloads the OpenTelemetry SDK; its measured memory outside the
    old space is one of the pools, and the heap was lowered by it so the sum still fits."""
    from floe.memory import OTEL_NODE_SDK_NATIVE_MIB

    for name in ("cube", "cube-refresh-worker"):
        cube = next(f for f in findings if f.container == name)
        assert cube.settings["preload"] == "/cube/otel/tracing.js"
        assert cube.pools["opentelemetry sdk"] == OTEL_NODE_SDK_NATIVE_MIB
        assert not cube.errors and cube.used_mib <= cube.budget_mib, (cube.pools, cube.budget_mib)


def test_the_audit_catches_a_preload_the_heap_does_not_leave_room_for(default_synth: SynthResult) -> None:
    """The same Cube container with the heap it had before the SDK (48 MiB more) no longer fits."""
    import copy
    import re

    docs = copy.deepcopy(default_synth.documents)
    api = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "floe-cube")
    env = next(e for e in api["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "NODE_OPTIONS")
    heap = int(re.search(r"--max-old-space-size=(\d+)", env["value"])[1])
    env["value"] = env["value"].replace(f"--max-old-space-size={heap}", f"--max-old-space-size={heap + 48}")
    cube = next(f for f in audit(docs) if f.workload == "Deployment/floe-cube" and f.container == "cube")
    assert any("exceeds" in e for e in cube.errors), (cube.errors, cube.pools)
def test_user_code_scratch_holds_every_duckdb_spill_at_once(default_synth: SynthResult, tmp_path) -> None:  # noqa: ANN001
    """Issue 15: two DuckDBs (a sensor's read during a dbt build) could each spill 1 GiB into a 2 GiB
    /tmp that also holds dbt's files: the kubelet evicted the pod before DuckDB's cap applied. Now
    each spill is the volume's share per DuckDB that may run at once (the sensor + one per concurrent
    run), by construction, and the audit checks the sum from dist/."""
    import copy

    from floe.memory import SCRATCH_RESERVED_MIB
    from floe.memory_audit import _duckdb_instances, scratch_problems
    from floe.manifest_checks import pod_template
    from tests.infra.conftest import synth
    from tests.support.manifests import find

    def user_code(docs: list[dict]) -> tuple[dict, dict]:
        spec = pod_template(find(docs, "Deployment", "floe-dagster-user-code"))["spec"]
        return spec, spec["containers"][0]

    docs = default_synth.documents
    spec, c = user_code(docs)
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert _duckdb_instances(spec, c, docs) == 2  # the sensor + max_concurrent_runs (1)
    assert env["FLOE_DUCKDB_MAX_TEMP_DIRECTORY_SIZE"] == f"{(2048 - SCRATCH_RESERVED_MIB) * 7 // 8 // 2}MiB"
    assert scratch_problems(spec, c, docs) == []
    # More concurrent runs: smaller spills, still within the volume.
    more = synth(tmp_path, dagster__max_concurrent_runs=3).documents
    spec3, c3 = user_code(more)
    assert _duckdb_instances(spec3, c3, more) == 4 and scratch_problems(spec3, c3, more) == []
    # The old sizing (half the volume per DuckDB) is caught.
    broken = copy.deepcopy(docs)
    spec_b, c_b = user_code(broken)
    next(e for e in c_b["env"] if e["name"] == "FLOE_DUCKDB_MAX_TEMP_DIRECTORY_SIZE")["value"] = "1024MiB"
    assert any("evicts" in p for p in scratch_problems(spec_b, c_b, broken))


def test_the_audit_catches_gomemlimit_on_minio(default_synth: SynthResult) -> None:
    """MinIO replaces GOMEMLIMIT with its own limit (MINIO_MEMLIMIT, else the memory available)."""
    import copy

    from tests.support.manifests import find

    docs = copy.deepcopy(default_synth.documents)
    c = find(docs, "Deployment", "floe-minio")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MINIO_MEMLIMIT", "value": "460MiB"} in c["env"] and not any(e["name"] == "GOMEMLIMIT" for e in c["env"])
    c["env"] = [{"name": "GOMEMLIMIT", "value": "460MiB"} if e["name"] == "MINIO_MEMLIMIT" else e for e in c["env"]]
    (minio,) = [f for f in audit(docs) if f.container == "minio"]
    assert any("ignores it" in e for e in minio.errors) and any("no MINIO_MEMLIMIT" in e for e in minio.errors)
