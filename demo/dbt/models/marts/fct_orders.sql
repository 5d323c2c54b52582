-- One row per order. `category` is the category of the order's largest line (highest
-- line_amount, ties to the lowest line_number); `region` is the customer's region.
-- Left joins on purpose: an order without lines gets null amount/category, which the
-- not_null tests turn into a failed build instead of silently dropping the order.
with lines as (
    select l.*, p.category
    from {{ ref('stg_order_lines') }} as l
    left join {{ ref('stg_products') }} as p using (product_id)
),

totals as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_count,
        sum(line_amount) as amount
    from lines
    group by order_id
),

largest_line as (
    select order_id, category
    from lines
    qualify row_number() over (partition by order_id order by line_amount desc, line_number) = 1
)

select
    o.order_id,
    o.customer_id,
    c.region,
    o.status,
    o.channel,
    largest_line.category,
    cast(totals.line_count as bigint) as line_count,
    cast(totals.item_count as bigint) as item_count,
    cast(totals.amount as decimal(18, 2)) as amount,
    o.counts_as_revenue,
    o.created_at,
    o.order_date
from {{ ref('stg_orders') }} as o
left join {{ ref('stg_customers') }} as c using (customer_id)
left join totals using (order_id)
left join largest_line using (order_id)
