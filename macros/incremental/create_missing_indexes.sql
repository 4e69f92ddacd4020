{#
    PostgreSQL: create the indexes a model's `indexes` config names that its table
    does not have. dbt creates a model's indexes only when it creates the table, so an
    incremental table built before an index was configured (by an older trackhouse)
    would go without it until a full refresh, and the incremental runs that filter on
    it would scan the table. A post-hook of every model (dbt_project.yml): one catalog
    query per table or incremental model with indexes; each missing index is created
    with dbt-postgres's own statement (get_create_index_sql). An index matches when it
    is on the same columns in the same order, with the same uniqueness and method.
    Nothing on the other targets, or for a model without indexes.
#}
{% macro create_missing_indexes() -%}
    {{ return(adapter.dispatch('create_missing_indexes', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__create_missing_indexes() -%}
{%- endmacro %}

{% macro postgres__create_missing_indexes() -%}
    {%- set indexes = config.get('indexes') or [] -%}
    {%- if not execute or not indexes
        or config.get('materialized') not in ('table', 'incremental') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set existing_sql -%}
        select
            i.indisunique as is_unique,
            am.amname as method,
            array_to_string(array(
                select a.attname
                from unnest(i.indkey) with ordinality as k (attnum, position)
                inner join pg_attribute as a
                    on a.attrelid = i.indrelid and a.attnum = k.attnum
                order by k.position
            ), ',') as columns
        from pg_index as i
        inner join pg_class as t on i.indrelid = t.oid
        inner join pg_namespace as n on t.relnamespace = n.oid
        inner join pg_class as ic on i.indexrelid = ic.oid
        inner join pg_am as am on ic.relam = am.oid
        where n.nspname = '{{ this.schema }}' and t.relname = '{{ this.identifier }}'
    {%- endset -%}
    {%- set existing = [] -%}
    {%- for row in run_query(existing_sql).rows -%}
        {%- do existing.append((row['columns'], row['is_unique'], row['method'])) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for index_dict in indexes -%}
        {%- set index = adapter.parse_index(index_dict) -%}
        {%- set method = (index.type or 'btree') | lower -%}
        {%- if (index.columns | join(','), index.unique, method) not in existing -%}
            {%- do statements.append(get_create_index_sql(this, index_dict)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements | join(';\n')) }}
{%- endmacro %}
