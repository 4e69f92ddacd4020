{#
    A select-list expression that turns each input row into one row per integer
    from `lower` to `upper` inclusive (both SQL expressions, may use the row's
    columns): `select id, {{ trackhouse.expand_series(0, 'n') }} as step from t`.
    No rows when upper < lower. PostgreSQL expands set-returning functions in
    the select list; DuckDB needs unnest() of the list generate_series returns.
#}
{% macro expand_series(lower, upper) -%}
    {{ return(adapter.dispatch('expand_series', 'trackhouse')(lower, upper)) }}
{%- endmacro %}

{% macro default__expand_series(lower, upper) -%}
    generate_series(cast({{ lower }} as integer), cast({{ upper }} as integer))
{%- endmacro %}

{% macro duckdb__expand_series(lower, upper) -%}
    unnest(generate_series(cast({{ lower }} as bigint), cast({{ upper }} as bigint)))
{%- endmacro %}
