{#- Generic test: no two rows share the same values in `columns` (dbt-utils is not installed). -#}
{% test floe_unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as duplicates
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
