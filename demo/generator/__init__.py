"""Synthetic e-commerce data: customers, products, orders and order lines, as Arrow tables.

Deterministic: the same seed (and, for appends, the same run key and prior state) gives the same
rows, byte for byte, so a retried run regenerates exactly what it failed to write.

* :func:`generate_seed` — the initial load: customers, products and a history of orders.
* :func:`generate_orders` — an append: new orders (+ lines) only, ids after the last ones,
  timestamps after the last order, referencing only customers and products in the given state.

Every row carries ``_run_key``, the key of the ingest run that wrote it (see :mod:`demo.ingest`).
Timestamps are UTC, stored without a zone (Iceberg ``timestamp``). Money is ``decimal(12, 2)``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa

from demo.generator.schemas import ARROW_SCHEMAS, RAW_TABLES

__all__ = [
    "ARROW_SCHEMAS",
    "CATEGORIES",
    "CHANNELS",
    "GeneratorState",
    "ORDER_STATUSES",
    "RAW_TABLES",
    "REGIONS",
    "SEED_EPOCH",
    "generate_orders",
    "generate_seed",
    "rng_for",
]

REGIONS: tuple[str, ...] = ("north_america", "latin_america", "europe", "asia_pacific", "africa")
_REGION_WEIGHTS = (0.34, 0.12, 0.30, 0.18, 0.06)
SEGMENTS: tuple[str, ...] = ("consumer", "small_business", "enterprise")
_SEGMENT_WEIGHTS = (0.75, 0.2, 0.05)
CHANNELS: tuple[str, ...] = ("web", "mobile", "marketplace")
_CHANNEL_WEIGHTS = (0.5, 0.35, 0.15)

#: category -> (price range, typical words for product names)
CATEGORIES: dict[str, tuple[tuple[float, float], tuple[str, ...]]] = {
    "electronics": ((19.0, 899.0), ("Headphones", "Charger", "Speaker", "Monitor", "Keyboard", "Camera")),
    "home": ((8.0, 240.0), ("Lamp", "Kettle", "Blanket", "Vase", "Shelf", "Pan")),
    "books": ((6.0, 60.0), ("Novel", "Cookbook", "Atlas", "Guide", "Anthology", "Biography")),
    "apparel": ((9.0, 180.0), ("Jacket", "Sneakers", "Scarf", "Shirt", "Jeans", "Hat")),
    "sports": ((12.0, 420.0), ("Racket", "Yoga Mat", "Dumbbell", "Helmet", "Bottle", "Tent")),
    "beauty": ((5.0, 95.0), ("Serum", "Lotion", "Perfume", "Shampoo", "Lipstick", "Mask")),
}
_ADJECTIVES = ("Classic", "Pro", "Eco", "Compact", "Deluxe", "Smart", "Urban", "Nordic", "Vintage", "Ultra")
_FIRST = (
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Luca",
    "Maya",
    "Noor",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uma",
    "Victor",
    "Wei",
    "Yara",
)
_LAST = (
    "Adams",
    "Baker",
    "Costa",
    "Diallo",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Huang",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Mensah",
    "Nakamura",
    "Okafor",
    "Patel",
    "Rossi",
    "Silva",
    "Tanaka",
    "Weber",
)

#: Order lifecycle, in funnel order; ``cancelled`` and ``returned`` leave the happy path.
ORDER_STATUSES: tuple[str, ...] = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")

#: The seed history ends here (fixed, so the seed does not depend on the clock).
SEED_EPOCH = datetime(2026, 1, 1)
SEED_HISTORY_DAYS = 120

DEFAULT_SEED = 42
DEFAULT_CUSTOMERS = 200
DEFAULT_PRODUCTS = 60
DEFAULT_SEED_ORDERS = 1500

_CENT = Decimal("0.01")


def rng_for(*parts: object) -> random.Random:
    """A generator seeded from ``parts`` through SHA-256 (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class GeneratorState:
    """What an append needs to know about the data already written.

    ``customer_ids`` are in ascending order (draws depend on the order, so every source of a state
    must agree); ``product_prices`` maps product id to its current unit price. ``next_order_id`` /
    ``next_order_line_id`` are one past the largest ids written; ``last_order_at`` is the newest
    ``created_at`` (new orders start strictly after it).
    """

    customer_ids: tuple[int, ...]
    product_prices: dict[int, Decimal]
    next_order_id: int
    next_order_line_id: int
    last_order_at: datetime

    @classmethod
    def from_tables(cls, tables: dict[str, pa.Table]) -> GeneratorState:
        """The state after ``tables`` (as returned by :func:`generate_seed`/:func:`generate_orders`)."""
        orders, lines = tables["orders"], tables["order_lines"]
        return cls(
            customer_ids=tuple(sorted(tables["customers"].column("customer_id").to_pylist())),
            product_prices=dict(
                zip(
                    tables["products"].column("product_id").to_pylist(),
                    tables["products"].column("unit_price").to_pylist(),
                    strict=True,
                )
            ),
            next_order_id=max(orders.column("order_id").to_pylist(), default=0) + 1,
            next_order_line_id=max(lines.column("order_line_id").to_pylist(), default=0) + 1,
            last_order_at=max(orders.column("created_at").to_pylist(), default=SEED_EPOCH),
        )

    def advanced(self, appended: dict[str, pa.Table]) -> GeneratorState:
        """The state after also writing ``appended`` (new orders and lines only)."""
        orders, lines = appended["orders"], appended["order_lines"]
        return GeneratorState(
            customer_ids=self.customer_ids,
            product_prices=self.product_prices,
            next_order_id=max(orders.column("order_id").to_pylist(), default=self.next_order_id - 1) + 1,
            next_order_line_id=max(lines.column("order_line_id").to_pylist(), default=self.next_order_line_id - 1) + 1,
            last_order_at=max(orders.column("created_at").to_pylist(), default=self.last_order_at),
        )


def _customers(rng: random.Random, n: int, run_key: str) -> pa.Table:
    rows = []
    for customer_id in range(1, n + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        signed_up = SEED_EPOCH - timedelta(days=SEED_HISTORY_DAYS + rng.randint(0, 700), seconds=rng.randint(0, 86_399))
        rows.append(
            {
                "customer_id": customer_id,
                "name": f"{first} {last}",
                "email": f"{first}.{last}.{customer_id}@example.com".lower(),
                "region": rng.choices(REGIONS, _REGION_WEIGHTS)[0],
                "segment": rng.choices(SEGMENTS, _SEGMENT_WEIGHTS)[0],
                "signed_up_at": signed_up,
                "_run_key": run_key,
            }
        )
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMAS["customers"])


def _products(rng: random.Random, n: int, run_key: str) -> pa.Table:
    rows = []
    categories = list(CATEGORIES)
    for product_id in range(1, n + 1):
        category = categories[(product_id - 1) % len(categories)]  # every category is represented
        (low, high), nouns = CATEGORIES[category]
        price = Decimal(str(round(rng.uniform(low, high), 2))).quantize(_CENT)
        rows.append(
            {
                "product_id": product_id,
                "sku": f"{category[:3].upper()}-{product_id:05d}",
                "name": f"{rng.choice(_ADJECTIVES)} {rng.choice(nouns)}",
                "category": category,
                "unit_price": price,
                "_run_key": run_key,
            }
        )
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMAS["products"])


