-- Every order is in exactly one status row of the funnel.
select f.total, o.total
from (select sum(orders) as total from {{ ref('order_status_funnel') }}) as f
cross join (select count(*) as total from {{ ref('fct_orders') }}) as o
where f.total <> o.total
