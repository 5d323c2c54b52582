"""The marts dbt writes into the catalog's marts namespace: columns (in table order) and meaning.

For the Cube model (issue 4) and the tests; demo/dbt/models/marts/*.sql is the implementation and
tests/pipeline/test_dbt.py checks that the two agree. "Revenue" always means orders whose status is
not ``cancelled`` or ``returned`` (``counts_as_revenue``). Timestamps are UTC without a zone.
"""

from __future__ import annotations

MARTS: dict[str, dict[str, str]] = {
    "fct_orders": {
        "order_id": "bigint, primary key",
        "customer_id": "bigint, → dim_customers",
        "region": "varchar, the customer's region",
        "status": "varchar: placed, paid, shipped, delivered, cancelled, returned",
        "channel": "varchar: web, mobile, marketplace",
        "category": "varchar, category of the order's largest line (highest amount, then lowest line number)",
        "line_count": "bigint",
        "item_count": "bigint, sum of quantities",
        "amount": "decimal(18,2), sum of the line amounts (every status)",
        "counts_as_revenue": "boolean, status not cancelled/returned",
        "created_at": "timestamp (UTC)",
        "order_date": "date of created_at",
    },
    "dim_customers": {
        "customer_id": "bigint, primary key",
        "customer_name": "varchar",
        "email": "varchar",
        "region": "varchar",
        "segment": "varchar: consumer, small_business, enterprise",
        "signed_up_at": "timestamp (UTC)",
        "order_count": "bigint, all statuses",
        "lifetime_value": "decimal(18,2), sum of amount over revenue orders (0 without any)",
        "average_order_value": "decimal(18,2), lifetime_value / revenue orders (null without any)",
        "first_order_at": "timestamp (UTC), null without orders",
        "last_order_at": "timestamp (UTC), null without orders",
    },
    "dim_products": {
        "product_id": "bigint, primary key",
        "sku": "varchar",
        "product_name": "varchar",
        "category": "varchar",
        "unit_price": "decimal(18,2)",
        "units_sold": "bigint, revenue orders",
        "revenue": "decimal(18,2), revenue orders",
    },
    "daily_revenue_by_category": {
        "order_date": "date, key with category",
        "category": "varchar, the LINE's product category",
        "order_count": "bigint, revenue orders with a line in the category that day",
        "units_sold": "bigint",
        "revenue": "decimal(18,2)",
    },
    "order_status_funnel": {
        "status": "varchar, primary key",
        "funnel_step": "integer, 1..4 placed→delivered, 5 cancelled, 6 returned",
        "is_happy_path": "boolean",
        "orders": "bigint, orders currently in this status",
        "orders_reached": "bigint, happy path only: orders that got at least this far",
        "share_of_orders": "double, orders / all orders",
    },
}
