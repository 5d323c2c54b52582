select
    customer_id,
    name as customer_name,
    email,
    region,
    segment,
    signed_up_at
from {{ source('raw', 'customers') }}
