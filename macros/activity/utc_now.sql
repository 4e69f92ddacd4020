{#
    The database's current time as a UTC timestamp without zone, the way every
    timestamp is stored. Constant within a statement (the transaction's start
    on both DuckDB and PostgreSQL). The incremental activity tables stamp the
    rows they add with it.
#}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now', 'trackhouse')()) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    cast({{ dbt.current_timestamp() }} at time zone 'UTC' as timestamp)
{%- endmacro %}
