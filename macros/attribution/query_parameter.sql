{#
    The raw (still URL-encoded) value of the query-string parameter `name`:
    names are case-sensitive and a repeated parameter gives its LAST value;
    null when the parameter is absent or empty.
    No regex: a capture after a greedy '^.*' (the regex way to the last
    occurrence) costs 18 s for 12 parameters of 1M URLs in DuckDB and 3.5 us
    a value in PostgreSQL. DuckDB splits the query string on '&' and takes the
    last 'name=' pair (1 s). PostgreSQL checks that '&name=' occurs at all
    (most parameters do not), then finds its last occurrence by searching the
    reversed string, and takes the text up to the next '&'.
#}
{% macro query_parameter(query_expr, name) -%}
    {{ return(adapter.dispatch('query_parameter', 'trackhouse')(query_expr, name)) }}
{%- endmacro %}

{% macro default__query_parameter(query_expr, name) -%}
    {%- set query = "('&' || " ~ query_expr ~ ")" -%}
    case
        when strpos({{ query }}, '&{{ name }}=') > 0
            then nullif(split_part(
                substr({{ query }}, length({{ query }}) - strpos(reverse({{ query }}), '={{ name | reverse }}&') + 2),
                '&',
                1
            ), '')
    end
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
