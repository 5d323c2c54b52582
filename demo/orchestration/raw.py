"""The raw Iceberg tables as Dagster assets, and the seed decision the sensor makes.

One multi-asset, ``raw_tables``, owns the four tables (it is the only thing that writes them). Its
config picks the operation: ``seed`` (create + initial data; tables already holding rows are left
alone by :func:`demo.ingest.seed_raw_tables`) or ``append`` (new orders + lines). Both are idempotent
per run key: the sensor and the schedule derive the key from what they saw, a manual run uses its
Dagster run id. Asset keys are ``["raw", <table>]``, the keys dagster-dbt gives the dbt sources
``source('raw', <table>)``, so the dbt models hang off these assets.
"""


import hashlib
import json
from collections.abc import Iterator, Mapping, Set as AbstractSet
from dataclasses import dataclass
from typing import Literal

from dagster import AssetExecutionContext, AssetKey, AssetSpec, Config, MaterializeResult, MetadataValue, multi_asset

from demo.generator import RAW_TABLES
from demo.ingest import APPEND_TABLES, IngestResult, append_orders, raw_table_counts, seed_raw_tables
from demo.lakehouse.settings import LakehouseSettings
from demo.observability import tracing
from demo.observability.lineage import RunState, iceberg_datasets, lineage
from demo.orchestration.observed import step_scope
from demo.orchestration.settings import PipelineSettings

#: dbt source name of the raw tables = first part of their asset keys.
RAW_SOURCE = "raw"
RAW_OP = "raw_tables"


def raw_asset_key(table: str) -> AssetKey:
    return AssetKey([RAW_SOURCE, table])


class RawTablesConfig(Config):
    """Run config of ``raw_tables`` (``ops: {raw_tables: {config: ...}}``)."""

    mode: Literal["seed", "append"] = "append"
    #: Idempotency key; empty: the Dagster run id (a re-execution of the same run is then a no-op).
    run_key: str = ""
    #: Orders per append; 0: FLOE_PIPELINE_ORDERS_PER_TICK.
    n_orders: int = 0


#: What the schedule's job selects of the raw tables: the ones an append writes.
APPEND_ASSET_KEYS = tuple(raw_asset_key(t) for t in APPEND_TABLES)


def raw_run_config(mode: Literal["seed", "append"], *, run_key: str = "", n_orders: int = 0) -> dict:
    """Run config for a job containing ``raw_tables``."""
    return {"ops": {RAW_OP: {"config": {"mode": mode, "run_key": run_key, "n_orders": n_orders}}}}


def counted_rows(counts: Mapping[str, int | None]) -> str:
    return ", ".join(f"{t}={'missing' if c is None else c}" for t, c in counts.items())


@multi_asset(
    name=RAW_OP,
    specs=[
        AssetSpec(
            raw_asset_key(t),
            # An append writes orders and order_lines only; jobs select those two (can_subset below),
            # so customers/products are neither materialized nor "skipped" (which would skip dbt).
            skippable=True,
            group_name="raw",
            kinds={"iceberg", "python"},
            description=f"Raw Iceberg table {RAW_SOURCE}.{t}, written by the generator through the REST catalog.",
        )
        for t in RAW_TABLES
    ],
    can_subset=True,
)
def raw_tables(context: AssetExecutionContext, config: RawTablesConfig) -> Iterator[MaterializeResult]:
    settings = LakehouseSettings()
    pipeline = PipelineSettings()
    run_key = config.run_key or context.run.run_id
    tables = RAW_TABLES if config.mode == "seed" else APPEND_TABLES
    with step_scope(context, **{"floe.mode": config.mode, "floe.run_key": run_key}) as step:
        lin = lineage()
        job = lin.job(f"ingest.{RAW_OP}")
        outputs = iceberg_datasets(settings, settings.namespace_raw, tables)
        lin.run_event(RunState.START, job, outputs=outputs, parent=step.parent)
        try:
            with tracing.span(
                f"iceberg.write {settings.namespace_raw}",
                {
                    "iceberg.catalog": settings.catalog_uri,
                    "iceberg.namespace": settings.namespace_raw,
                    "iceberg.tables": ",".join(tables),
                    "floe.run_key": run_key,
                },
            ) as span:
                if config.mode == "seed":
                    result = seed_raw_tables(settings, seed=pipeline.seed, run_key=run_key)
                else:
                    n = config.n_orders or pipeline.orders_per_tick
                    result = append_orders(settings, run_key=run_key, n_orders=n, seed=pipeline.seed)
                for table, rows in result.rows_written.items():
                    span.set_attribute(f"iceberg.rows_written.{table}", rows)
        except Exception as exc:
            lin.run_event(RunState.FAIL, job, outputs=outputs, parent=step.parent, error=str(exc))
            raise
        lin.run_event(RunState.COMPLETE, job, outputs=outputs, parent=step.parent)
    context.log.info(f"{result.kind} {run_key}: rows written {result.rows_written}, skipped {result.skipped}")
    yield from _materializations(result, context.selected_asset_keys)


