"""Memory budgets: every runtime that sizes itself from the machine (JVM, Go) gets explicit settings
derived from its container's memory limit, by one helper per runtime, so the sum of what the process
may use stays under the limit with headroom (the kubelet OOM-kills at the limit, not the heap).

JVM budget (HotSpot, JDK 17/21): total RSS ~= heap + metaspace + code cache + thread stacks
+ direct (NIO) buffers + GC/JIT/native overhead. Only the heap is sized from the limit by default
(the ubi9 openjdk images' run-java.sh: 80 %, jboss-container-images/openjdk
modules/jvm/module.yaml JAVA_MAX_MEM_RATIO); everything else is capped here explicitly and the heap
gets what is left after a headroom.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from floe.quantities import memory_bytes

MiB = 2**20
# What we leave unbudgeted in every container: page cache of mapped jars, malloc arenas, spikes.
HEADROOM = 0.10
# HotSpot native memory outside the capped pools (GC card tables and remembered sets, JIT arenas,
# symbol tables, NMT's "Internal"/"Other"): measured at 40-70 MiB for a Quarkus/Dropwizard service.
JVM_NATIVE_OVERHEAD_MIB = 64
# Node.js outside the old space: V8's young generation (3 x 16 MiB semi-spaces on 64-bit) and code
# space, libuv, OpenSSL, Buffers of streamed results and Cube's native module (SQL API, planner).
NODE_NATIVE_OVERHEAD_MIB = 128
# The OpenTelemetry Node SDK preloaded into Cube when Jaeger is on (demo/cube/otel/tracing.js), as
# measured by bench.otel on Node 24.21 (cubejs/cube's) serving Cube's own api-gateway, 3 alternating
# rounds: RSS +32-33 MiB idle, +52-61 MiB after 1 000 traced requests, of which only +10-13 MiB is live
# JS heap (inside the --max-old-space-size cap). The rest is reserved from the limit, outside the
# old space:
OTEL_NODE_SDK_NATIVE_MIB = 48
# ...and the request grows by the idle cost plus a little of the busy growth (all of it, twice, would
# not fit the 4 GB node with the rest of the stack; the limit budget above covers the peak).
OTEL_NODE_SDK_REQUEST_MIB = 40
# On a /tmp emptyDir that DuckDB spills to, what is not DuckDB's spill: dbt's DuckDB file (staging
# views), its target/ and logs/, compute-log staging of running steps, Python's temp files. The
# demo's dbt target is a few MiB, and failed builds' folders (about 2 MiB each) are pruned to the
# last 5 (demo.orchestration.dbt.KEPT_FAILED_TARGETS): a generous allowance (an estimate, not
# measured at scale).
SCRATCH_RESERVED_MIB = 256
# DuckDB notices max_temp_directory_size as it writes, so it can overshoot by what it is writing:
# each instance gets 7/8 of its share (as Cube's spill volume, constructs/cube.py).
DUCKDB_SPILL_MARGIN = 7 / 8


def duckdb_spill_mib(scratch_mib: int, instances: int) -> int:
    """max_temp_directory_size (MiB) of each of ``instances`` DuckDBs sharing a ``scratch_mib`` emptyDir:
    their spills plus SCRATCH_RESERVED_MIB never exceed it."""
    if instances < 1 or scratch_mib <= SCRATCH_RESERVED_MIB:
        raise ValueError(f"a {scratch_mib} MiB scratch volume leaves no room to spill for {instances} DuckDB(s) beside {SCRATCH_RESERVED_MIB} MiB reserved")
    return int((scratch_mib - SCRATCH_RESERVED_MIB) * DUCKDB_SPILL_MARGIN) // instances


# The default thread stack size on Linux x86_64/aarch64 (-Xss1m); we pass it explicitly so the budget
# and the JVM agree.
JVM_THREAD_STACK_KIB = 1024


@dataclass(frozen=True)
class JvmBudget:
    """One JVM's pools, in MiB, for a container memory limit."""

    limit_mib: int
    metaspace_mib: int
    code_cache_mib: int
    direct_mib: int
    threads: int
    stack_kib: int = JVM_THREAD_STACK_KIB
    native_mib: int = JVM_NATIVE_OVERHEAD_MIB

    @property
    def fixed_mib(self) -> int:
        """Everything but the heap."""
        stacks = self.threads * self.stack_kib // 1024
        return self.metaspace_mib + self.code_cache_mib + self.direct_mib + stacks + self.native_mib

    @property
    def heap_percent(self) -> int:
        """-XX:MaxRAMPercentage: whole percent of the limit left for the heap after the fixed pools
        and the headroom (whole numbers: run-java.sh keeps only the integer part)."""
        budget = self.limit_mib * (1 - HEADROOM) - self.fixed_mib
        percent = int(budget * 100 // self.limit_mib)
        if percent < 25:
            raise ValueError(
                f"a {self.limit_mib}Mi container leaves the JVM heap only {percent}% after "
                f"{self.fixed_mib}Mi of metaspace, code cache, direct buffers, stacks and native memory: raise memory_limit"
            )
        return percent

    @property
    def heap_mib(self) -> int:
        return self.limit_mib * self.heap_percent // 100

    def flags(self) -> list[str]:
        """Every pool but the heap, as HotSpot flags."""
        return [
            f"-XX:MaxMetaspaceSize={self.metaspace_mib}m",
            f"-XX:ReservedCodeCacheSize={self.code_cache_mib}m",
            f"-XX:MaxDirectMemorySize={self.direct_mib}m",
            f"-Xss{self.stack_kib}k",
        ]

    def java_opts(self) -> str:
        """A complete option string for a plain `java $JAVA_OPTS -jar …` entrypoint (Marquez)."""
        return " ".join([f"-XX:MaxRAMPercentage={self.heap_percent}.0", *self.flags(), "-XX:+ExitOnOutOfMemoryError"])

    def run_java_env(self) -> dict[str, str]:
        """The variables the ubi9 openjdk images' run-java.sh reads (jboss-container-images/openjdk
        modules/jvm/bash/.../java-default-options and modules/run/.../run-java.sh):
        JAVA_MAX_MEM_RATIO -> -XX:MaxRAMPercentage, GC_MAX_METASPACE_SIZE (MiB) ->
        -XX:MaxMetaspaceSize, JAVA_OPTS_APPEND appended after the generated options (JAVA_OPTS would
        replace them all, losing ExitOnOutOfMemoryError and the GC settings)."""
        return {
            "JAVA_MAX_MEM_RATIO": str(self.heap_percent),
            "GC_MAX_METASPACE_SIZE": str(self.metaspace_mib),
            "JAVA_OPTS_APPEND": " ".join(self.flags()[1:]),
        }


def jvm_budget(memory_limit: str, *, metaspace_mib: int, code_cache_mib: int, direct_mib: int, threads: int) -> JvmBudget:
    return JvmBudget(
        limit_mib=memory_bytes(memory_limit) // MiB,
        metaspace_mib=metaspace_mib,
        code_cache_mib=code_cache_mib,
        direct_mib=direct_mib,
        threads=threads,
    )


def go_memory_limit(memory_limit: str, fraction: float = 0.9) -> str:
    """GOMEMLIMIT (Go runtime soft limit, pkg.go.dev/runtime) at ``fraction`` of the container limit:
    the GC works harder as the heap nears it, instead of the kernel OOM-killing at the limit."""
    return f"{int(memory_bytes(memory_limit) * fraction) // MiB}MiB"


_DUCKDB_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def duckdb_size_bytes(value: str) -> int:
    """A DuckDB memory size (``memory_limit``, ``max_temp_directory_size``) in bytes: KB/MB/GB are
    powers of 1000, KiB/MiB/GiB of 1024."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", value, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a DuckDB memory size: {value!r}")
    return int(float(m[1]) * _DUCKDB_UNITS[m[2].upper()])
