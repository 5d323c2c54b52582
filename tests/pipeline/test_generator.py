"""Invariants of the synthetic data generator (pure Python, no lakehouse)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC

import pyarrow as pa
import pytest

from demo.generator import (
    CATEGORIES,
    ORDER_STATUSES,
    RAW_TABLES,
    REGIONS,
    GeneratorState,
    generate_orders,
    generate_seed,
)
from demo.generator.schemas import ARROW_SCHEMAS, ICEBERG_SCHEMAS


@pytest.fixture(scope="module")
def seed() -> dict[str, pa.Table]:
    return generate_seed(7)


def _ids(table: pa.Table, column: str) -> list:
    return table.column(column).to_pylist()


def test_seed_has_every_raw_table_with_its_schema(seed: dict[str, pa.Table]) -> None:
    assert tuple(seed) == RAW_TABLES
    for name, table in seed.items():
        assert table.schema == ARROW_SCHEMAS[name]
        assert table.num_rows > 0
        assert set(table.schema.names) == {f.name for f in ICEBERG_SCHEMAS[name].fields}


def test_seed_is_deterministic_for_a_seed() -> None:
    first, again, other = generate_seed(11), generate_seed(11), generate_seed(12)
    for name in RAW_TABLES:
        assert first[name].equals(again[name]), name
    assert not first["orders"].equals(other["orders"])


def test_primary_keys_are_unique(seed: dict[str, pa.Table]) -> None:
    for name, key in (
        ("customers", "customer_id"),
        ("products", "product_id"),
        ("orders", "order_id"),
        ("order_lines", "order_line_id"),
    ):
        ids = _ids(seed[name], key)
        assert len(ids) == len(set(ids)), name


def test_foreign_keys_are_consistent(seed: dict[str, pa.Table]) -> None:
    customers = set(_ids(seed["customers"], "customer_id"))
    products = set(_ids(seed["products"], "product_id"))
    orders = set(_ids(seed["orders"], "order_id"))
    assert set(_ids(seed["orders"], "customer_id")) <= customers
    assert set(_ids(seed["order_lines"], "product_id")) <= products
    assert set(_ids(seed["order_lines"], "order_id")) == orders  # every order has at least one line


def test_values_make_the_marts_interesting(seed: dict[str, pa.Table]) -> None:
    assert set(_ids(seed["products"], "category")) == set(CATEGORIES)
    assert set(_ids(seed["customers"], "region")) == set(REGIONS)
    statuses = Counter(_ids(seed["orders"], "status"))
    assert set(statuses) <= set(ORDER_STATUSES)
    assert len(statuses) >= 4, statuses
    for line in seed["order_lines"].to_pylist():
        assert line["line_amount"] == line["unit_price"] * line["quantity"]
        assert line["quantity"] > 0 and line["unit_price"] > 0
    prices = {p["product_id"]: p["unit_price"] for p in seed["products"].to_pylist()}
    assert all(line["unit_price"] == prices[line["product_id"]] for line in seed["order_lines"].to_pylist())


def test_seed_timestamps_are_ordered_with_the_ids(seed: dict[str, pa.Table]) -> None:
    created = _ids(seed["orders"], "created_at")
    assert created == sorted(created)


def test_appends_continue_ids_and_time_and_reference_known_keys(seed: dict[str, pa.Table]) -> None:
    state = GeneratorState.from_tables(seed)
    batch = generate_orders(state, 40, run_key="tick-1")
    assert set(batch) == {"orders", "order_lines"}
    order_ids = _ids(batch["orders"], "order_id")
    assert order_ids == list(range(state.next_order_id, state.next_order_id + 40))
    line_ids = _ids(batch["order_lines"], "order_line_id")
    assert line_ids == list(range(state.next_order_line_id, state.next_order_line_id + len(line_ids)))
    created = _ids(batch["orders"], "created_at")
    assert created[0] > state.last_order_at
    assert all(a < b for a, b in zip(created, created[1:], strict=False))  # strictly increasing
    assert set(_ids(batch["orders"], "customer_id")) <= set(state.customer_ids)
    assert set(_ids(batch["order_lines"], "product_id")) <= set(state.product_prices)
    assert set(_ids(batch["order_lines"], "order_id")) == set(order_ids)
    assert set(_ids(batch["orders"], "_run_key")) == {"tick-1"}

    # the next append starts after this one
    state2 = state.advanced(batch)
    batch2 = generate_orders(state2, 5, run_key="tick-2")
    assert min(_ids(batch2["orders"], "order_id")) == max(order_ids) + 1
    assert min(_ids(batch2["orders"], "created_at")) > max(created)
    assert min(_ids(batch2["order_lines"], "order_line_id")) == max(line_ids) + 1


def test_appends_are_deterministic_per_run_key(seed: dict[str, pa.Table]) -> None:
    state = GeneratorState.from_tables(seed)
    a, again = generate_orders(state, 10, run_key="k"), generate_orders(state, 10, run_key="k")
    other = generate_orders(state, 10, run_key="other")
    assert a["orders"].equals(again["orders"]) and a["order_lines"].equals(again["order_lines"])
    assert not a["orders"].equals(other["orders"])


def test_append_edge_cases(seed: dict[str, pa.Table]) -> None:
    state = GeneratorState.from_tables(seed)
    empty = generate_orders(state, 0, run_key="nothing")
    assert empty["orders"].num_rows == 0 and empty["order_lines"].num_rows == 0
    with pytest.raises(ValueError):
        generate_orders(state, -1, run_key="negative")
    no_customers = GeneratorState((), state.product_prices, 1, 1, state.last_order_at)
    with pytest.raises(ValueError, match="seed first"):
        generate_orders(no_customers, 1, run_key="x")


def test_not_before_moves_appends_forward_deterministically(seed: dict[str, pa.Table]) -> None:
    from datetime import datetime, timedelta

    state = GeneratorState.from_tables(seed)
    tick = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    batch = generate_orders(state, 5, run_key="live", not_before=tick)
    created = _ids(batch["orders"], "created_at")
    assert created[0] > tick.replace(tzinfo=None) and created[0] < tick.replace(tzinfo=None) + timedelta(hours=1)
    assert batch["orders"].equals(generate_orders(state, 5, run_key="live", not_before=tick)["orders"])
    # a not_before in the past of the data changes nothing
    past = generate_orders(state, 5, run_key="live", not_before=datetime(2000, 1, 1))
    assert past["orders"].equals(generate_orders(state, 5, run_key="live")["orders"])
