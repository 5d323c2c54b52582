-- One row per (order_date, category) with revenue: line amounts by the LINE's product category,
-- for orders that count as revenue. (fct_orders.category is per order; this is per line.)
select
    o.order_date,
    p.category,
    cast(count(distinct o.order_id) as bigint) as order_count,
    cast(sum(l.quantity) as bigint) as units_sold,
    cast(sum(l.line_amount) as decimal(18, 2)) as revenue
from {{ ref('stg_order_lines') }} as l
inner join {{ ref('stg_orders') }} as o using (order_id)
inner join {{ ref('stg_products') }} as p using (product_id)
where o.counts_as_revenue
group by o.order_date, p.category
