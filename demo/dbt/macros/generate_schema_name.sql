{#- Use a model's custom schema as-is (dbt's default would prefix the target schema: main_marts).
    Marts go to the Iceberg namespace named by FLOE_NAMESPACE_MARTS, staging views to `staging`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
