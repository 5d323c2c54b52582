-- One row per status. `orders` = orders currently in that status; for the happy path
-- (placed → paid → shipped → delivered), `orders_reached` = orders that got at least that far
-- (returned orders were delivered; cancelled ones count as placed only).
with steps as (
    select * from (values
        ('placed', 1, true), ('paid', 2, true), ('shipped', 3, true), ('delivered', 4, true),
        ('cancelled', 5, false), ('returned', 6, false)
    ) as s(status, funnel_step, is_happy_path)
),

orders as (
    select
        status,
        case status
            when 'placed' then 1 when 'paid' then 2 when 'shipped' then 3
            when 'delivered' then 4 when 'returned' then 4 when 'cancelled' then 1
        end as reached_step
    from {{ ref('fct_orders') }}
),

total as (select count(*) as n from orders)

select
    steps.status,
    cast(steps.funnel_step as integer) as funnel_step,
    steps.is_happy_path,
    cast((select count(*) from orders where orders.status = steps.status) as bigint) as orders,
    cast(
        case when steps.is_happy_path
            then (select count(*) from orders where orders.reached_step >= steps.funnel_step)
        end as bigint
    ) as orders_reached,
    cast(
        (select count(*) from orders where orders.status = steps.status) / nullif(total.n, 0)
        as double
    ) as share_of_orders
from steps
cross join total
