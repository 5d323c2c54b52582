-- One row per product, with units sold and revenue from orders that count as revenue.
with sold as (
    select
        l.product_id,
        sum(l.quantity) as units_sold,
        sum(l.line_amount) as revenue
    from {{ ref('stg_order_lines') }} as l
    inner join {{ ref('stg_orders') }} as o using (order_id)
    where o.counts_as_revenue
    group by l.product_id
)

select
    p.product_id,
    p.sku,
    p.product_name,
    p.category,
    cast(p.unit_price as decimal(18, 2)) as unit_price,
    cast(coalesce(sold.units_sold, 0) as bigint) as units_sold,
    cast(coalesce(sold.revenue, 0) as decimal(18, 2)) as revenue
from {{ ref('stg_products') }} as p
left join sold using (product_id)