def _status_for(rng: random.Random, age: timedelta) -> str:
    """Older orders are further along the funnel; a few are cancelled or returned."""
    hours = age.total_seconds() / 3600
    roll = rng.random()
    if roll < 0.05:
        return "cancelled"
    if hours > 24 * 10 and roll < 0.09:
        return "returned"
    if hours < 1:
        return "placed" if roll < 0.7 else "paid"
    if hours < 24:
        return ("placed", "paid", "shipped")[min(2, int(rng.random() * 3))]
    if hours < 24 * 5:
        return "shipped" if roll < 0.6 else "delivered"
    return "delivered"


def _orders(
    rng: random.Random,
    state: GeneratorState,
    created: list[datetime],
    as_of: datetime,
    run_key: str,
) -> dict[str, pa.Table]:
    orders, lines = [], []
    order_id, line_id = state.next_order_id, state.next_order_line_id
    product_ids = sorted(state.product_prices)
    # A few loyal customers order much more than the rest (makes lifetime value interesting).
    weights = [1.0 + 6.0 * (rng.random() < 0.1) for _ in state.customer_ids]
    for created_at in created:
        orders.append(
            {
                "order_id": order_id,
                "customer_id": rng.choices(state.customer_ids, weights)[0],
                "status": _status_for(rng, as_of - created_at),
                "channel": rng.choices(CHANNELS, _CHANNEL_WEIGHTS)[0],
                "created_at": created_at,
                "_run_key": run_key,
            }
        )
        n_lines = rng.choices((1, 2, 3, 4), (0.45, 0.3, 0.17, 0.08))[0]
        for line_number, product_id in enumerate(rng.sample(product_ids, k=n_lines), 1):
            quantity = rng.choices((1, 2, 3, 5), (0.7, 0.18, 0.08, 0.04))[0]
            unit_price = state.product_prices[product_id]
            lines.append(
                {
                    "order_line_id": line_id,
                    "order_id": order_id,
                    "line_number": line_number,
                    "product_id": product_id,
                    "quantity": quantity,
                    "unit_price": unit_price,
                    "line_amount": (unit_price * quantity).quantize(_CENT),
                    "_run_key": run_key,
                }
            )
            line_id += 1
        order_id += 1
    return {
        "orders": pa.Table.from_pylist(orders, schema=ARROW_SCHEMAS["orders"]),
        "order_lines": pa.Table.from_pylist(lines, schema=ARROW_SCHEMAS["order_lines"]),
    }


