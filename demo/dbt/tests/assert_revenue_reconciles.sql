-- The marts agree with each other and with the raw lines: revenue per day/category adds up to the
-- lifetime value of all customers and to the revenue of all products.
with totals as (
    select
        (select coalesce(sum(revenue), 0) from {{ ref('daily_revenue_by_category') }}) as by_day,
        (select coalesce(sum(lifetime_value), 0) from {{ ref('dim_customers') }}) as by_customer,
        (select coalesce(sum(revenue), 0) from {{ ref('dim_products') }}) as by_product,
        (select coalesce(sum(amount), 0) from {{ ref('fct_orders') }} where counts_as_revenue) as by_order
)
select * from totals
where by_day <> by_customer or by_day <> by_product or by_day <> by_order
