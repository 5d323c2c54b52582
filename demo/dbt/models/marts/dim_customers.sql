-- One row per customer. lifetime_value = sum of the amounts of the customer's orders that count
-- as revenue (not cancelled/returned); 0 for customers without such orders.
with orders as (
    select
        customer_id,
        count(*) as order_count,
        count(*) filter (where counts_as_revenue) as revenue_order_count,
        sum(amount) filter (where counts_as_revenue) as lifetime_value,
        min(created_at) as first_order_at,
        max(created_at) as last_order_at
    from {{ ref('fct_orders') }}
    group by customer_id
)

select
    c.customer_id,
    c.customer_name,
    c.email,
    c.region,
    c.segment,
    c.signed_up_at,
    cast(coalesce(orders.order_count, 0) as bigint) as order_count,
    cast(coalesce(orders.lifetime_value, 0) as decimal(18, 2)) as lifetime_value,
    cast(
        case when orders.revenue_order_count > 0 then orders.lifetime_value / orders.revenue_order_count end
        as decimal(18, 2)
    ) as average_order_value,
    orders.first_order_at,
    orders.last_order_at
from {{ ref('stg_customers') }} as c
left join orders using (customer_id)