def generate_seed(
    seed: int = DEFAULT_SEED,
    *,
    n_customers: int = DEFAULT_CUSTOMERS,
    n_products: int = DEFAULT_PRODUCTS,
    n_orders: int = DEFAULT_SEED_ORDERS,
    run_key: str = "seed",
) -> dict[str, pa.Table]:
    """The initial load, one Arrow table per name in :data:`RAW_TABLES`.

    Orders span the :data:`SEED_HISTORY_DAYS` days before :data:`SEED_EPOCH`, with statuses that
    depend on their age at the epoch. Same arguments → identical tables.
    """
    rng = rng_for("seed", seed)
    customers = _customers(rng, n_customers, run_key)
    products = _products(rng, n_products, run_key)
    start = SEED_EPOCH - timedelta(days=SEED_HISTORY_DAYS)
    span = int(timedelta(days=SEED_HISTORY_DAYS).total_seconds())
    created = sorted(start + timedelta(seconds=rng.randrange(span)) for _ in range(n_orders))
    state = GeneratorState(
        customer_ids=tuple(customers.column("customer_id").to_pylist()),
        product_prices=dict(
            zip(products.column("product_id").to_pylist(), products.column("unit_price").to_pylist(), strict=True)
        ),
        next_order_id=1,
        next_order_line_id=1,
        last_order_at=start,
    )
    orders = _orders(rng, state, created, SEED_EPOCH, run_key)
    return {"customers": customers, "products": products, **orders}


def generate_orders(
    state: GeneratorState,
    n_orders: int,
    *,
    run_key: str,
    seed: int = DEFAULT_SEED,
    mean_gap_seconds: float = 90.0,
    not_before: datetime | None = None,
) -> dict[str, pa.Table]:
    """An append: ``{"orders": ..., "order_lines": ...}`` with ``n_orders`` new orders.

    Ids continue from ``state``; ``created_at`` increases strictly from ``state.last_order_at``
    (exponential gaps of ``mean_gap_seconds``, at least one second); customers and products are
    drawn only from ``state``. Deterministic in (state, n_orders, run_key, seed, not_before) — the
    clock is never read — so a retry regenerates the same rows.

    ``not_before`` (e.g. a schedule tick's time) moves the start forward when it is later than the
    last order, so a live demo's new orders land "now"; aware datetimes are converted to naive UTC.
    """
    if n_orders < 0:
        raise ValueError("n_orders must be >= 0")
    if not state.customer_ids or not state.product_prices:
        raise ValueError("cannot generate orders without customers and products (seed first)")
    rng = rng_for("append", seed, run_key, state.next_order_id, state.next_order_line_id)
    created, at = [], state.last_order_at
    if not_before is not None:
        if not_before.tzinfo is not None:
            not_before = not_before.astimezone(UTC).replace(tzinfo=None)
        at = max(at, not_before)
    for _ in range(n_orders):
        at = at + timedelta(seconds=max(1, round(rng.expovariate(1.0 / mean_gap_seconds))))
        created.append(at)
    as_of = at + timedelta(minutes=5)  # statuses as seen a few minutes after the last new order
    return _orders(rng, state, created, as_of, run_key)
