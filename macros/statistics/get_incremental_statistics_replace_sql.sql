{#
    The incremental strategy of the statistics marts, `statistics_replace`
    (config incremental_strategy='statistics_replace'): delete+insert on
    unique_key, with the delete as a semi join. The new rows repeat a key many
    times (statistics_by_date_and_object: every object of a (metric, period,
    date, object_type)); dbt-duckdb's delete+insert joins the stored table with
    them row by row (`delete ... using`), which matches each stored row once per
    new row of its key, objects x objects per date: at 10M events that delete
    cost as much as computing the rows. `where exists` matches each stored row
    once. Same rows as delete+insert on every engine.
#}
{% macro get_incremental_statistics_replace_sql(arg_dict) -%}
    {{ return(adapter.dispatch('statistics_replace_sql', 'trackhouse')(arg_dict)) }}
{%- endmacro %}

{% macro default__statistics_replace_sql(arg_dict) -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set unique_key = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }} as stored_rows
    where exists (
        select 1
        from {{ arg_dict['temp_relation'] }} as new_rows
        where
            {%- for key in unique_key %}
            {{ 'and ' if not loop.first }}new_rows.{{ key }} = stored_rows.{{ key }}
            {%- endfor %}
    )
    {%- for predicate in arg_dict['incremental_predicates'] or [] %}
        and {{ predicate }}
    {%- endfor %};

    insert into {{ arg_dict['target_relation'] }} ({{ columns_csv }})
    select {{ columns_csv }}
    from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
