{#-
  `iceberg_table`: a table materialization for an Iceberg REST catalog attached to DuckDB.

  dbt-duckdb's `table` materialization builds `<name>__dbt_tmp` and renames it over the target;
  DuckDB 1.5.5 cannot rename Iceberg tables (nor CREATE OR REPLACE, nor drop+create in one
  transaction). This materialization instead:

  1. builds the model's rows into a local temp table (DuckDB's `temp` database, autocommit);
  2. if the Iceberg table exists with the same column names and types: DELETE + INSERT in ONE
     transaction — one catalog commit, so readers (Cube) see either the old or the new rows and the
     table never disappears;
  3. otherwise (first build, or the columns changed): DROP, COMMIT, CREATE TABLE AS, COMMIT — the
     only window in which the table is missing, and only when its schema changes.
  A failure in 2 rolls back (the table keeps its previous rows); a failure in 3 after the drop leaves
  the table missing until the next successful build.
-#}
{% materialization iceberg_table, adapter="duckdb" %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set staged_relation = api.Relation.create(database='temp', schema='main',
        identifier=this.identifier ~ '__floe_staged', type='table') -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}

  {#- 1. the new rows, locally (no transaction open: DuckDB autocommits) -#}
  {% call statement('stage_rows', auto_begin=False) -%}
    create or replace temp table {{ staged_relation.identifier }} as (
      {{ sql }}
    )
  {%- endcall %}

  {%- set staged_columns = adapter.get_columns_in_relation(staged_relation) -%}
  {%- set replace_in_place = false -%}
  {%- if existing_relation is not none and existing_relation.is_table -%}
    {%- set existing_columns = adapter.get_columns_in_relation(existing_relation) -%}
    {%- set staged_shape = staged_columns | map(attribute='column') | map('lower') | list ~ '|'
          ~ staged_columns | map(attribute='dtype') | map('upper') | list -%}
    {%- set existing_shape = existing_columns | map(attribute='column') | map('lower') | list ~ '|'
          ~ existing_columns | map(attribute='dtype') | map('upper') | list -%}
    {%- set replace_in_place = (staged_shape == existing_shape) -%}
    {{ log("iceberg_table " ~ target_relation ~ ": " ~ ("replace rows in one commit" if replace_in_place
           else "columns changed, drop and re-create"), info=False) }}
  {%- endif -%}

  {%- set column_list = staged_columns | map(attribute='column') | join(', ') -%}

  {% if replace_in_place %}
    {#- 2. atomic replace: BEGIN (auto_begin), DELETE, INSERT, COMMIT -#}
    {% call statement('delete_rows') -%}
      delete from {{ target_relation }}
    {%- endcall %}
    {% call statement('main') -%}
      insert into {{ target_relation }} ({{ column_list }})
      select {{ column_list }} from {{ staged_relation.identifier }}
    {%- endcall %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
  {% else %}
    {#- 3. drop (own commit), then create (own commit) -#}
    {% if existing_relation is not none %}
      {% call statement('drop_existing') -%}
        drop {{ existing_relation.type }} if exists {{ existing_relation }}
      {%- endcall %}
      {{ adapter.commit() }}
      {% do adapter.cache_dropped(existing_relation) %}
    {% endif %}
    {% call statement('main') -%}
      create table {{ target_relation }} as select * from {{ staged_relation.identifier }}
    {%- endcall %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
  {% endif %}

  {% call statement('drop_staged', auto_begin=False) -%}
    drop table if exists {{ staged_relation.identifier }}
  {%- endcall %}

  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
