"""Explicit Iceberg schemas of the raw tables (field ids, required columns) and their Arrow twins.

The Iceberg schemas are what :mod:`demo.ingest` creates the tables with; the Arrow schemas are
derived from them (not written twice), so generated batches always match the tables.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.schema import Schema
from pyiceberg.types import (
    DecimalType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
)

#: Raw tables in write order (parents before children).
RAW_TABLES: tuple[str, ...] = ("customers", "products", "orders", "order_lines")

#: Column recording which ingest run wrote a row (idempotency and audit, see demo.ingest).
RUN_KEY_COLUMN = "_run_key"

MONEY = DecimalType(12, 2)


def _run_key_field(field_id: int) -> NestedField:
    return NestedField(field_id, RUN_KEY_COLUMN, StringType(), required=True, doc="ingest run that wrote the row")


ICEBERG_SCHEMAS: dict[str, Schema] = {
    "customers": Schema(
        NestedField(1, "customer_id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=True),
        NestedField(3, "email", StringType(), required=True),
        NestedField(4, "region", StringType(), required=True),
        NestedField(5, "segment", StringType(), required=True),
        NestedField(6, "signed_up_at", TimestampType(), required=True, doc="UTC"),
        _run_key_field(7),
        identifier_field_ids=[1],
    ),
    "products": Schema(
        NestedField(1, "product_id", LongType(), required=True),
        NestedField(2, "sku", StringType(), required=True),
        NestedField(3, "name", StringType(), required=True),
        NestedField(4, "category", StringType(), required=True),
        NestedField(5, "unit_price", MONEY, required=True),
        _run_key_field(6),
        identifier_field_ids=[1],
    ),
    "orders": Schema(
        NestedField(1, "order_id", LongType(), required=True),
        NestedField(2, "customer_id", LongType(), required=True),
        NestedField(3, "status", StringType(), required=True),
        NestedField(4, "channel", StringType(), required=True),
        NestedField(5, "created_at", TimestampType(), required=True, doc="UTC"),
        _run_key_field(6),
        identifier_field_ids=[1],
    ),
    "order_lines": Schema(
        NestedField(1, "order_line_id", LongType(), required=True),
        NestedField(2, "order_id", LongType(), required=True),
        NestedField(3, "line_number", IntegerType(), required=True),
        NestedField(4, "product_id", LongType(), required=True),
        NestedField(5, "quantity", IntegerType(), required=True),
        NestedField(6, "unit_price", MONEY, required=True),
        NestedField(7, "line_amount", MONEY, required=True, doc="quantity * unit_price"),
        _run_key_field(8),
        identifier_field_ids=[1],
    ),
}

ARROW_SCHEMAS: dict[str, pa.Schema] = {
    name: schema_to_pyarrow(schema, include_field_ids=False) for name, schema in ICEBERG_SCHEMAS.items()
}
