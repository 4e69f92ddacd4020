{#
    `delete+insert` on Spark Parquet tables (dbt-spark offers append, insert_overwrite
    and, on Delta/Iceberg/Hudi only, merge). The incremental models keep their one
    strategy on every target: here it is done as a rewrite. The new rows (dbt-spark's
    temporary view) and the old rows whose key is not among them are written to a
    scratch Parquet table, which then overwrites the model's table. Parquet has no
    transactions: a failure between the two statements leaves the table as it was
    and the scratch table behind (dropped by the next run).

    These override dbt-spark's macros of the same name (the root project's win);
    other strategies go to dbt-spark's own.
#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- if raw_strategy == 'delete+insert' -%}
        {% do return(raw_strategy) %}
    {%- endif -%}
    {% do return(dbt_spark.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) %}
{% endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- if strategy == 'delete+insert' -%}
        {{ trackhouse.spark_delete_insert_sql(source, target, unique_key) }}
    {%- else -%}
        {{ dbt_spark.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) }}
    {%- endif -%}
{% endmacro %}

{% macro spark_delete_insert_sql(source, target, unique_key) %}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
    {%- set scratch = target.incorporate(path={'identifier': target.identifier ~ '__th_rewrite'}) -%}
    {%- set matches = [] -%}
    {%- for key in keys -%}
        {%- do matches.append('kept.' ~ key ~ ' = incoming.' ~ key) -%}
    {%- endfor -%}
    {% do run_query('drop table if exists ' ~ scratch) %}
    {% do run_query(
        'create table ' ~ scratch ~ ' using parquet as '
        ~ 'select ' ~ columns ~ ' from ' ~ target ~ ' as kept where not exists (select 1 from '
        ~ source ~ ' as incoming where ' ~ matches | join(' and ') ~ ') '
        ~ 'union all select ' ~ columns ~ ' from ' ~ source
    ) %}
    {% do run_query('insert overwrite table ' ~ target ~ ' select ' ~ columns ~ ' from ' ~ scratch) %}
    {% do run_query('drop table ' ~ scratch) %}
    refresh table {{ target }}
{% endmacro %}
