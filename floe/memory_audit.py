"""Reads every container's memory settings back from the synthesized manifests and checks them against
its memory limit: each runtime that sizes itself from the machine must be sized explicitly, and the
sum of its pools must stay inside the limit with headroom. Used by tests/infra/test_memory_sizing.py
and `make bench` (bench/memory.py).

RULES is keyed by container name. A new container runs under a rule; a container from an image in
RUNTIME_IMAGES without a rule is an error (its runtime would size itself from the node).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from floe.manifest_checks import pod_template
from floe.memory import (
    HEADROOM,
    JVM_NATIVE_OVERHEAD_MIB,
    NODE_NATIVE_OVERHEAD_MIB,
    OTEL_NODE_SDK_NATIVE_MIB,
    SCRATCH_RESERVED_MIB,
    MiB,
    duckdb_size_bytes,
)
from floe.quantities import memory_bytes

# HotSpot defaults when a flag is absent (JDK 17/21): ReservedCodeCacheSize is 240 MiB with tiered
# compilation; MaxDirectMemorySize defaults to the max heap; -Xss is 1 MiB on Linux x86_64/aarch64;
# MaxMetaspaceSize is unbounded; MaxRAMPercentage is 25.
HOTSPOT_CODE_CACHE_MIB = 240
HOTSPOT_STACK_KIB = 1024
HOTSPOT_HEAP_PERCENT = 25
# run-java.sh of the ubi9 openjdk images: MaxRAMPercentage=80 unless JAVA_MAX_MEM_RATIO is set
# (jboss-container-images/openjdk modules/jvm/bash/.../java-default-options, max_memory()).
RUN_JAVA_HEAP_PERCENT = 80
# PostgreSQL's shared_buffers default (postgresql.conf.sample: 128MB) and a per-backend allowance.
POSTGRES_SHARED_BUFFERS_MIB = 128

# Images whose runtime sizes itself from the machine unless told otherwise.
RUNTIME_IMAGES = {
    "apache/polaris": "jvm",
    "apache/polaris-admin-tool": "jvm",
    "marquezproject/marquez": "jvm",
    "cubejs/cube": "node",
    "jaegertracing/jaeger": "go",
    "quay.io/minio/minio": "go",
}


@dataclass
class Finding:
    workload: str
    container: str
    runtime: str
    limit_mib: int
    settings: dict[str, str]
    # Named pools (MiB) whose sum must fit; "heap" first when the runtime has one.
    pools: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def used_mib(self) -> int:
        return sum(self.pools.values())

    @property
    def budget_mib(self) -> int:
        return int(self.limit_mib * (1 - HEADROOM))

    def check_budget(self) -> None:
        if self.pools and self.used_mib > self.budget_mib:
            parts = " + ".join(f"{k} {v}" for k, v in self.pools.items())
            self.errors.append(
                f"{parts} = {self.used_mib}Mi exceeds {self.budget_mib}Mi "
                f"({100 - int(HEADROOM * 100)}% of the {self.limit_mib}Mi limit)"
            )


def _jvm_size_mib(value: str) -> int:
    """-Xmx/-XX sizes: bytes or k/m/g (binary)."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    if not m:
        raise ValueError(f"not a JVM size: {value!r}")
    n, unit = int(m[1]), m[2].lower()
    return {"": n // MiB, "k": n // 1024, "m": n, "g": n * 1024}[unit]


def _duckdb_size_mib(value: str) -> int:
    return duckdb_size_bytes(value) // MiB


def _flags(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for token in shlex.split(text or ""):
        if m := re.fullmatch(r"-XX:(MaxRAMPercentage|MaxMetaspaceSize|ReservedCodeCacheSize|MaxDirectMemorySize)=(.+)", token):
            out[m[1]] = m[2]
        elif m := re.fullmatch(r"-X(mx|ss)(.+)", token):
            out["X" + m[1]] = m[2]
    return out


@dataclass(frozen=True)
class Jvm:
    """A HotSpot JVM. ``run_java``: started by the ubi9 openjdk run-java.sh (reads JAVA_MAX_MEM_RATIO,
    GC_MAX_METASPACE_SIZE, JAVA_OPTS_APPEND; JAVA_OPTS replaces everything); otherwise a plain
    `java $<options_env> -jar` entrypoint. ``threads``: the thread count the stack budget assumes."""

    threads: int
    run_java: bool = False
    options_env: str = "JAVA_OPTS"
    runtime: str = "jvm"

    def audit(self, f: Finding, env: dict[str, str]) -> None:
        limit = f.limit_mib
        if self.run_java:
            if "JAVA_OPTS" in env:
                f.errors.append("JAVA_OPTS replaces all of run-java.sh's options: use JAVA_OPTS_APPEND")
            flags = _flags(env.get("JAVA_OPTS_APPEND", ""))
            f.settings.update({k: env[k] for k in ("JAVA_MAX_MEM_RATIO", "GC_MAX_METASPACE_SIZE", "JAVA_OPTS_APPEND") if k in env})
            if "GC_MAX_METASPACE_SIZE" in env:
                flags.setdefault("MaxMetaspaceSize", f"{env['GC_MAX_METASPACE_SIZE']}m")
            ratio = env.get("JAVA_MAX_MEM_RATIO")
            if ratio is None and "MaxRAMPercentage" not in flags and "Xmx" not in flags:
                f.errors.append(f"no explicit heap: run-java.sh defaults to -XX:MaxRAMPercentage={RUN_JAVA_HEAP_PERCENT}")
                ratio = str(RUN_JAVA_HEAP_PERCENT)
            if ratio is not None and ratio != "0":
                flags.setdefault("MaxRAMPercentage", ratio)
        else:
            flags = _flags(env.get(self.options_env, ""))
            if self.options_env in env:
                f.settings[self.options_env] = env[self.options_env]
            if "MaxRAMPercentage" not in flags and "Xmx" not in flags:
                f.errors.append(f"no explicit heap: HotSpot defaults to -XX:MaxRAMPercentage={HOTSPOT_HEAP_PERCENT}")
                flags["MaxRAMPercentage"] = str(HOTSPOT_HEAP_PERCENT)
        heap = _jvm_size_mib(flags["Xmx"]) if "Xmx" in flags else int(limit * float(flags["MaxRAMPercentage"]) / 100)
        if "MaxMetaspaceSize" not in flags:
            f.errors.append("no MaxMetaspaceSize: metaspace is unbounded")
        metaspace = _jvm_size_mib(flags.get("MaxMetaspaceSize", "0"))
        if "ReservedCodeCacheSize" not in flags:
            f.errors.append(f"no ReservedCodeCacheSize: HotSpot reserves {HOTSPOT_CODE_CACHE_MIB}Mi")
        code = _jvm_size_mib(flags["ReservedCodeCacheSize"]) if "ReservedCodeCacheSize" in flags else HOTSPOT_CODE_CACHE_MIB
        if "MaxDirectMemorySize" not in flags:
            f.errors.append("no MaxDirectMemorySize: direct buffers may grow to the heap size")
        direct = _jvm_size_mib(flags["MaxDirectMemorySize"]) if "MaxDirectMemorySize" in flags else heap
        stack_kib = _jvm_size_mib(flags["Xss"]) * 1024 if flags.get("Xss", "").lower().endswith(("m", "g")) else (
            int(flags["Xss"].rstrip("kK")) if "Xss" in flags else HOTSPOT_STACK_KIB
        )
        f.pools = {
            "heap": heap,
            "metaspace": metaspace,
            "code cache": code,
            "direct": direct,
            f"stacks ({self.threads}x{stack_kib}k)": self.threads * stack_kib // 1024,
            "native": JVM_NATIVE_OVERHEAD_MIB,
        }


@dataclass(frozen=True)
class Go:
    """A Go binary: its runtime memory limit (``env``: GOMEMLIMIT, or the binary's own knob where it
    sets the limit itself) must be set, at most 90 % of the limit; ``ignored`` names variables the
    binary overrides (MinIO replaces GOMEMLIMIT with its own figure)."""

    env: str = "GOMEMLIMIT"
    ignored: tuple[str, ...] = ()
    runtime: str = "go"

    def audit(self, f: Finding, env: dict[str, str]) -> None:
        for name in self.ignored:
            if name in env:
                f.errors.append(f"{name} is set but this binary ignores it (set {self.env})")
        value = env.get(self.env)
        if value is None:
            f.errors.append(f"no {self.env}: the Go GC only reacts to GOGC, not to the container limit")
            return
        f.settings[self.env] = value
        m = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB)?", value)
        if not m:
            f.errors.append(f"{self.env} {value!r} is not a Go memory size")
            return
        f.pools = {self.env: int(m[1]) * {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[m[2]] // MiB}


@dataclass(frozen=True)
class Node:
    """A Node.js process, optionally with an embedded DuckDB whose memory_limit comes from an env var
    (Cube's DuckDB driver: CUBEJS_DB_DUCKDB_MEMORY_LIMIT)."""

    duckdb_env: str | None = None
    runtime: str = "node"

    def audit(self, f: Finding, env: dict[str, str]) -> None:
        options = env.get("NODE_OPTIONS", "")
        if options:
            f.settings["NODE_OPTIONS"] = options
        m = re.search(r"--max-old-space-size=(\d+)", options)
        if not m:
            f.errors.append("no NODE_OPTIONS=--max-old-space-size: V8 sizes its heap from the machine, not the container")
        f.pools = {"old space": int(m[1]) if m else 0, "node native": NODE_NATIVE_OVERHEAD_MIB}
        # A preload (--require, the OpenTelemetry SDK of demo/cube/otel) loads code and buffers of its
        # own outside the old space: its measured cost counts (floe.memory.OTEL_NODE_SDK_NATIVE_MIB).
        preloads = re.findall(r"(?:--require|-r)[= ](\S+)", options)
        if preloads:
            f.settings["preload"] = " ".join(preloads)
            f.pools["opentelemetry sdk"] = OTEL_NODE_SDK_NATIVE_MIB * len(preloads)
        if self.duckdb_env:
            DuckDb(self.duckdb_env).audit(f, env)


@dataclass(frozen=True)
class DuckDb:
    """An embedded DuckDB whose memory_limit is set from ``env`` (DuckDB's default is 80 % of RAM)."""

    env: str
    runtime: str = "duckdb"

    def audit(self, f: Finding, env: dict[str, str]) -> None:
        value = env.get(self.env)
        if value is None:
            f.errors.append(f"no {self.env}: DuckDB defaults memory_limit to 80% of the machine's RAM")
            return
        f.settings[self.env] = value
        f.pools[f"duckdb ({self.env})"] = _duckdb_size_mib(value)


@dataclass(frozen=True)
class Postgres:
    """PostgreSQL: shared_buffers (default 128MB unless `-c shared_buffers=`) within a quarter of the
    limit, the PostgreSQL docs' starting point for a dedicated server."""

    runtime: str = "postgres"

    def audit(self, f: Finding, env: dict[str, str], args: list[str] | None = None) -> None:
        value = next((a.split("=", 1)[1] for a in args or [] if a.startswith("shared_buffers=")), None)
        shared = _jvm_size_mib(value.rstrip("B")) if value else POSTGRES_SHARED_BUFFERS_MIB
        f.settings["shared_buffers"] = value or f"{POSTGRES_SHARED_BUFFERS_MIB}MB (default)"
        if shared > f.limit_mib // 4:
            f.errors.append(f"shared_buffers {shared}Mi is more than a quarter of the {f.limit_mib}Mi limit")


Rule = Jvm | Go | Node | DuckDb | Postgres

RULES: dict[str, Rule] = {
    # Quarkus: 2 event loops, the worker pool, Agroal, GC and JIT threads under a demo load.
    "polaris": Jvm(threads=80, run_java=True),
    # The admin tool's one-shot bootstrap: main, JDBC, GC and JIT threads.
    "bootstrap-realm": Jvm(threads=30, run_java=True),
    # Dropwizard/Jetty (maxThreads 1024 is never reached by a demo), Jdbi pool, GC and JIT threads.
    "marquez": Jvm(threads=100),
    "jaeger": Go(),
    # MinIO calls debug.SetMemoryLimit with MINIO_MEMLIMIT (else the memory it finds available),
    # replacing GOMEMLIMIT (cmd/server-rlimit.go setMaxResources).
    "minio": Go(env="MINIO_MEMLIMIT", ignored=("GOMEMLIMIT",)),
    "postgres": Postgres(),
    # Cube API and refresh worker: V8 plus the embedded DuckDB (same process).
    "cube": Node(duckdb_env="CUBEJS_DB_DUCKDB_MEMORY_LIMIT"),
    "cube-refresh-worker": Node(duckdb_env="CUBEJS_DB_DUCKDB_MEMORY_LIMIT"),
    # Dagster user code runs the pipeline's DuckDB (and dbt's, through the same init SQL) with
    # memory_limit from FLOE_DUCKDB_MEMORY_LIMIT (demo/lakehouse/settings.py); so do the verifier
    # and the reconcile step's catalog checks where they open DuckDB.
    "user-code": DuckDb("FLOE_DUCKDB_MEMORY_LIMIT"),
    "verify": DuckDb("FLOE_DUCKDB_MEMORY_LIMIT"),
}


#: Our DuckDB's spill settings (demo.lakehouse.settings LakehouseSettings).
DUCKDB_TEMP_DIRECTORY_ENV = "FLOE_DUCKDB_TEMP_DIRECTORY"
DUCKDB_MAX_TEMP_ENV = "FLOE_DUCKDB_MAX_TEMP_DIRECTORY_SIZE"


def _duckdb_instances(spec: dict, container: dict, documents: list[dict]) -> int:
    """How many of our DuckDBs may spill into this container's scratch at once: one, plus one per
    concurrent run where runs execute in this container (it mounts a dagster.yaml whose run launcher
    is Dagster's default, in-process one: the code server; its QueuedRunCoordinator's
    max_concurrent_runs bounds the runs)."""
    import yaml

    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        if not (mount.get("subPath") or mount["mountPath"]).endswith("dagster.yaml"):
            continue
        name = (volumes.get(mount["name"]) or {}).get("configMap", {}).get("name")
        cm = next((d for d in documents if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == name), None)
        if cm is None:
            continue
        instance = yaml.safe_load(cm["data"][mount.get("subPath") or "dagster.yaml"])
        runs_here = (instance.get("run_launcher") or {}).get("class", "DefaultRunLauncher") == "DefaultRunLauncher"
        is_code_server = "api" in (container.get("command") or []) and "grpc" in (container.get("command") or [])
        if runs_here and is_code_server:
            return 1 + int(((instance.get("run_coordinator") or {}).get("config") or {}).get("max_concurrent_runs", 1))
    return 1


def scratch_problems(spec: dict, container: dict, documents: list[dict]) -> list[str]:
    """DuckDB caps each instance's spill, not their sum: the spills of every instance that may run
    at once, plus SCRATCH_RESERVED_MIB for the rest of a shared volume (/tmp), must fit the emptyDir's sizeLimit,
    or the kubelet evicts the pod before DuckDB's own cap applies."""
    env = {e["name"]: e.get("value", "") for e in container.get("env") or [] if "value" in e}
    directory = env.get(DUCKDB_TEMP_DIRECTORY_ENV)
    if directory is None:
        return []
    if DUCKDB_MAX_TEMP_ENV not in env:
        return [f"{DUCKDB_TEMP_DIRECTORY_ENV} without {DUCKDB_MAX_TEMP_ENV}: DuckDB may fill 90% of the disk it sees"]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    mounts = [m for m in container.get("volumeMounts") or [] if directory == m["mountPath"] or directory.startswith(m["mountPath"].rstrip("/") + "/")]
    if not mounts:
        return [f"{DUCKDB_TEMP_DIRECTORY_ENV} {directory} is on no volume (the read-only root filesystem)"]
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    size = ((volumes.get(mount["name"]) or {}).get("emptyDir") or {}).get("sizeLimit")
    if size is None:
        return [f"DuckDB spills to volume {mount['name']}, which is not an emptyDir with a sizeLimit"]
    instances = _duckdb_instances(spec, container, documents)
    spill = _duckdb_size_mib(env[DUCKDB_MAX_TEMP_ENV])
    limit = memory_bytes(size) // MiB
    # A volume mounted at the spill directory itself holds nothing else (Cube's); /tmp holds more.
    reserved = 0 if mount["mountPath"].rstrip("/") == directory.rstrip("/") else SCRATCH_RESERVED_MIB
    if instances * spill + reserved > limit:
        return [f"{instances} DuckDB(s) x {spill} MiB spill + {reserved} MiB reserved > {mount['name']} sizeLimit {size}: the kubelet evicts the pod first"]
    return []


def _image_repository(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def audit(documents: list[dict]) -> list[Finding]:
    findings: list[Finding] = []
    for doc in documents:
        if doc.get("kind") not in ("Deployment", "StatefulSet", "Job", "CronJob"):
            continue
        spec = pod_template(doc)["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            rule = RULES.get(c["name"])
            runtime = RUNTIME_IMAGES.get(_image_repository(c["image"]))
            if rule is None and runtime is None:
                continue
            limit = c.get("resources", {}).get("limits", {}).get("memory")
            f = Finding(
                workload=f"{doc['kind']}/{doc['metadata']['name']}",
                container=c["name"],
                runtime=rule.runtime if rule else runtime,
                limit_mib=memory_bytes(limit) // MiB if limit else 0,
                settings={},
            )
            findings.append(f)
            if not limit:
                f.errors.append("no memory limit")
                continue
            if rule is None:
                f.errors.append(f"a {runtime} image with no rule in floe.memory_audit.RULES")
                continue
            env = {e["name"]: e.get("value", "") for e in c.get("env") or [] if "value" in e}
            if isinstance(rule, Postgres):
                rule.audit(f, env, [a for a in c.get("args") or []])
            else:
                rule.audit(f, env)
            f.errors.extend(scratch_problems(spec, c, documents))
            f.check_budget()
    return findings
