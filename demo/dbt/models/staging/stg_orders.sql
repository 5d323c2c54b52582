select
    order_id,
    customer_id,
    status,
    channel,
    created_at,
    cast(created_at as date) as order_date,
    -- cancelled and returned orders do not count as revenue
    status not in ('cancelled', 'returned') as counts_as_revenue
from {{ source('raw', 'orders') }}
