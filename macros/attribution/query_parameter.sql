{#
    The raw (still URL-encoded) value of the query-string parameter `name`:
    names are case-sensitive and a repeated parameter gives its LAST value;
    null when the parameter is absent or empty.
    PostgreSQL: a regex whose greedy '^.*' reaches the last occurrence.
    DuckDB: the same regex is slow there (RE2 cannot use its fast engine for
    a capture after '^.*': 18 s for 12 parameters of 1M URLs), so the query
    string is split on '&' and the last 'name=' pair taken (1 s).
#}
{% macro query_parameter(query_expr, name) -%}
    {{ return(adapter.dispatch('query_parameter', 'trackhouse')(query_expr, name)) }}
{%- endmacro %}

{% macro default__query_parameter(query_expr, name) -%}
    {{ trackhouse.regex_group(query_expr, '^.*(?:^|&)' ~ name ~ '=([^&]*)') }}
{%- endmacro %}

{% macro duckdb__query_parameter(query_expr, name) -%}
    nullif(substr(
        list_filter(
            string_split({{ query_expr }}, '&'),
            lambda query_pair: starts_with(query_pair, '{{ name }}=')
        )[-1],
        {{ name | length + 2 }}
    ), '')
{%- endmacro %}