def _materializations(result: IngestResult, selected: AbstractSet[AssetKey]) -> Iterator[MaterializeResult]:
    for write in result.writes:
        if raw_asset_key(write.table) not in selected:
            continue  # a seed writes every empty table; only the selected ones are reported as outputs
        metadata = {
            "run_key": MetadataValue.text(result.run_key),
            "rows_written": MetadataValue.int(write.rows),
        }
        if write.snapshot_id is not None:
            metadata["snapshot_id"] = MetadataValue.text(str(write.snapshot_id))
        if write.skipped_reason:
            metadata["skipped"] = MetadataValue.text(write.skipped_reason)
        yield MaterializeResult(asset_key=raw_asset_key(write.table), metadata=metadata)


# --- the seed decision (used by the sensor and the local main job) ---------------------------------


@dataclass(frozen=True)
class SeedDecision:
    """What the sensor does for one observation of the raw tables."""

    seed: bool
    reason: str
    #: The cursor to store after this evaluation.
    cursor: str
    #: Dagster run key of the seed run (when ``seed``).
    run_key: str | None = None


def _state_key(counts: Mapping[str, int | None]) -> str:
    """Tables that need data, e.g. ``orders=0,order_lines=missing`` (full tables are not part of it)."""
    return ",".join(f"{t}={'missing' if c is None else c}" for t, c in sorted(counts.items()) if not c)


def decide_seed(counts: Mapping[str, int | None], cursor: str | None) -> SeedDecision:
    """Seed when any raw table is missing or empty — once per observed state.

    The cursor remembers the last state (``{"state": ..., "seeds": n}``). The same empty/partial
    state seen again (a seed run still going, or one that failed) does not request another seed;
    a different state does (e.g. tables dropped after a successful seed), with a new run key
    ``seed-<n>-<hash of state>`` so Dagster's run-key de-duplication does not swallow it.
    """
    previous = json.loads(cursor) if cursor else {"state": None, "seeds": 0}
    state = _state_key(counts)
    if not state:
        return SeedDecision(False, f"all raw tables have rows ({counted_rows(counts)})", json.dumps({**previous, "state": ""}))
    if previous.get("state") == state:
        return SeedDecision(False, f"a seed was already requested for this state ({state})", cursor or "")
    seeds = int(previous.get("seeds", 0)) + 1
    digest = hashlib.sha256(state.encode()).hexdigest()[:12]
    return SeedDecision(
        True,
        f"raw tables need data: {state}",
        json.dumps({"state": state, "seeds": seeds}),
        run_key=f"seed-{seeds}-{digest}",
    )


def observe_raw_tables(settings: LakehouseSettings) -> dict[str, int | None]:
    with tracing.span(
        f"iceberg.read {settings.namespace_raw}",
        {"iceberg.catalog": settings.catalog_uri, "iceberg.namespace": settings.namespace_raw},
    ) as span:
        counts = raw_table_counts(settings)
        for table, n in counts.items():
            span.set_attribute(f"iceberg.rows.{table}", -1 if n is None else n)
        return counts
